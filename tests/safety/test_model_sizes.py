"""A model file whose description asks for more than the numbers it holds (a hidden width of 100,000, a forest of a
billion nodes) is refused before anything is allocated: building it would need tens of GB or crash the machine."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.forests import Forests
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.nn.tree_ensemble import TreeEnsemble
from molssl.chem.serve.loading import save_encoder, save_property_model
from safety_helpers import refused

TINY = EncoderConfig(num_layers=2, emb_dim=8, feat_dim=8, proj_dim=4)


def _rewritten(path, change):
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)  # the weights and their digest untouched: only the description lies
    return path


def test_a_model_pt_describing_a_huge_encoder_is_refused_at_once(molssl, tmp_path):
    path = save_property_model(PropertyModel(TINY, ["y"], "regression"), tmp_path / "model.pt")
    _rewritten(path, lambda blob: blob["encoder_config"].update(emb_dim=100_000))  # 80 GB of weights if built
    refused(molssl("predict", "--model", path, "--smiles", "CCO"), path, "do not fit the model it describes")


def test_an_encoder_pt_describing_a_huge_encoder_is_refused_at_once(molssl, tmp_path):
    path = save_encoder(MolecularEncoder(TINY), tmp_path / "encoder.pt")
    _rewritten(path, lambda blob: blob["encoder_config"].update(feat_dim=1_000_000))
    refused(molssl("fingerprint", "--model", path, "--smiles", "CCO", "-o", tmp_path / "fps.npy"), path,
            "do not fit the model it describes")


def test_a_model_pt_describing_a_billion_node_forest_is_refused_at_once(molssl, tmp_path):
    rng = np.random.default_rng(0)
    x, y = (rng.uniform(size=(40, 2048)) < 0.2).astype(float), rng.uniform(size=40) < 0.5
    forests = Forests.from_ensembles({"ecfp2048": TreeEnsemble.from_forest(
        RandomForestClassifier(n_estimators=2, max_leaf_nodes=4, random_state=0).fit(x, y))})
    model = PropertyModel(TINY, ["y"], "classification")
    model.set_forests(forests)
    path = save_property_model(model, tmp_path / "model.pt")
    _rewritten(path, lambda blob: blob["forests"]["ecfp2048"].update(nodes=1_000_000_000))
    refused(molssl("predict", "--model", path, "--smiles", "CCO"), path, "do not fit the model it describes")


def test_fine_tuning_from_an_encoder_pt_describing_a_huge_encoder_is_refused(molssl, tmp_path, labelled_csv):
    path = save_encoder(MolecularEncoder(TINY), tmp_path / "encoder.pt")
    _rewritten(path, lambda blob: blob["encoder_config"].update(emb_dim=100_000))
    refused(molssl("finetune", "--csv", labelled_csv, "--targets", "y", "--task", "regression", "--pretrained", path,
                   "--epochs", "1", "--out", tmp_path / "run"), path, "do not fit the model it describes")


def test_a_model_pt_describing_a_million_layers_is_refused_at_once(molssl, tmp_path):
    path = save_property_model(PropertyModel(TINY, ["y"], "regression"), tmp_path / "model.pt")
    _rewritten(path, lambda blob: blob["encoder_config"].update(num_layers=1_000_000))  # minutes to lay out
    refused(molssl("predict", "--model", path, "--smiles", "CCO"), path, "2 to 64 layers")
