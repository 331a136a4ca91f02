"""MoleculeNet metrics over (molecules x tasks) arrays with NaN marking missing labels.

Each task is scored on its labelled rows only, then the task scores are averaged. For ROC-AUC a
task counts only if both classes occur among its labelled rows in the evaluated split (the usual
MoleculeNet/MolCLR convention); if no task qualifies, the score is undefined and an error says so.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

Metric = Literal["roc_auc", "rmse", "mae"]
HIGHER_IS_BETTER = {"roc_auc": True, "rmse": False, "mae": False}


def _as_2d(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels have shape {y_true.shape} but predictions {y_pred.shape}")
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    if y_true.ndim != 2:
        raise ValueError(f"expected (molecules,) or (molecules, tasks) arrays, got {y_true.shape}")
    if np.isnan(y_pred[~np.isnan(y_true)]).any():
        raise ValueError("predictions contain NaN where labels are present")
    return y_true, y_pred


def task_scores(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """One score per task; NaN for tasks that cannot be scored (no labels, or one class only)."""
    from sklearn.metrics import mean_absolute_error, roc_auc_score, root_mean_squared_error

    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(HIGHER_IS_BETTER)}")
    y_true, y_pred = _as_2d(y_true, y_pred)
    scores = np.full(y_true.shape[1], np.nan)
    for j in range(y_true.shape[1]):
        labelled = ~np.isnan(y_true[:, j])
        t, p = y_true[labelled, j], y_pred[labelled, j]
        if metric == "roc_auc":
            if len(np.unique(t)) == 2:
                scores[j] = roc_auc_score(t, p)
        elif len(t):
            scores[j] = (root_mean_squared_error if metric == "rmse" else mean_absolute_error)(t, p)
    return scores


def score(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The metric averaged over the tasks that can be scored (see the module docstring)."""
    scores = task_scores(metric, y_true, y_pred)
    if np.isnan(scores).all():
        if metric == "roc_auc":
            raise ValueError("ROC-AUC is undefined: no task has both classes among its labelled "
                             "molecules in this split")
        raise ValueError(f"{metric} is undefined: no task has a labelled molecule in this split")
    return float(np.nanmean(scores))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean ROC-AUC over tasks with both classes present (labels 0/1, NaN = missing)."""
    return score("roc_auc", y_true, y_score)


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over tasks of the RMSE on labelled molecules."""
    return score("rmse", y_true, y_pred)


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over tasks of the MAE on labelled molecules."""
    return score("mae", y_true, y_pred)
