"""ECFP4 fingerprints, the per-task random-forest baselines and Delaney's equation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import Split, random_split, scaffold_split
from molssl.chem.tasks.baselines import delaney_logs, ecfp4, rf_baseline, run_baseline

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "moleculenet"  # beside the repo

ACIDS = ["CC(=O)O", "CCC(=O)O", "CCCC(=O)O", "OC(=O)c1ccccc1", "CCCCC(=O)O", "OC(=O)CCl",
         "CC(C)C(=O)O", "OC(=O)CC(=O)O"]
AMINES = ["CCN", "CCCN", "CCCCN", "Nc1ccccc1", "CCCCCN", "NCCCl", "CC(C)N", "NCCN"]


def rf(task_type: str, labels: np.ndarray, split: Split, **kwargs) -> dict:
    """The RF-ECFP4 baseline on the toy acids and amines (test predictions left out of the comparison)."""
    metric = "roc_auc" if task_type == "classification" else "rmse"
    result = rf_baseline(ecfp4(ACIDS + AMINES), labels, split, task_type, metric, **kwargs)
    return {k: v for k, v in result.items() if k != "test_predictions"}


def test_ecfp4_bits():
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    fps = ecfp4(["CCO", "CCO", "c1ccccc1"])
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    assert np.array_equal(fps[2], generator.GetFingerprintAsNumPy(Chem.MolFromSmiles("c1ccccc1")))
    assert fps.shape == (3, 2048) and fps.dtype == np.uint8
    assert np.array_equal(fps[0], fps[1]) and not np.array_equal(fps[0], fps[2])
    assert 0 < fps[0].sum() < 20 and set(np.unique(fps)) <= {0, 1}
    with pytest.raises(ValueError, match=r"position 1 \('C1CC'\)"):
        ecfp4(["CCO", "C1CC"])


def interleaved_split() -> Split:
    # train on 5 acids + 5 amines, evaluate on the rest
    return Split(np.array([0, 1, 2, 3, 4, 8, 9, 10, 11, 12]), np.array([5, 13]),
                 np.array([6, 7, 14, 15]))


def test_rf_classification_separates_acids_from_amines_and_skips_missing():
    labels = np.zeros((16, 2))
    labels[8:, 0] = 1.0  # task 0: amine
    labels[:, 1] = np.nan  # task 1: no label anywhere -> ignored, not scored as 0
    labels[[0, 8, 5, 13, 6, 14], 1] = [0, 1, 0, 1, 0, 1]
    result = rf("classification", labels, interleaved_split(), seed=0, n_estimators=50)
    assert result == {"valid": 1.0, "test": 1.0}


def test_rf_regression_is_seeded_and_beats_mean_predictor():
    rng = np.random.default_rng(0)
    labels = np.where(np.arange(16) < 8, 2.0, -2.0)[:, None] + rng.normal(0, 0.1, (16, 1))
    split = interleaved_split()
    a = rf("regression", labels, split, seed=1, n_estimators=30)
    b = rf("regression", labels, split, seed=1, n_estimators=30)
    assert a == b
    mean_rmse = np.sqrt(np.mean((labels[split.test, 0] - labels[split.train, 0].mean()) ** 2))
    assert a["test"] < 0.5 * mean_rmse


def test_rf_requires_training_molecules():
    with pytest.raises(ValueError, match="no training molecules"):
        rf("regression", np.zeros((16, 1)), random_split(16, frac=(0.0, 0.5, 0.5)))


@pytest.mark.skipif(not SHARED.is_dir(), reason="reference MoleculeNet copies absent")
def test_rf_on_bbbp_scaffold_split_is_in_published_range():
    data = load_dataset("bbbp", SHARED, extras=("scaffold", "ecfp2048"))
    result = run_baseline("rf-ecfp", data, [0], scaffold_split(keys=data.scaffold_keys()), seed=0, n_jobs=2)
    # MoleculeNet-style RF on BBBP scaffold test: ~0.70 ROC-AUC; valid is the easy split
    assert 0.62 < result["test"] < 0.78 and result["valid"] > 0.85


@pytest.mark.skipif(not SHARED.is_dir(), reason="reference MoleculeNet copies absent")
def test_delaney_equation_reproduces_its_anchor_on_the_esol_scaffold_split():
    data = load_dataset("esol", SHARED, extras=("scaffold", "rdkit2d"))
    result = run_baseline("delaney", data, [0], scaffold_split(keys=data.scaffold_keys()), seed=0)
    # DESIGN.md anchor: Delaney's 2004 equation with Crippen clogP scores RMSE 1.136 on this test split
    assert result["test"] == pytest.approx(1.136, abs=0.01)


def test_delaney_equation_of_benzene_by_hand(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import Crippen, Descriptors

    from molssl.chem.data.labelled import load_csv

    path = tmp_path / "sol.csv"
    path.write_text("smiles,logS\nc1ccccc1,-1.64\nCCCCO,0.0\n")
    data = load_csv(path, "smiles", "logS", "regression", extras=("scaffold", "rdkit2d"))
    benzene = Chem.MolFromSmiles("c1ccccc1")
    expected = 0.16 - 0.63 * Crippen.MolLogP(benzene) - 0.0062 * Descriptors.MolWt(benzene) - 0.74 * 1.0
    butanol = Chem.MolFromSmiles("CCCCO")
    expected_butanol = (0.16 - 0.63 * Crippen.MolLogP(butanol) - 0.0062 * Descriptors.MolWt(butanol)
                        + 0.066 * Descriptors.NumRotatableBonds(butanol))
    assert delaney_logs(data) == pytest.approx([expected, expected_butanol])
