"""Uncertainty: split-conformal intervals for regression, Platt-calibrated probabilities for classification.

Both are fitted on the validation split a model was fine-tuned with; each ``model.pt`` stores its
validation molecules, labels and predictions (:mod:`molssl.chem.serve.reliability`) and an ensemble
combines its members' records when it is loaded, so the coverage can be chosen at prediction time.

**Regression: split-conformal prediction** (Vovk et al. 2005; Lei et al. 2018, "Distribution-free
predictive inference for regression"). With nonconformity scores s_1..s_n on the calibration
(validation) set, the interval for coverage 1 - alpha is prediction +- q, q the
ceil((n + 1)(1 - alpha))-th smallest score; it covers a new molecule's true value with probability
>= 1 - alpha when calibration and new molecules are exchangeable. For an ensemble the score is
normalized by its spread (Papadopoulos et al. 2008, normalized nonconformity):
s = |y - mean| / (std + beta), interval mean +- q (std + beta), with beta the median validation std,
so molecules on which the members disagree get wider intervals and none gets a zero-width one. A
single model (or members validated on different molecules) uses s = |y - prediction|.

**Classification: Platt scaling** (Platt 1999, with its smoothed targets; the Newton iteration of
Lin, Lin & Weng 2007) of the ensemble's mean probability, per task: p' = sigmoid(a logit(p) + b).
Platt rather than isotonic regression because validation splits here are small (BBBP ~200, BACE ~150
molecules; Tox21 ~20-60 positives per task): isotonic regression has one free step per distinct
score and overfits below roughly a thousand calibration samples (Niculescu-Mizil & Caruana 2005),
while Platt's two parameters per task keep the model's ranking (ROC-AUC unchanged) and only fix the
probabilities' scale. A task with fewer than :data:`MIN_LABELS` labels or one class is left as is. Where the
fitted slope a is not positive (on a few validation molecules with few positives the fit can come out reversed, as
on a Tox21 and three SIDER tasks with ~10 positives) it would reverse the model's ranking for every later molecule,
so only b is fitted, with a = 1: the prior-shift correction (Saerens et al. 2002), which undoes the constant logit
offset that balanced class weights put into a model and keeps its ranking.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

MIN_LABELS = 20
# Platt's (a, b) are fitted on logits clipped at EPS, so that a few saturated validation outputs do not set the
# slope; applied, the logit is only kept finite (float64's range), so the mapping stays strictly increasing: a clip
# at EPS there tied 17 of BACE's test molecules (mean probability < 1e-6) and lowered its ROC-AUC below the card's.
EPS = 1e-6


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: the ceil((n + 1) coverage)-th smallest score (inf when n is too small)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    k = math.ceil((scores.size + 1) * coverage)
    return float(scores[k - 1]) if 1 <= k <= scores.size else math.inf


def check_coverage(coverage: float) -> float:
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie strictly between 0 and 1 (e.g. 0.9), got {coverage}")
    return float(coverage)


@dataclass
class ConformalIntervals:
    """Per task: sorted nonconformity scores, and beta (NaN where scores are plain absolute residuals)."""

    scores: list[np.ndarray]
    beta: np.ndarray
    n: list[int] = field(default_factory=list)

    method = "split-conformal"

    def half_width(self, std: np.ndarray, coverage: float) -> np.ndarray:
        """(n_molecules, n_tasks) half widths of the intervals at ``coverage``."""
        q = np.array([conformal_quantile(s, coverage) for s in self.scores])
        normalized = np.isfinite(self.beta)
        scale = np.where(normalized, np.asarray(std, dtype=np.float64) + np.nan_to_num(self.beta), 1.0)
        return q * scale

    def describe(self, coverage: float) -> list[str]:
        return [(f"ensemble-normalized |y - mean| / (std + {b:.3g})" if np.isfinite(b) else "absolute residual |y - y_hat|")
                + f", {n} validation molecules, q({coverage:g}) = {conformal_quantile(s, coverage):.4g}"
                for s, b, n in zip(self.scores, self.beta, self.n)]


@dataclass
class PlattScaling:
    """Per task (a, b) with p' = sigmoid(a logit(p) + b); NaN entries leave that task's probabilities as they are."""

    a: np.ndarray
    b: np.ndarray
    n: list[int] = field(default_factory=list)

    method = "Platt scaling"

    def apply(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        fitted = np.isfinite(self.a)
        z = np.nan_to_num(self.a) * logit(p) + np.nan_to_num(self.b)
        return np.where(fitted, sigmoid(z), p)

    def describe(self, coverage: float = 0.0) -> list[str]:
        return [f"Platt a={a:.3g} b={b:.3g} on {n} validation labels" if np.isfinite(a)
                else f"not calibrated ({n} validation labels or one class)" for a, b, n in zip(self.a, self.b, self.n)]


def logit(p: np.ndarray, eps: Optional[float] = None) -> np.ndarray:
    """log(p / (1 - p)) in float64, p clipped to [eps, 1 - eps] (None: only to keep it finite)."""
    p = np.asarray(p, dtype=np.float64)
    low, high = (eps, 1 - eps) if eps is not None else (np.finfo(np.float64).tiny, np.nextafter(1.0, 0.0))
    p = np.clip(p, low, high)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow, and without rounding to 0 before float64 must (tanh's form did at z < -37)."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def fit_platt(p: np.ndarray, y: np.ndarray, iterations: int = 100, slope: Optional[float] = None) -> tuple[float, float]:
    """(a, b) minimizing the cross entropy of sigmoid(a logit(p) + b) against Platt's smoothed targets; with ``slope``
    given, a stays at it and b alone is fitted."""
    f = logit(p, EPS)
    y = np.asarray(y, dtype=np.float64)
    positives = y.sum()
    target = np.where(y > 0.5, (positives + 1) / (positives + 2), 1 / (y.size - positives + 2))
    params = np.array([1.0 if slope is None else float(slope), 0.0])  # the identity when nothing is fixed
    free = np.array([slope is None, True])

    def loss(w: np.ndarray) -> float:
        z = w[0] * f + w[1]
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    current = loss(params)
    for _ in range(iterations):
        q = sigmoid(params[0] * f + params[1])
        gradient = np.array([np.sum((q - target) * f), np.sum(q - target)])[free]
        if np.abs(gradient).max() < 1e-9 * max(1, y.size):
            break
        w = q * (1 - q)
        hessian = np.array([[np.sum(w * f * f), np.sum(w * f)], [np.sum(w * f), np.sum(w)]])[np.ix_(free, free)]
        step = np.zeros(2)
        step[free] = np.linalg.solve(hessian + 1e-9 * np.eye(int(free.sum())), gradient)
        size = 1.0
        while size > 1e-6 and loss(params - size * step) > current:
            size /= 2
        if size <= 1e-6:
            break
        params = params - size * step
        current = loss(params)
    return float(params[0]), float(params[1])


def brier_score(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared difference of probability and 0/1 label (labelled entries only)."""
    mask = ~np.isnan(y)
    return float(np.mean((np.asarray(p)[mask] - y[mask]) ** 2)) if mask.any() else math.nan


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE with ``bins`` equal-width probability bins: sum over bins of (share of molecules) x |mean p - mean y|."""
    mask = ~np.isnan(y)
    p, y = np.asarray(p)[mask], y[mask]
    if not p.size:
        return math.nan
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return float(total)


def _task_samples(records: Sequence[dict], columns: Sequence[int]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(predictions (members, n), labels (n,), aligned) of one task over the members that predict it.

    Members validated on the same molecules are aligned (one row per molecule); otherwise their
    (prediction, label) pairs are pooled as if each were a member of its own.
    """
    rows = [np.asarray(r["rows"]) for r in records]
    aligned = all(np.array_equal(rows[0], other) for other in rows[1:])
    preds = [np.asarray(r["y_pred"], dtype=np.float64)[:, j] for r, j in zip(records, columns)]
    labels = [np.asarray(r["y_true"], dtype=np.float64)[:, j] for r, j in zip(records, columns)]
    if aligned:
        return np.stack(preds), labels[0], True
    return np.concatenate(preds)[None, :], np.concatenate(labels), False


def calibrate(task_type: str, tasks: Sequence[str], members: Sequence,
              metas: Optional[Sequence[dict]] = None) -> Optional[ConformalIntervals | PlattScaling]:
    """The calibration of an ensemble from its members' validation records (None if any member has none);
    ``metas``: the members' records as the ensemble uses them (default: their files')."""
    records = [meta.get("calibration") for meta in (metas if metas is not None else [m.meta for m in members])]
    if not records or not all(isinstance(r, dict) for r in records):
        return None
    scores, betas, a, b, counts = [], [], [], [], []
    for task in tasks:
        owners = [(r, m.tasks.index(task)) for r, m in zip(records, members) if task in m.tasks]
        preds, y, aligned = _task_samples([r for r, _ in owners], [j for _, j in owners])
        labelled = ~np.isnan(y)
        preds, y = preds[:, labelled], y[labelled]
        counts.append(int(y.size))
        mean = preds.mean(axis=0)
        if task_type == "regression":
            std = np.sqrt(np.clip((preds ** 2).mean(axis=0) - mean ** 2, 0, None))
            beta = float(np.median(std)) if aligned and preds.shape[0] > 1 and y.size else math.nan
            beta = beta if beta > 0 else math.nan
            scores.append(np.sort(np.abs(y - mean) / (std + beta) if np.isfinite(beta) else np.abs(y - mean)))
            betas.append(beta)
        elif y.size >= MIN_LABELS and 0 < y.sum() < y.size:
            a_t, b_t = fit_platt(mean, y)
            if a_t <= 0:  # would reverse the task's ranking: correct the base rate only
                a_t, b_t = fit_platt(mean, y, slope=1.0)
            a.append(a_t)
            b.append(b_t)
        else:
            a.append(math.nan)
            b.append(math.nan)
    if task_type == "regression":
        return ConformalIntervals(scores, np.asarray(betas, dtype=np.float64), counts)
    return PlattScaling(np.asarray(a), np.asarray(b), counts)
