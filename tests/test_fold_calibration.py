"""benchmarks/fold_calibration.py: fold models' validation residuals, split into the scaffold split's validation
molecules and the rest of their folds."""
import sys
from pathlib import Path

import numpy as np
import pytest
from benchmark_helpers import benchmark_script

sys.path.insert(0, str(Path(__file__).parent / "chem" / "serve"))  # the tiny fine-tuning runs of the serve tests
from tiny_models import finetune_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_summaries_of_residuals_and_probabilities():
    check = benchmark_script("fold_calibration")
    y = np.array([1.0, 2.0, np.nan, 4.0])
    assert check.summary(y, np.array([1.5, 2.0, 9.0, 3.0]), "regression").startswith(
        "3 labels, median |residual| 0.500, 90% conformal quantile inf")  # 3 residuals cannot give 90%
    text = check.summary(np.array([1.0, 0.0]), np.array([0.8, 0.2]), "classification")
    assert text == f"2 labels, log loss {-np.log(0.8):.3f}, Brier {0.04:.3f}"


def test_every_validation_molecule_of_the_folds_is_counted_once(tmp_path, monkeypatch, capsys):
    check = benchmark_script("fold_calibration")
    runs = [finetune_run(tmp_path / f"f{fold}", "regression", seeds=(0,), folds=3, fold=fold) for fold in (0, 1, 2)]
    monkeypatch.setattr(sys, "argv", ["fold_calibration.py", *map(str, runs)])
    check.main()
    out = capsys.readouterr().out.splitlines()
    inside = sum(int(line.split(": ")[1].split(" of ")[0]) for line in out[:3])
    assert all("its largest scaffold set holds 10 " in line for line in out[:3])  # 12 scaffolds of 10 molecules
    folds = sum(int(line.split(" of its ")[1].split(" ")[0]) for line in out[:3])
    counted = [int(line.split(": ")[1].split(" labels")[0]) for line in out[3:]]
    assert inside == counted[0] > 0 and sum(counted) == folds  # every fold molecule is labelled here
