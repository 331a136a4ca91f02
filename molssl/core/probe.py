"""Frozen-feature evaluation shared by every modality: linear probe, few-shot probe, k-NN, margin tables.

Features are (N, D) arrays or tensors of an encoder in eval mode; labels are integer classes.
"""
from __future__ import annotations

import statistics
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor


def _numpy(x: np.ndarray | Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def fit_linear_probe(x_train: np.ndarray | Tensor, y_train: np.ndarray | Tensor, c: float = 1.0,
                     max_iter: int = 2000) -> Callable[[np.ndarray | Tensor], np.ndarray]:
    """Standardize, fit an L2-regularized (multinomial) logistic regression; returns a class predictor."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _numpy(x_train), _numpy(y_train)
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=max_iter).fit(scaler.transform(x), y)
    return lambda features: clf.predict(scaler.transform(_numpy(features)))


def linear_probe_accuracy(train_x, train_y, test_x, test_y, c: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of :func:`fit_linear_probe` trained on the training features."""
    predict = fit_linear_probe(train_x, train_y, c, max_iter)
    return float(np.mean(predict(test_x) == _numpy(test_y)))


def few_shot_accuracy(x_train, y_train, x_test, y_test, shots: int, repeats: int = 10,
                      seed: int = 0) -> tuple[float, float]:
    """Mean and std of test accuracy of probes fitted on ``shots`` random samples per class."""
    x_train, y_train, x_test, y_test = map(_numpy, (x_train, y_train, x_test, y_test))
    classes, counts = np.unique(y_train, return_counts=True)
    if shots < 1 or shots > counts.min():
        raise ValueError(f"shots must be in [1, {counts.min()}] (the smallest class), got {shots}")
    rng = np.random.default_rng(seed)
    accuracies = []
    for _ in range(repeats):
        idx = np.concatenate([rng.choice(np.flatnonzero(y_train == c), shots, replace=False) for c in classes])
        predict = fit_linear_probe(x_train[idx], y_train[idx])
        accuracies.append(float((predict(x_test) == y_test).mean()))
    return float(np.mean(accuracies)), float(np.std(accuracies))


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 20) -> float:
    """Accuracy of a cosine-similarity k-NN classifier whose neighbours vote with their similarity."""
    train_x, test_x = torch.as_tensor(_numpy(train_x)).float(), torch.as_tensor(_numpy(test_x)).float()
    train_y, test_y = torch.as_tensor(_numpy(train_y)).long(), torch.as_tensor(_numpy(test_y)).long()
    if not 1 <= k <= train_x.shape[0]:
        raise ValueError(f"k must be between 1 and the {train_x.shape[0]} training samples, got {k}")
    a = torch.nn.functional.normalize(train_x, dim=1)
    b = torch.nn.functional.normalize(test_x, dim=1)
    sims, idx = (b @ a.t()).topk(k, dim=1)
    votes = torch.zeros(test_x.shape[0], int(train_y.max()) + 1)
    votes.scatter_add_(1, train_y[idx], sims.clamp_min(0) + 1e-6)
    return float((votes.argmax(1) == test_y).float().mean())


def probe_features(train_x, train_y, test_x, test_y, knn_k: int = 20) -> dict:
    """``{"linear": ..., "knn": ...}`` test accuracies for one set of frozen features."""
    return {"linear": linear_probe_accuracy(train_x, train_y, test_x, test_y),
            "knn": knn_accuracy(train_x, train_y, test_x, test_y, knn_k)}


def margin_cells(random: Sequence[float], trained: Sequence[float]) -> str:
    """Markdown table cells for one score over seeds, trained vs random init (pairs in seed order):
    ``mean random | mean trained | mean margin | per-seed margins (wins/seeds)``."""
    if not random or len(random) != len(trained):
        raise ValueError(f"need one random-init and one trained score per seed, got {len(random)} and {len(trained)}")
    margins = [t - r for r, t in zip(random, trained)]
    per_seed = ", ".join(f"{m:+.3f}" for m in margins)
    return (f"{statistics.fmean(random):.3f} | {statistics.fmean(trained):.3f} | {statistics.fmean(margins):+.3f} | "
            f"{per_seed} ({sum(m > 0 for m in margins)}/{len(margins)})")
