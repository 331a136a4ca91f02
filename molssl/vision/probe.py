"""Frozen-feature evaluation: linear probe (logistic regression) and k-NN accuracy."""
from __future__ import annotations

import statistics
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from molssl.vision.data import to_unit_float


@torch.no_grad()
def extract_features(encoder: nn.Module, inputs: Tensor, device: torch.device, batch_size: int = 512,
                     prepare: Callable[[Tensor], Tensor] = to_unit_float) -> Tensor:
    """Encoder features (eval mode, no gradient) of ``inputs``, on the CPU as float32 (N, D)."""
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = [encoder(prepare(inputs[i:i + batch_size].to(device))).float().cpu()
                  for i in range(0, inputs.shape[0], batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(chunks)


def linear_probe_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                          c: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of an L2-regularised logistic regression on standardised frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x.numpy())
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit(scaler.transform(train_x.numpy()), train_y.numpy())
    return float(np.mean(clf.predict(scaler.transform(test_x.numpy())) == test_y.numpy()))


def knn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, k: int = 20) -> float:
    """Accuracy of a cosine-similarity k-NN classifier whose neighbours vote with their similarity."""
    if not 1 <= k <= train_x.shape[0]:
        raise ValueError(f"k must be between 1 and the {train_x.shape[0]} training samples, got {k}")
    a = nn.functional.normalize(train_x.float(), dim=1)
    b = nn.functional.normalize(test_x.float(), dim=1)
    sims, idx = (b @ a.t()).topk(k, dim=1)
    votes = torch.zeros(test_x.shape[0], int(train_y.max()) + 1)
    votes.scatter_add_(1, train_y[idx], sims.clamp_min(0) + 1e-6)
    return float((votes.argmax(1) == test_y).float().mean())


def probe_features(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, knn_k: int = 20) -> dict:
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
