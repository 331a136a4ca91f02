"""How benchmarks/low_data.py lays out its cells and reports them: paired gains by seed, in the metric's direction."""
import json
from pathlib import Path

import pytest
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def low_data():
    return benchmark_script("low_data")


def _write(low_data, root, row, cap, seed, dataset, variant, test):
    config = low_data.cell_config(root, row, cap, seed, dataset, "data")
    folder = Path(config.out) / dataset / variant  # where the harness's run_variant writes the cell
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"mean": test, "cpu_hours": 0.01}))


def _row(report, cap):
    return next(line for line in report.splitlines() if line.startswith(f"| {cap} |")).split(" | ")[1:]


def test_gain_is_paired_by_seed_and_positive_when_pretraining_helps(low_data, tmp_path):
    for seed, pre, rnd in [(0, 0.80, 0.70), (1, 0.74, 0.72), (2, 0.90, None)]:  # seed 2: no random-init pair
        _write(low_data, tmp_path, "rich:rdkit2d", 50, seed, "bace", "pretrained", pre)
        if rnd is not None:
            _write(low_data, tmp_path, "rich:rdkit2d", 50, seed, "bace", "random-init", rnd)
    _write(low_data, tmp_path, "baselines", 50, 0, "bace", "rf-ecfp", 0.75)
    pre, rnd, gain, rf = _row(low_data.report(tmp_path, ["bace"]), 50)[:4]
    assert pre == "81.3 ± 6.6 (n=3)" and rnd == "71.0 ± 1.0 (n=2)"
    assert gain == "6.0 ± 4.0 (n=2)"  # (10 + 2) / 2 over the paired seeds only
    assert rf == "75.0 ± 0.0 (n=1)"


def test_regression_gain_is_an_error_reduction(low_data, tmp_path):
    _write(low_data, tmp_path, "molclr:none", 100, 0, "esol", "pretrained", 1.2)
    _write(low_data, tmp_path, "molclr:none", 100, 0, "esol", "random-init", 1.5)
    gain = _row(low_data.report(tmp_path, ["esol"]), 100)[2]
    assert gain == "0.300 ± 0.000 (n=1)"


def test_cells_cap_the_training_split_and_start_from_the_configurations_encoder(low_data, tmp_path):
    config = low_data.cell_config(tmp_path, "molclr:none", 200, 1, "bbbp", "data")
    assert config.max_train_molecules == 200 and config.seeds == [1] and config.pretrained == "molclr-gin-mix"
    assert config.encoder.featurizer == "molclr" and config.features == "none"
    assert low_data.cell_config(tmp_path, "baselines", 200, 1, "bbbp", "data").pretrained is None


def test_a_row_can_start_from_another_encoder(low_data, tmp_path):
    config = low_data.cell_config(tmp_path, "rich:none", 50, 0, "esol", "data", {"rich:none": "runs/pretrain/x"})
    assert config.pretrained == "runs/pretrain/x" and config.encoder.featurizer == "rich" and config.features == "none"
    assert low_data.cell_config(tmp_path, "rich:none", 50, 0, "esol", "data").pretrained == "rich-gin-physchem"
    assert low_data._encoder_option("rich:none=runs/pretrain/x") == ("rich:none", "runs/pretrain/x")
    with pytest.raises(Exception, match="ROW=ENCODER"):
        low_data._encoder_option("gcn:none=x")
