"""Contrastive and self-distillation losses, written with normalized matrix products.

Every loss here costs O(N^2) memory for a batch of N pairs (one similarity matrix),
never O(N^2 x D). Inputs may be bf16/fp16 under autocast; the losses compute in fp32.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pair_similarities(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """Cosine similarities of all 2N views divided by the temperature, shape (2N, 2N)."""
    z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)
    return z @ z.t() / temperature


def _positive_index(n: int, device: torch.device) -> Tensor:
    """For view k of 2N, the index of its partner (k+N mod 2N)."""
    idx = torch.arange(2 * n, device=device)
    return (idx + n) % (2 * n)


def nt_xent(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.1,
    negative_weights: Optional[Tensor] = None,
) -> Tensor:
    """NT-Xent (SimCLR / MolCLR) between two views, mean over all 2N anchors.

    ``z1[i]`` and ``z2[i]`` are the positive pair; every other view in the batch is a negative.
    ``negative_weights`` (N, N), optional, scales the exponentiated similarity of each negative
    pair (i, k) inside the denominator, as in iMolCLR's weighted NT-Xent
    (Wang et al., J. Chem. Inf. Model. 2022, Eq. 3: w_ik = 1 - lambda1 * sim(M_i, M_k)); the
    weight of a pair applies to all four view combinations of molecules i and k. All-ones
    weights give plain NT-Xent.
    """
    if z1.shape != z2.shape:
        raise ValueError(f"the two views must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    logits = _pair_similarities(z1, z2, temperature)
    eye = torch.eye(2 * n, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(eye, float("-inf"))
    pos = _positive_index(n, logits.device)
    if negative_weights is None:
        return F.cross_entropy(logits, pos)
    w = negative_weights.to(logits.dtype)
    if w.shape != (n, n):
        raise ValueError(f"negative_weights must be ({n}, {n}), got {tuple(w.shape)}")
    w = w.repeat(2, 2)
    w[torch.arange(2 * n, device=w.device), pos] = 1.0  # the positive keeps weight 1
    # log sum_k w_k exp(l_k) = logsumexp(l_k + log w_k); weight 0 removes a negative entirely.
    weighted = logits + torch.log(w.clamp_min(0.0))
    log_denominator = torch.logsumexp(weighted, dim=1)
    return (log_denominator - logits[torch.arange(2 * n, device=logits.device), pos]).mean()


class NTXentLoss(nn.Module):
    """Module wrapper around :func:`nt_xent`."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: Tensor, z2: Tensor, negative_weights: Optional[Tensor] = None) -> Tensor:
        return nt_xent(z1, z2, self.temperature, negative_weights)


def info_nce_with_queue(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    """InfoNCE of MoCo: one positive key per query against a queue of negative keys.

    ``query`` and ``key`` are (N, D), ``queue`` is (K, D); keys are treated as constants.
    """
    q = F.normalize(query.float(), dim=1)
    k = F.normalize(key.float(), dim=1).detach()
    negatives = F.normalize(queue.float(), dim=1).detach()
    positive_logits = (q * k).sum(dim=1, keepdim=True)
    negative_logits = q @ negatives.t()
    logits = torch.cat([positive_logits, negative_logits], dim=1) / temperature
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def byol_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL regression loss 2 - 2 cos(p, z'), mean over the batch; the target gets no gradient."""
    p = F.normalize(prediction.float(), dim=1)
    z = F.normalize(target.float(), dim=1).detach()
    return (2.0 - 2.0 * (p * z).sum(dim=1)).mean()
