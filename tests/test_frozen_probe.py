"""The frozen-encoder probe (benchmarks/frozen_probe.py) on synthetic features with known answers."""

import numpy as np
import pytest
from benchmark_helpers import benchmark_script

from molssl.chem.data.splits import Split


@pytest.fixture(scope="module")
def frozen_probe():
    return benchmark_script("frozen_probe")


def _split(n: int) -> Split:
    rows = np.arange(n)
    return Split(rows[: int(0.8 * n)], rows[int(0.8 * n): int(0.9 * n)], rows[int(0.9 * n):])


def test_classification_probe_separates_informative_from_noise_features(frozen_probe):
    rng = np.random.default_rng(0)
    n = 400
    signal = rng.normal(size=(n, 1))
    labels = (signal[:, 0] > 0).astype(float)[:, None]
    labels[::7, 0] = np.nan  # missing labels are left out of fitting and scoring
    informative = np.hstack([signal, rng.normal(size=(n, 5))])
    noise = rng.normal(size=(n, 6))
    valid, test = frozen_probe.probe(informative, labels, _split(n), True, "roc_auc")
    assert valid > 0.95 and test > 0.95
    _, noise_test = frozen_probe.probe(noise, labels, _split(n), True, "roc_auc")
    assert 0.25 < noise_test < 0.75


def test_regression_probe_recovers_a_linear_target_and_skips_one_class_tasks(frozen_probe):
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=(n, 4)) * np.array([1.0, 10.0, 0.1, 3.0])  # the probe standardizes the columns
    y = (x @ np.array([1.0, 0.2, 5.0, 0.0]) + 100.0)[:, None]  # an offset the ridge must not shrink
    valid, test = frozen_probe.probe(x, y, _split(n), False, "rmse")
    assert valid < 0.1 and test < 0.1

    classes = np.stack([(x[:, 0] > 0).astype(float), np.zeros(n)], axis=1)  # task 2 has one class only
    _, auc = frozen_probe.probe(x, classes, _split(n), True, "roc_auc")
    assert auc > 0.95  # scored on the probe-able task alone


def test_forest_probe_is_the_rf_baseline_on_the_given_features(frozen_probe):
    rng = np.random.default_rng(2)
    n = 300
    signal = rng.normal(size=(n, 1))
    labels = (signal[:, 0] > 0).astype(float)[:, None]
    valid, test = frozen_probe.forest_probe(np.hstack([signal, rng.normal(size=(n, 3))]), labels, _split(n),
                                            True, "roc_auc")
    assert valid > 0.9 and test > 0.9
    _, noise_test = frozen_probe.forest_probe(rng.normal(size=(n, 4)), labels, _split(n), True, "roc_auc")
    assert 0.2 < noise_test < 0.8
    x = rng.normal(size=(n, 3))
    x[::5, 1] = np.nan  # fingerprints of unreadable rows are NaN: the forest must not fail on them
    _, rmse = frozen_probe.forest_probe(x, (3.0 * x[:, :1] + 1.0), _split(n), False, "rmse")
    assert rmse < 1.0  # target spread is 3: the forest recovers most of it
