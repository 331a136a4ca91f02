"""Issue 18.4: a model file whose numbers changed after it was written (same size, one byte flipped) is refused
instead of predicting nonsense with status ``ok``; shipped weights are checked against their card's sha256,
training checkpoints against the digest they record."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.serve import zoo
from molssl.chem.serve.loading import load_shipped_members, save_encoder, save_property_model
from molssl.core.checkpoint import CorruptFileError
from safety_helpers import TINY_PRETRAIN, refused

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)


def flip_weight(path: Path, tensor: torch.Tensor) -> None:
    """Make one float of ``tensor``'s stored bytes in ``path`` enormous; the file keeps its size."""
    data = bytearray(path.read_bytes())
    raw = tensor.detach().contiguous().numpy().tobytes()
    start = data.find(raw)
    assert start >= 0 and data.find(raw, start + 1) < 0, "the weights must appear once in the file"
    data[start + 3] ^= 0x40  # the exponent byte of the first float32 (little-endian)
    size = path.stat().st_size
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def test_flipped_model_pt_is_refused_by_predict(molssl, tmp_path):
    torch.manual_seed(0)
    model = PropertyModel(TINY, ["y"], "regression", "smiles", None, False)
    path = save_property_model(model, tmp_path / "model.pt", {"dataset": "tiny"})
    assert molssl("predict", "--model", path, "--smiles", "CCO").exit_code == 0
    flip_weight(path, model.encoder.gnns[0].mlp[0].weight)
    refused(molssl("predict", "--model", path, "--smiles", "CCO"), path, "corrupted")


def test_flipped_encoder_pt_is_refused_by_fingerprint_and_finetune(molssl, tmp_path, labelled_csv):
    torch.manual_seed(0)
    encoder = MolecularEncoder(TINY)
    path = save_encoder(encoder, tmp_path / "encoder.pt")
    flip_weight(path, encoder.feat_lin.weight)
    refused(molssl("fingerprint", "--model", path, "--smiles", "CCO", "-o", tmp_path / "fps.npy"), path, "corrupted")
    refused(molssl("finetune", "--csv", labelled_csv, "--targets", "y", "--task", "regression", "--pretrained", path,
                   "--epochs", "1", "--out", tmp_path / "run"), path, "corrupted")


def test_flipped_checkpoint_is_refused_on_resume(molssl, tmp_path, corpus):
    out = tmp_path / "run"
    assert molssl("pretrain", "--smiles", corpus, "--out", out, "--max-steps", "1", *TINY_PRETRAIN).exit_code == 0
    weights = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    flip_weight(out / "checkpoint.pt", weights["encoder.feat_lin.weight"])
    refused(molssl("pretrain", "--smiles", corpus, "--out", out, "--max-steps", "1", "--resume", *TINY_PRETRAIN),
            out / "checkpoint.pt", "corrupted")


@pytest.mark.skipif("esol" not in {c.name for c in zoo.list_models()}, reason="shipped models not present")
def test_damaged_shipped_weights_are_refused(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(zoo.model_folder("esol"), models / "esol")
    assert len(load_shipped_members("esol", models)[1]) >= 1
    weights = models / "esol" / zoo.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="sha256"):
        load_shipped_members("esol", models)
