"""How benchmarks/ship_zoo.py chooses a shipped model: the validation score of each ensemble as it would ship."""
import json

import numpy as np
import pytest
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def ship():
    return benchmark_script("ship_zoo")


def _record(tasks, y_true, y_pred, rows=(5, 6, 7, 8)):
    return {"tasks": list(tasks), "calibration": {"rows": np.asarray(rows), "y_true": np.asarray(y_true, float),
                                                  "y_pred": np.asarray(y_pred, float)}}


def test_ensemble_score_averages_members_per_task(ship):
    y = [[0.0], [1.0], [2.0], [3.0]]
    over, under = _record(["t"], y, [[1.0], [2.0], [3.0], [4.0]]), _record(["t"], y, [[-1.0], [0.0], [1.0], [2.0]])
    assert ship.ensemble_valid_score([over], "rmse") == pytest.approx(1.0)
    assert ship.ensemble_valid_score([over, under], "rmse") == pytest.approx(0.0)  # errors cancel in the mean
    # per-target members (one model per task, as ClinTox ships): each task's column from its own members
    a = _record(["a"], [[0], [1], [0], [1]], [[0.1], [0.9], [0.2], [0.8]])
    b = _record(["b"], [[1], [0], [1], [0]], [[0.4], [0.6], [0.3], [0.7]])
    assert ship.ensemble_valid_score([a, b], "roc_auc") == pytest.approx(0.5)  # mean of 1.0 and 0.0


def test_members_validated_on_different_rows_are_refused(ship):
    y = [[0.0], [1.0], [2.0], [3.0]]
    with pytest.raises(SystemExit, match="different rows"):
        ship.ensemble_valid_score([_record(["t"], y, y), _record(["t"], y, y, rows=(1, 2, 3, 4))], "rmse")


def test_candidates_are_one_config_under_one_folder_and_name_their_encoder(ship, tmp_path):
    for seed, valid in ((0, 0.70), (1, 0.80), (2, 0.75)):
        run = tmp_path / "abl" / f"seed{seed}" / "rich-rdkit2d-quantile" / "bace" / "pretrained"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"valid_mean": valid}))
        (run / "config.json").write_text(json.dumps({"pretrained": "runs/gpu-rich"}))
    unfinished = tmp_path / "abl" / "seed3" / "rich-rdkit2d-quantile" / "bace" / "pretrained"
    unfinished.mkdir(parents=True)
    (found,) = ship.candidates_of([tmp_path / "abl"], ["rich-rdkit2d", "rich-rdkit2d-quantile"], "bace")
    assert sorted(found.runs) == [0, 1, 2]  # seed 3 has no results.json yet
    assert (found.featurizer, found.features, found.scaling, found.encoder) == ("rich", "rdkit2d", "quantile",
                                                                                "runs/gpu-rich")
    assert ship.best_seeds(found, 2, higher=True) == [1, 2] and ship.best_seeds(found, 2, higher=False) == [0, 2]
