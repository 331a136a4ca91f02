"""How benchmarks/finetune_sweep.py reports a sweep: chosen by validation, in the metric's direction, on shared seeds."""
import json

import pytest
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def sweep():
    return benchmark_script("finetune_sweep")


def _write(root, setting, seed, dataset, valid, test):
    folder = root / setting / f"seed{seed}" / "rich-rdkit2d-quantile" / dataset / "random-init"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"valid_mean": valid, "mean": test, "cpu_hours": 0.05}))


def _chosen(report: str) -> str:
    return next(line for line in report.splitlines() if "chosen by validation" in line).split("|")[1].split()[0]


def test_classification_picks_the_highest_validation_not_the_highest_test(sweep, tmp_path):
    _write(tmp_path, "molclr", 0, "bace", valid=0.70, test=0.85)
    _write(tmp_path, "dropout-0.5", 0, "bace", valid=0.75, test=0.80)
    report = sweep.report(tmp_path, ["bace"])
    assert _chosen(report) == "dropout-0.5"
    assert "| 80.000 ± 0.000 |" in report  # ROC-AUC shown in %


def test_regression_picks_the_lowest_validation_error(sweep, tmp_path):
    _write(tmp_path, "molclr", 0, "esol", valid=0.80, test=0.70)
    _write(tmp_path, "lr-x3", 0, "esol", valid=0.90, test=0.60)
    assert _chosen(sweep.report(tmp_path, ["esol"])) == "molclr"


def test_only_seeds_every_setting_has_are_compared(sweep, tmp_path):
    """A setting with an extra (lucky) seed is not compared on it: the seeds shared by all settings count."""
    _write(tmp_path, "molclr", 0, "bace", valid=0.70, test=0.80)
    _write(tmp_path, "dropout-0.1", 0, "bace", valid=0.69, test=0.80)
    _write(tmp_path, "dropout-0.1", 1, "bace", valid=0.99, test=0.90)
    report = sweep.report(tmp_path, ["bace"])
    assert "seeds [0]" in report and _chosen(report) == "molclr"


def test_a_pooling_setting_changes_the_random_encoders_readout_only(sweep):
    from molssl.chem.nn.encoders import EncoderConfig
    from molssl.chem.tasks.finetune_config import FinetuneConfig

    base = FinetuneConfig(out="x", dataset="bace", encoder=EncoderConfig(featurizer="rich"), pretrained="none")
    summed = sweep.with_setting(base, "pool-add")
    assert summed.encoder.pool == "add" and summed.encoder.featurizer == "rich" and base.encoder.pool == "mean"
    assert sweep.with_setting(base, "lr-x3").lr_head == pytest.approx(1.5e-3)
    with pytest.raises(SystemExit, match="keeps the pooling it was trained with"):
        sweep.with_setting(FinetuneConfig(out="x", dataset="bace", pretrained="rich-gin-chembl"), "pool-max")


def test_a_graph_only_run_has_no_descriptor_scaling(sweep):
    assert sweep.configuration("rich", "none", "quantile") == ("rich-none", "standard")
    assert sweep.configuration("rich", "rdkit2d", "quantile") == ("rich-rdkit2d-quantile", "quantile")
    assert sweep.configuration("molclr", "rdkit2d+ecfp4", "standard") == ("molclr-rdkit2d+ecfp4", "standard")


def test_the_spread_is_the_sample_std_over_seeds(sweep, tmp_path):
    for seed, test in ((0, 0.80), (1, 0.82), (2, 0.84)):
        _write(tmp_path, "molclr", seed, "bace", valid=0.7, test=test)
    assert "| 82.000 ± 2.000 |" in sweep.report(tmp_path, ["bace"])  # ddof=1; the population std would be 1.633


def _write_fold(root, setting, seed, fold, valid, test=0.8, predictions=(0.2, 0.6, 0.4, 0.9)):
    folder = root / setting / f"seed{seed}" / f"fold{fold}" / "rich-rdkit2d-quantile" / "bace" / "pretrained"
    (folder / "seed_0").mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"valid_mean": valid, "mean": test, "cpu_hours": 0.01}))
    rows = [f"{row},C,{label},{p}" for row, label, p in zip((7, 3, 9, 4), (0, 1, 0, 1), predictions)]
    (folder / "seed_0" / "test_predictions.csv").write_text("row,smiles,Class,Class_pred\n" + "\n".join(rows) + "\n")


def test_cross_validation_chooses_by_the_mean_over_the_folds_every_setting_has(sweep, tmp_path):
    for fold, (a, b) in enumerate([(0.80, 0.78), (0.70, 0.74), (0.90, 0.91)]):
        _write_fold(tmp_path, "molclr", 0, fold, a, test=0.95)
        _write_fold(tmp_path, "lr-x0.3", 0, fold, b, test=0.70)
    _write_fold(tmp_path, "molclr", 0, 3, 0.99)  # a fold the other setting lacks does not count
    report = sweep.cv_report(tmp_path, ["bace"])
    chosen = next(line for line in report.splitlines() if "(chosen)" in line)
    assert chosen.startswith("| lr-x0.3 (chosen) | 81.000")  # 0.81 > 0.80 over folds 0-2, whatever the test says
    other = next(line for line in report.splitlines() if line.startswith("| molclr |"))
    assert "| 1 of 3 | -1.000 |" in other and "3 (seed, fold) runs" in report
    assert sweep.report(tmp_path, ["bace"]) == ""  # the plain report does not mix fold runs in


def test_the_fold_models_of_a_seed_are_scored_as_one_ensemble_on_the_shared_test_molecules(sweep, tmp_path):
    # alone, each fold model ranks one positive below a negative (ROC-AUC 0.75); their mean ranks all correctly
    _write_fold(tmp_path, "molclr", 0, 0, 0.8, predictions=(0.2, 0.6, 0.7, 0.9))
    _write_fold(tmp_path, "molclr", 0, 1, 0.8, predictions=(0.2, 0.9, 0.1, 0.15))
    folds = sorted((tmp_path / "molclr" / "seed0").glob("fold*/*/bace/pretrained"))
    assert sweep.fold_ensemble_test(folds, "roc_auc") == 1.0
    _write_fold(tmp_path, "molclr", 0, 2, 0.8)
    (tmp_path / "molclr" / "seed0" / "fold2" / "rich-rdkit2d-quantile" / "bace" / "pretrained" / "seed_0" /
     "test_predictions.csv").write_text("row,smiles,Class,Class_pred\n1,C,0,0.1\n")
    with pytest.raises(SystemExit, match="tested on different molecules"):
        sweep.fold_ensemble_test(sorted((tmp_path / "molclr" / "seed0").glob("fold*/*/bace/pretrained")), "roc_auc")
