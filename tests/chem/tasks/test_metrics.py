"""Masked, task-averaged MoleculeNet metrics."""
from __future__ import annotations

import numpy as np
import pytest

from molssl.chem.tasks.metrics import HIGHER_IS_BETTER, mae, rmse, roc_auc, score, task_scores

nan = np.nan


def test_roc_auc_single_task_hand_value():
    # pairs (pos, neg): (0.8>0.1), (0.8>0.4), (0.35<0.4), (0.35>0.1) -> 3 of 4 ordered
    assert roc_auc([1, 0, 1, 0], [0.8, 0.1, 0.35, 0.4]) == pytest.approx(0.75)


def test_roc_auc_masks_missing_labels_and_skips_one_class_tasks():
    y = np.array([[1, 1, nan], [0, 1, nan], [1, 1, 1], [0, nan, 0]])
    p = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.5], [0.2, 0.4, 0.9], [0.8, 0.5, 0.1]])
    # task 0: positives 0.9, 0.2 vs negatives 0.1, 0.8 -> 3 of 4 pairs ordered;
    # task 1: one class among its labels -> skipped; task 2: 1.0
    np.testing.assert_allclose(task_scores("roc_auc", y, p), [0.75, nan, 1.0])
    assert roc_auc(y, p) == pytest.approx(0.875)
    p_changed = p.copy()
    p_changed[0, 2] = p_changed[3, 1] = -5.0  # values under missing labels do not matter
    assert roc_auc(y, p_changed) == pytest.approx(0.875)


def test_roc_auc_without_any_two_class_task_is_an_error():
    with pytest.raises(ValueError, match="no task has both classes"):
        roc_auc([[1, nan], [1, 0]], [[0.3, 0.1], [0.2, 0.4]])


def test_rmse_and_mae_per_task_then_averaged():
    y = np.array([[1.0, nan], [3.0, 10.0], [nan, 14.0]])
    p = np.array([[2.0, 0.0], [5.0, 13.0], [9.0, 10.0]])
    # task 0 errors (1, 2); task 1 errors (3, -4)
    assert rmse(y, p) == pytest.approx((np.sqrt(2.5) + np.sqrt(12.5)) / 2)
    assert mae(y, p) == pytest.approx((1.5 + 3.5) / 2)
    assert rmse(y[:, 0], p[:, 0]) == pytest.approx(np.sqrt(2.5))


def test_input_errors():
    with pytest.raises(ValueError, match="shape"):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN where labels are present"):
        mae([1.0, 2.0], [1.0, nan])
    with pytest.raises(ValueError, match="no task has a labelled molecule"):
        mae([nan, nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown metric"):
        score("accuracy", [1.0], [1.0])


def test_direction_table():
    assert HIGHER_IS_BETTER == {"roc_auc": True, "rmse": False, "mae": False}
