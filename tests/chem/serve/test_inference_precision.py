"""Issue 19.1: predict and fingerprint take ``precision`` (fp32 default in Python, ``auto`` on the CLI); bf16
autocast changes the numbers only slightly, and an unknown precision is one clear error."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from molssl.chem.serve.fingerprints import MolecularFingerprint, fingerprint
from molssl.chem.serve.predict import Predictor
from molssl.cli.main import app

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "O=C(O)c1ccccc1"]


def test_predict_in_bf16_stays_close_to_fp32():
    fp32 = Predictor(["esol"], precision="fp32", progress=False).predict(SMILES)
    bf16 = Predictor(["esol"], precision="bf16", progress=False).predict(SMILES)
    assert (bf16["status"] == "ok").all()
    difference = np.abs(bf16["esol"].to_numpy() - fp32["esol"].to_numpy())
    assert difference.max() < 0.15, difference  # log units; the model's test RMSE is 0.74
    assert not np.array_equal(bf16["esol"].to_numpy(), fp32["esol"].to_numpy())  # bf16 really ran


def test_fingerprints_in_bf16_keep_their_geometry():
    fp32 = fingerprint(SMILES, precision="fp32")
    bf16 = fingerprint(SMILES, precision="bf16")
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.99
    assert np.allclose(MolecularFingerprint(precision="bf16").fit_transform(SMILES), bf16)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        Predictor(["esol"], precision="fp8")
    result = CliRunner().invoke(app, ["predict", "-m", "esol", "-s", "CCO", "--precision", "fp8"])
    assert result.exit_code == 2 and "--precision must be one of" in result.output
    assert "Traceback" not in result.output


def test_cli_prints_the_precision_it_chose(tmp_path):
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(app, ["predict", "-m", "esol", "-s", "CCO", "c1ccccc1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "precision auto: " in result.output
    explicit = CliRunner().invoke(app, ["predict", "-m", "esol", "-s", "CCO", "c1ccccc1", "-o", str(tmp_path / "q.csv"),
                                        "--precision", "fp32"])
    assert explicit.exit_code == 0 and "precision auto" not in explicit.output
    assert pd.read_csv(out)["status"].tolist() == ["ok", "ok"]


def test_bf16_predictions_are_not_quantized_to_bf16_steps():
    """The encoder runs in bf16, the head in fp32: outputs keep fp32 resolution, so close members keep a spread."""
    table = Predictor(["esol"], precision="bf16", progress=False, domain=False).predict(
        ["ClC(Cl)(Cl)C(c1ccc(Cl)cc1)c1ccc(Cl)cc1", "CCCCCCO", "CCCCCCCO"])
    values = table["esol"].to_numpy()
    steps = values * 64  # bf16 of a standardized output near 1-4 moves in steps of 1/64 to 1/32
    assert not np.allclose(steps, np.round(steps), atol=1e-4), values
    assert (table["esol_std"] > 0).all(), table["esol_std"].tolist()


def test_cli_reports_a_missing_model_before_choosing_a_precision(tmp_path):
    missing = tmp_path / "runs" / "model.pt"
    result = CliRunner().invoke(app, ["predict", "-m", str(missing), "-s", "CCO"])
    assert result.exit_code == 2, result.output
    assert f"{missing}: no such file or directory" in result.output
    assert "precision auto" not in result.output
