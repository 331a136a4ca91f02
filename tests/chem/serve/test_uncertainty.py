"""Split-conformal intervals and Platt scaling: the guarantees hold on synthetic data, ensembles combine their members' records."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from molssl.chem.serve.uncertainty import (ConformalIntervals, PlattScaling, brier_score, calibrate,
                                           conformal_quantile, expected_calibration_error, fit_platt)


def _member(tasks, rows, y, pred):
    return SimpleNamespace(tasks=tasks, meta={"calibration": {"rows": np.asarray(rows), "y_true": y[:, None],
                                                              "y_pred": pred[:, None]}})


def _synthetic(rng, n, members=3):
    """Heteroscedastic regression: noise grows with |x|; members disagree more where the noise is larger."""
    x = rng.uniform(-3, 3, n)
    scale = 0.2 + 0.5 * np.abs(x)
    y = np.sin(x) + scale * rng.standard_normal(n)
    preds = np.sin(x)[None, :] + 0.4 * scale[None, :] * rng.standard_normal((members, n))
    return y, preds


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 10, dtype=float)  # n = 9
    assert conformal_quantile(scores, 0.8) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 0.9) == 9.0
    assert math.isinf(conformal_quantile(scores, 0.95))  # ceil(10 * 0.95) = 10 > n: no finite interval


@pytest.mark.parametrize("members", [1, 3])
def test_interval_coverage_holds_within_sampling_error(members):
    """Calibrate on 1,000 molecules, test on 20,000 exchangeable ones: coverage 0.9 +- 3 standard errors.

    Given the calibration set, coverage is Beta-distributed with sd ~ sqrt(0.09 / 1002) = 0.0095, and
    the test estimate adds sqrt(0.09 / 20000) = 0.002; 0.03 is about three of their combined sd.
    """
    rng = np.random.default_rng(0)
    y_cal, p_cal = _synthetic(rng, 1000, members)
    y_test, p_test = _synthetic(rng, 20000, members)
    fake = [_member(["t"], np.arange(1000), y_cal, p_cal[k]) for k in range(members)]
    calibration = calibrate("regression", ["t"], fake)
    assert isinstance(calibration, ConformalIntervals)
    assert np.isfinite(calibration.beta[0]) == (members > 1)  # ensembles normalize by their spread
    mean, std = p_test.mean(0), p_test.std(0)
    for coverage in (0.8, 0.9, 0.95):
        half = calibration.half_width(std[:, None], coverage)[:, 0]
        covered = np.mean(np.abs(y_test - mean) <= half)
        assert abs(covered - coverage) < 0.03, (coverage, covered)
    if members > 1:  # normalized intervals adapt: wider where members disagree
        half = calibration.half_width(std[:, None], 0.9)[:, 0]
        assert np.corrcoef(half, std)[0, 1] > 0.99


def test_members_validated_on_different_molecules_are_pooled():
    rng = np.random.default_rng(1)
    y, p = _synthetic(rng, 400, members=2)
    fake = [_member(["t"], np.arange(200), y[:200], p[0, :200]), _member(["t"], np.arange(200, 400), y[200:], p[1, 200:])]
    calibration = calibrate("regression", ["t"], fake)
    assert not np.isfinite(calibration.beta[0]) and calibration.n == [400]


def test_files_without_records_give_no_calibration():
    assert calibrate("regression", ["t"], [SimpleNamespace(tasks=["t"], meta={})]) is None


def test_platt_scaling_fixes_overconfident_probabilities():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 6000)
    y = (rng.uniform(size=truth.size) < truth).astype(float)
    logit = np.log(truth / (1 - truth))
    overconfident = 1 / (1 + np.exp(-3 * logit))  # the right ranking, probabilities pushed to 0 and 1
    a, b = fit_platt(overconfident[:1000], y[:1000])
    assert a == pytest.approx(1 / 3, abs=0.08) and abs(b) < 0.2
    scaling = PlattScaling(np.array([a]), np.array([b]), [1000])
    after = scaling.apply(overconfident[1000:, None])[:, 0]
    test = y[1000:]
    assert expected_calibration_error(after, test) < 0.5 * expected_calibration_error(overconfident[1000:], test)
    assert brier_score(after, test) < brier_score(overconfident[1000:], test)
    assert np.array_equal(np.argsort(after), np.argsort(overconfident[1000:]))  # ranking (ROC-AUC) unchanged


def test_platt_leaves_tasks_with_too_few_labels_alone():
    y = np.array([1.0, 0.0, np.nan, 1.0])
    fake = [_member(["t"], np.arange(4), y, np.array([0.9, 0.2, 0.5, 0.7]))]
    scaling = calibrate("classification", ["t"], fake)
    p = np.array([[0.3], [0.8]])
    assert np.array_equal(scaling.apply(p), p) and "not calibrated" in scaling.describe()[0]


def test_brier_and_ece_of_perfect_and_constant_predictions():
    y = np.array([0.0, 1.0, 1.0, 0.0, np.nan])
    assert brier_score(np.array([0, 1, 1, 0, 0.5]), y) == 0.0
    assert expected_calibration_error(np.full(5, 0.5), y) == 0.0  # 0.5 for a 50% base rate is calibrated
    assert expected_calibration_error(np.full(5, 0.9), y) == pytest.approx(0.4)


def test_platt_never_reverses_a_tasks_ranking():
    """A fit whose slope comes out negative (a few validation labels ranked against the model) would turn the model's
    ranking around for every later molecule: that task gets its base rate corrected only (slope 1, intercept fitted)."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 60)
    y = (p < 0.3).astype(float)  # the validation molecules say: the lower the probability, the likelier positive
    assert fit_platt(p, y)[0] < 0
    scaling = calibrate("classification", ["t"], [_member(["t"], np.arange(60), y, p)])
    later = np.array([[0.1], [0.6], [0.9]])
    assert scaling.a[0] == 1.0 and np.all(np.diff(scaling.apply(later)[:, 0]) > 0)  # the ranking kept
    # the intercept moves the mean probability to the smoothed base rate of the labels (~30% positives, mean p ~0.5)
    assert scaling.apply(p[:, None]).mean() == pytest.approx((y.sum() + 1) / (y.size + 2), abs=0.05)
    agreeing = calibrate("classification", ["t"], [_member(["t"], np.arange(60), 1 - y, p)])
    assert 0 < agreeing.a[0] != 1.0 and np.all(np.diff(agreeing.apply(later)[:, 0]) > 0)


def test_platt_with_a_fixed_slope_fits_the_intercept_alone():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, 500)
    y = (rng.uniform(size=500) < 0.2 * p).astype(float)  # far fewer positives than the probabilities say
    a, b = fit_platt(p, y, slope=1.0)
    assert a == 1.0 and b < -1.0
    assert fit_platt(p, y)[0] != 1.0  # without it both move



def test_platt_keeps_the_ranking_of_saturated_probabilities():
    """The fit clips logits at 1e-6 (a few saturated validation outputs must not set the slope); applying must not:
    a clip there tied BACE's most confident test molecules and lowered the ROC-AUC users got below its card's."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, 200)
    y = (rng.uniform(size=200) < p).astype(float)
    # how far below the clip a saturated validation output lies does not move the fit
    assert fit_platt(np.r_[p, 1e-9, 1 - 1e-9], np.r_[y, 0, 1]) == fit_platt(np.r_[p, 1e-13, 1 - 1e-13], np.r_[y, 0, 1])
    scaling = calibrate("classification", ["t"], [_member(["t"], np.arange(200), y, p)])
    saturated = np.array([0.0, 1e-30, 1e-12, 1e-9, 3e-7, 0.5, 1 - 3e-7, 1 - 1e-9, 1 - 1e-12, 1.0])
    after = scaling.apply(saturated[:, None])[:, 0]
    assert np.all(np.isfinite(after)) and np.all(np.diff(after) > 0)  # strictly increasing: no two molecules tied
