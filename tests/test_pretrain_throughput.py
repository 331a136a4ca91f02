"""The timing harness of benchmarks/pretrain_throughput.py: rows timed in interleaved rounds, warm-up once per row."""

import pytest
import torch
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def throughput():
    return benchmark_script("pretrain_throughput")


def test_rows_are_timed_round_by_round_and_each_figure_is_its_median(throughput, capsys):
    calls = []
    rates = {"limit": [5.0, 1.0, 3.0], "step": [10.0, 30.0, 20.0]}

    def row(name):
        def rate(round_):
            calls.append((name, round_))
            return rates[name][round_]
        return rate

    medians = throughput.interleaved_medians({"limit": row("limit"), "step": row("step")}, repeats=3)
    assert calls == [("limit", 0), ("step", 0), ("limit", 1), ("step", 1), ("limit", 2), ("step", 2)]
    assert medians == {"limit": 3.0, "step": 20.0, "limit_rounds": [5.0, 1.0, 3.0], "step_rounds": [10.0, 30.0, 20.0]}
    progress = capsys.readouterr().err.splitlines()  # each row as it is measured, on stderr
    assert progress[0] == "round 1/3: limit 5.0" and progress[-1] == "round 3/3: step 20.0" and len(progress) == 6


def test_a_row_warms_up_once_and_counts_only_its_window(throughput, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(throughput, "clock", lambda: now[0])
    steps = []

    def step():
        steps.append(1)
        now[0] += 0.5  # every step takes half a second and trains 8 molecules
        return 8

    window = throughput.timed_windows(step, torch.device("cpu"), steps=4, warmup=2)
    assert window(0) == pytest.approx(16.0)  # 32 molecules in 2 s; the 2 warm-up steps are not timed
    assert len(steps) == 6
    assert window(1) == pytest.approx(16.0)
    assert len(steps) == 10  # no second warm-up


def test_gemm_flops_count_six_products_per_layer_and_view(throughput):
    # forward 2, input gradients 2, weight gradients 2; each 2 n d (2d) FLOPs; two views
    n, d, layers = 100, 30, 5
    assert throughput.gemm_flops(n, d, layers) == 6 * 2 * n * d * (2 * d) * layers * 2
