"""benchmarks/fold_consensus.py: forests trained on a fold run's own training molecules, scored with its GNN on its
validation fold, alone and averaged; a second seed's runs of the same folds make the GNN pair."""
import sys
from pathlib import Path

import numpy as np
import pytest
from benchmark_helpers import benchmark_script

sys.path.insert(0, str(Path(__file__).parent / "chem" / "serve"))
from tiny_models import finetune_run  # noqa: E402


@pytest.fixture(scope="module")
def consensus():
    return benchmark_script("fold_consensus")


def test_every_combination_is_the_mean_of_its_parts(consensus):
    labels = np.array([[0.0], [1.0], [0.0], [1.0], [np.nan]])
    gnn, forest = np.array([[0.1], [0.2], [0.3], [0.4], [0.9]]), np.array([[0.4], [0.9], [0.1], [0.2], [0.5]])
    found = consensus.consensus_scores(labels, {"GNN": gnn, "RF-ECFP4": forest})
    assert found["GNN"] == 0.75 and found["RF-ECFP4"] == 0.75  # each misorders one (positive, negative) pair
    assert found["GNN + RF-ECFP4"] == 1.0  # means 0.25, 0.55, 0.2, 0.3: every positive above every negative
    paired = consensus.consensus_scores(labels, {"GNN": gnn, "GNN 2": forest, "RF-ECFP4": forest})
    assert paired["GNN pair"] == found["GNN + RF-ECFP4"] and "GNN pair + RF-ECFP4" in paired


def test_forests_train_on_the_runs_training_molecules_and_predict_its_fold(consensus, tmp_path, capsys):
    for seed in (0, 1):
        for fold in (0, 1):
            # the sweep's layout: seed<S>/fold<k>/<config>/<data set>/<init>
            finetune_run(tmp_path / f"seed{seed}" / f"fold{fold}" / "config" / "tiny", "classification", seeds=(seed,),
                         folds=5, fold=fold)
    runs = consensus.fold_runs(tmp_path, 1, "tiny")
    assert [r.relative_to(tmp_path).parts[1] for r in runs] == ["fold0", "fold1"]
    with pytest.raises(SystemExit, match="no fold runs of other"):
        consensus.fold_runs(tmp_path, 1, "other")
    labels, predictions = consensus.fold_predictions([runs[0], consensus.fold_runs(tmp_path, 0, "tiny")[0]], None,
                                                     n_estimators=5)
    assert set(predictions) == {"GNN", "GNN 2", "RF-ECFP4", "RF-RDKit2D"}
    assert all(p.shape == labels.shape for p in predictions.values())
    assert all(np.all((p >= 0) & (p <= 1)) for p in predictions.values())
    result = consensus.main(["--cv", str(tmp_path), "--dataset", "tiny", "--seeds", "0", "1", "--trees", "5"])
    assert len(result["folds"]) == 2 and "GNN pair + RF-ECFP4 + RF-RDKit2D" in result["mean"]
    assert "folds above the GNN pair" in capsys.readouterr().out


def test_gradient_boosting_takes_the_forests_place_under_its_own_name(consensus, tmp_path):
    finetune_run(tmp_path / "seed0" / "fold0" / "config" / "tiny", "classification", seeds=(0,), folds=5, fold=0)
    labels, predictions = consensus.fold_predictions(consensus.fold_runs(tmp_path, 0, "tiny"), None, kind="hgb")
    assert set(predictions) == {"GNN", "GB-ECFP4", "GB-RDKit2D"}
    assert all(np.all((p >= 0) & (p <= 1)) for p in predictions.values())


def test_a_compact_forest_is_one_small_multi_output_forest_for_every_task(consensus):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(60, 5))
    y = np.stack([(x[:, 0] > 0.5), (x[:, 1] > 0.3), (x[:, 2] > 0.7)], axis=1).astype(float)
    p, nodes = consensus.compact_forest_predict(x[:40], y[:40], x[40:], 0, trees=10, leaves=4)
    assert p.shape == (20, 3) and nodes <= 10 * (2 * 4 - 1)  # a tree of 4 leaves has 7 nodes
    assert np.all((p >= 0) & (p <= 1))
    y[0, 1] = np.nan
    with pytest.raises(SystemExit, match="needs a label"):
        consensus.compact_forest_predict(x[:40], y[:40], x[40:], 0)
