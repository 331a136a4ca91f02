"""The quality-ablation report's paired pre-training gain (benchmarks/quality_ablation.py), on fake run folders."""
import json
from pathlib import Path

import pytest
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def ablation():
    return benchmark_script("quality_ablation")


def _cell(root: Path, seed: int, group: str, dataset: str, init: str, score: float) -> None:
    folder = root / f"seed{seed}" / group / dataset / init
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"dataset": dataset, "mean": score, "cpu_hours": 0.01}))


def test_paired_gain_uses_only_seeds_complete_for_both_inits(tmp_path, ablation):
    for seed, (pre, rnd) in enumerate([((0.80, 0.70), (0.76, 0.68)), ((0.78, 0.72), (0.77, 0.71))]):
        for dataset, p, r in zip(("bbbp", "bace"), pre, rnd):
            _cell(tmp_path, seed, "molclr-none", dataset, "pretrained", p)
            _cell(tmp_path, seed, "molclr-none", dataset, "random-init", r)
    _cell(tmp_path, 2, "molclr-none", "bbbp", "pretrained", 0.99)  # seed 2 lacks bace and random init
    _cell(tmp_path, 2, "molclr-none", "bbbp", "random-init", 0.50)
    text = ablation.paired_gains(ablation.collect(tmp_path), ("bbbp", "bace", "esol"))
    # seed 0: 75.0 - 72.0 = +3.0; seed 1: 75.0 - 74.0 = +1.0; mean +2.0; esol (RMSE) is not in the mean
    assert "seed 0: 75.0 - 72.0 = +3.0" in text and "seed 1: 75.0 - 74.0 = +1.0" in text
    assert "**+2.0**" in text and "seed 2" not in text and "esol" not in text


def test_no_paired_seeds_gives_no_section(tmp_path, ablation):
    _cell(tmp_path, 0, "rich-rdkit2d", "bbbp", "random-init", 0.7)
    assert ablation.paired_gains(ablation.collect(tmp_path), ("bbbp",)) == ""


def test_the_arms_of_a_pair_can_be_read_from_two_folders(tmp_path, ablation):
    for seed, (pre, rnd) in enumerate([(0.80, 0.76), (0.78, 0.77)]):
        _cell(tmp_path / "pretrained-arm", seed, "rich-rdkit2d", "bbbp", "pretrained", pre)
        _cell(tmp_path / "random-arm", seed, "rich-rdkit2d", "bbbp", "random-init", rnd)
    alone = ablation.paired_gains(ablation.collect(tmp_path / "pretrained-arm"), ("bbbp",))
    cells = ablation.collect(tmp_path / "pretrained-arm", tmp_path / "random-arm")
    text = ablation.paired_gains(cells, ("bbbp",))
    assert alone == "" and "seed 0: 80.0 - 76.0 = +4.0" in text and "**+2.5**" in text
    table = ablation.report(cells, ("bbbp",))
    assert "| rich-rdkit2d pretrained | 79.0 ± 1.4 (n=2) |" in table, table
    assert "| rich-rdkit2d random-init | 76.5 ± 0.7 (n=2) |" in table, table
