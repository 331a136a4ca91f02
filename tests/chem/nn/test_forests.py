"""Forests carried inside a classifier: the stored thresholds reach scikit-learn's leaves, a model with forests
predicts the plain mean of its network and its forests through every file form, and damaged forests are refused."""
import numpy as np
import pytest
import torch
from rdkit import Chem

from molssl.chem.data.descriptors import column_medians, ecfp4_2048, rdkit2d
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.forests import Forests
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.nn.tree_ensemble import LEAF_LEVELS, TreeEnsemble, rounded_down
from molssl.chem.serve.loading import load_property_model, member_from_packed, pack_state, save_property_model
from molssl.chem.serve.predict import predict_member
from molssl.chem.tasks.baselines import compact_forest
from molssl.core.checkpoint import state_digest
from molssl.errors import CorruptFileError

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)
SMILES = [tail + core for core in ("c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1", "C1CCNCC1")
          for tail in ("C", "CC", "OC", "NC", "ClC", "FC", "OCC")]
ROUNDING = 0.5 / LEAF_LEVELS + 1e-9  # leaf probabilities are stored in steps of 1/255


def test_thresholds_rounded_down_to_float32_send_every_float32_input_the_same_way():
    rng = np.random.default_rng(0)
    thresholds = rng.normal(size=2000) * 10.0 ** rng.integers(-3, 4, size=2000)
    single = thresholds.astype(np.float32)
    inputs = np.concatenate([single, np.nextafter(single, np.float32(np.inf)), np.nextafter(single, np.float32(-np.inf))])
    stored = np.tile(rounded_down(thresholds), 3)
    assert stored.dtype == np.float32 and np.all(stored <= np.tile(thresholds, 3))
    assert np.array_equal(inputs <= np.tile(thresholds, 3), inputs <= stored)


def _features(smiles):
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    return np.stack([ecfp4_2048(m) for m in mols]), np.stack([rdkit2d(m) for m in mols])


def _labels(smiles):
    return np.stack([["O" in s or "N" in s for s in smiles], ["c" in s for s in smiles]], axis=1).astype(float)


def _fitted(smiles, seed=0):
    """(fitted scikit-learn forests by input, their stored form, the descriptor medians)."""
    bits, descriptors = _features(smiles)
    descriptors[::5, 3] = np.nan  # what RDKit could not compute is imputed with the training median
    median = column_medians(descriptors)
    x = {"ecfp2048": np.unpackbits(bits, axis=1), "rdkit2d": np.where(np.isnan(descriptors), median, descriptors)}
    fitted = {name: compact_forest(x[name], _labels(smiles), seed, trees=7, leaves=6) for name in x}
    return fitted, Forests.from_ensembles({n: TreeEnsemble.from_forest(f) for n, f in fitted.items()}, median), x


def _classifier(forests=None):
    torch.manual_seed(0)
    model = PropertyModel(TINY, ["polar", "aromatic"], "classification").eval()
    model.set_forests(forests)
    return model


def test_forests_predict_scikit_learns_probabilities_and_impute_missing_descriptors():
    fitted, forests, x = _fitted(SMILES)
    bits, descriptors = _features(SMILES)
    descriptors[::4, 3] = np.nan
    found = forests.predict({"ecfp2048": torch.from_numpy(bits), "rdkit2d": torch.from_numpy(descriptors)})
    median = forests.rdkit2d_median.numpy()
    imputed = np.where(np.isnan(descriptors), median, descriptors)
    for k, (name, inputs) in enumerate((("ecfp2048", x["ecfp2048"]), ("rdkit2d", imputed))):
        expected = np.stack([p[:, 1] for p in fitted[name].predict_proba(inputs)], axis=1)
        assert np.allclose(found[k].numpy(), expected, rtol=0, atol=ROUNDING)
    with pytest.raises(ValueError, match="features=model.inputs"):
        forests.predict({"ecfp2048": torch.from_numpy(bits)})


def test_a_classifier_with_forests_predicts_the_mean_of_its_network_and_forests_through_its_files(tmp_path):
    fitted, forests, _ = _fitted(SMILES[::2])
    model = _classifier(forests)
    assert model.inputs == ("ecfp2048", "rdkit2d") and model.describe()["forests"]["rdkit2d"]["trees"] == 7
    path = save_property_model(model, tmp_path / "model.pt", {"dataset": "tiny"})
    loaded = load_property_model(path)
    consensus, valid = predict_member(loaded, SMILES)
    network, _ = predict_member(_classifier(), SMILES)
    bits, descriptors = _features(SMILES)
    inputs = {"ecfp2048": np.unpackbits(bits, axis=1),
              "rdkit2d": np.where(np.isnan(descriptors), forests.rdkit2d_median.numpy(), descriptors)}
    trees = [np.stack([p[:, 1] for p in fitted[n].predict_proba(inputs[n])], axis=1) for n in ("ecfp2048", "rdkit2d")]
    assert valid.all() and not np.allclose(consensus, network, atol=0.01)
    assert np.allclose(consensus, (network + trees[0] + trees[1]) / 3, rtol=0, atol=1e-6 + ROUNDING)
    packed = member_from_packed({"meta": torch.load(path, weights_only=True), "state": pack_state(model.state_dict())})
    kept = packed.forests.state_dict()  # the zoo's packing (int8 network matrices) keeps the forests exact
    assert all(torch.equal(kept[k], v) and kept[k].dtype == v.dtype for k, v in forests.state_dict().items())


def _saved_with(tmp_path, change):
    """A model file whose forests were changed and its digest renewed, as a hostile file would be."""
    _, forests, _ = _fitted(SMILES)
    path = save_property_model(_classifier(forests), tmp_path / "model.pt")
    blob = torch.load(path, weights_only=True)
    change(blob)
    blob["digest"] = state_digest(blob["state_dict"])
    torch.save(blob, path)
    return path


@pytest.mark.parametrize("change, problem", [
    (lambda b: b["state_dict"]["forests.ecfp2048_left"].__setitem__(0, 0), "does not follow its parent"),
    (lambda b: b["state_dict"]["forests.rdkit2d_feature"].__setitem__(0, 10_000), "reads a feature outside"),
    (lambda b: b["state_dict"]["forests.rdkit2d_median"].__setitem__(0, float("nan")), "medians are not finite"),
    (lambda b: b["forests"].__setitem__("maccs", {"trees": 1, "nodes": 1, "outputs": 2}), "cannot build"),
    (lambda b: b["forests"]["rdkit2d"].__setitem__("nodes", -1), "cannot build"),
    (lambda b: b["forests"]["rdkit2d"].__setitem__("nodes", "many"), "cannot build"),
])
def test_damaged_forests_are_refused_on_load(tmp_path, change, problem):
    path = _saved_with(tmp_path, change)
    with pytest.raises(CorruptFileError, match=problem):
        load_property_model(path)


def test_only_classifiers_carry_forests():
    _, forests, _ = _fitted(SMILES)
    with pytest.raises(ValueError, match="only classifiers"):
        PropertyModel(TINY, ["y"], "regression").set_forests(forests)
    with pytest.raises(ValueError, match="only classifiers"):
        PropertyModel(TINY, ["y"], "regression", forests=forests.describe())
