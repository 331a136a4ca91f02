"""Issue 18.1: a model file whose pickle would run code is refused at every entry point; nothing in it runs.

The hostile file is what an attacker would publish: a normal-looking checkpoint dict with one entry that
unpickles as a call to ``os.system``. Each command must exit 2 with one line naming the file, and the
payload's marker file must not exist afterwards.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from molssl.core.checkpoint import UnsafeFileError, atomic_save, load_checkpoint
from safety_helpers import TINY_FINETUNE, TINY_PRETRAIN, refused


class Payload:
    """Unpickles as ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def hostile(tmp_path):
    """``hostile(path)`` writes a hostile model file at ``path``; ``hostile.marker`` appears if its code runs."""
    marker = tmp_path / "payload-ran"

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "molssl-property-model-v1", "encoder_config": {}, "state_dict": {"w": torch.zeros(2)},
                    "model": {"w": torch.zeros(2)}, "config": {"pretrain": {}}, "meta": Payload(marker)}, path)
        return path

    write.marker = marker
    return write


def test_hostile_file_is_refused_by_the_loader(tmp_path, hostile):
    path = hostile(tmp_path / "model.pt")
    with pytest.raises(UnsafeFileError, match="run code"):
        load_checkpoint(path)
    assert not hostile.marker.exists()


def test_hostile_file_inside_a_gzip_stream_is_refused_too(tmp_path, hostile):
    path = hostile(tmp_path / "model.pt")
    path.write_bytes(gzip.compress(path.read_bytes()))  # the zoo's file form
    with pytest.raises(UnsafeFileError, match="run code"):
        load_checkpoint(path)
    assert not hostile.marker.exists()


def test_plain_numpy_arrays_still_load_but_object_arrays_do_not(tmp_path):
    atomic_save({"keys": np.arange(4, dtype=np.uint32), "x": np.float64(1.5)}, tmp_path / "plain.pt")
    loaded = load_checkpoint(tmp_path / "plain.pt")
    assert loaded["keys"].tolist() == [0, 1, 2, 3] and loaded["x"] == 1.5
    torch.save({"objects": np.array([{"a": 1}], dtype=object)}, tmp_path / "objects.pt")
    with pytest.raises(UnsafeFileError):
        load_checkpoint(tmp_path / "objects.pt")


def test_predict_refuses_a_hostile_model(molssl, tmp_path, hostile):
    path = hostile(tmp_path / "download" / "model.pt")
    refused(molssl("predict", "--model", path, "--smiles", "CCO"), path, "run code")
    assert not hostile.marker.exists()


def test_predict_refuses_a_hostile_model_inside_a_run_directory(molssl, tmp_path, hostile):
    hostile(tmp_path / "run" / "seed_0" / "model.pt")
    refused(molssl("predict", "--model", tmp_path / "run", "--smiles", "CCO"), "model.pt", "run code")
    assert not hostile.marker.exists()


def test_fingerprint_refuses_a_hostile_encoder(molssl, tmp_path, hostile):
    path = hostile(tmp_path / "encoder.pt")
    refused(molssl("fingerprint", "--model", path, "--smiles", "CCO", "-o", tmp_path / "fps.npy"), path, "run code")
    assert not hostile.marker.exists() and not (tmp_path / "fps.npy").exists()


def test_finetune_refuses_a_hostile_pretrained_encoder(molssl, tmp_path, hostile, labelled_csv):
    path = hostile(tmp_path / "encoder.pt")
    args = [a if a != "none" else str(path) for a in TINY_FINETUNE]
    refused(molssl("finetune", "--csv", labelled_csv, "--targets", "y", "--task", "regression", *args,
                   "--out", tmp_path / "run"), path, "run code")
    assert not hostile.marker.exists()


def test_pretrain_resume_refuses_a_hostile_checkpoint(molssl, tmp_path, hostile, corpus):
    path = hostile(tmp_path / "run" / "checkpoint.pt")
    refused(molssl("pretrain", "--smiles", corpus, "--out", tmp_path / "run", "--resume", *TINY_PRETRAIN), path,
            "run code")
    assert not hostile.marker.exists()


def test_convert_refuses_a_hostile_source(molssl, tmp_path, hostile):
    path = hostile(tmp_path / "model.pth")
    refused(molssl("convert", "molclr", path, tmp_path / "converted"), path)
    assert not hostile.marker.exists() and not (tmp_path / "converted" / "encoder.pt").exists()
