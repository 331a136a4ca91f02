"""Contrastive and self-distillation losses, written with normalized matrix products.

Every loss here costs O(N^2) memory for a batch of N pairs (one similarity matrix),
never O(N^2 x D). Inputs may be bf16/fp16 under autocast; the losses compute in fp32.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _fp32(loss: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run ``loss`` with autocast off on its first tensor's device, so its matrix products stay in fp32."""

    @functools.wraps(loss)
    def wrapper(first: Tensor, *args, **kwargs) -> Tensor:
        with torch.autocast(device_type=first.device.type, enabled=False):
            return loss(first, *args, **kwargs)

    return wrapper


def _pair_similarities(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """Cosine similarities of all 2N views divided by the temperature, shape (2N, 2N)."""
    z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)
    return z @ z.t() / temperature


def _positive_index(n: int, device: torch.device) -> Tensor:
    """For view k of 2N, the index of its partner (k+N mod 2N)."""
    idx = torch.arange(2 * n, device=device)
    return (idx + n) % (2 * n)


NEGATIVE_WEIGHT_MODES = ("denominator", "similarity")


@_fp32
def nt_xent(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.1,
    negative_weights: Optional[Tensor] = None,
    weight_mode: str = "denominator",
) -> Tensor:
    """NT-Xent (SimCLR / MolCLR) between two views, mean over all 2N anchors.

    ``z1[i]`` and ``z2[i]`` are the positive pair; every other view in the batch is a negative.
    ``negative_weights`` (N, N), optional, weights each negative pair (i, k); the weight of a pair
    applies to all four view combinations of molecules i and k, and the positive keeps weight 1.

    - ``weight_mode="denominator"`` (default): ``w_ik exp(s_ik / T)`` inside the denominator, as in
      iMolCLR's weighted NT-Xent (Wang et al., J. Chem. Inf. Model. 2022, Eq. 3:
      ``w_ik = 1 - lambda1 * sim(M_i, M_k)``). All-ones weights give plain NT-Xent; weight 0
      removes a negative entirely.
    - ``weight_mode="similarity"``: ``exp(w_ik s_ik / T)``, the cosine itself scaled, as the iMolCLR
      reference code does (github.com/yuyangw/iMolCLR, ``utils/weighted_nt_xent.py``).
    """
    if z1.shape != z2.shape:
        raise ValueError(f"the two views must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if weight_mode not in NEGATIVE_WEIGHT_MODES:
        raise ValueError(f"weight_mode must be one of {NEGATIVE_WEIGHT_MODES}, got {weight_mode!r}")
    n = z1.shape[0]
    logits = _pair_similarities(z1, z2, temperature)
    eye = torch.eye(2 * n, dtype=torch.bool, device=logits.device)
    pos = _positive_index(n, logits.device)
    if negative_weights is None:
        return F.cross_entropy(logits.masked_fill(eye, float("-inf")), pos)
    w = negative_weights.to(device=logits.device, dtype=logits.dtype)
    if w.shape != (n, n):
        raise ValueError(f"negative_weights must be ({n}, {n}), got {tuple(w.shape)}")
    w = w.repeat(2, 2)
    rows = torch.arange(2 * n, device=logits.device)
    w[rows, pos] = 1.0  # the positive keeps weight 1
    if weight_mode == "similarity":
        return F.cross_entropy((logits * w).masked_fill(eye, float("-inf")), pos)
    # log sum_k w_k exp(l_k) = logsumexp(l_k + log w_k); weight 0 removes a negative entirely.
    weighted = (logits + torch.log(w.clamp_min(0.0))).masked_fill(eye, float("-inf"))
    log_denominator = torch.logsumexp(weighted, dim=1)
    return (log_denominator - logits[rows, pos]).mean()


@_fp32
def multi_positive_nt_xent(anchors: Tensor, items: Tensor, owner: Tensor, temperature: float = 0.1) -> Tensor:
    """NT-Xent of anchors against a pool of items, each item a positive of exactly one anchor.

    ``anchors`` (A, D), ``items`` (F, D), ``owner`` (F,) the anchor index of each item. For an anchor
    a with positives P(a) = {f : owner[f] = a}, the loss is
    ``-1/|P(a)| sum_{p in P(a)} log(exp(s_ap / T) / sum_f exp(s_af / T))`` over all F items (the
    other anchors' items are its negatives), cosine similarities; averaged over the anchors that own
    at least one item (iMolCLR's fragment contrast: molecules as anchors, their fragments as items).
    Zero, still attached to the graph, when no anchor owns an item.
    """
    if anchors.dim() != 2 or items.dim() != 2 or anchors.shape[1] != items.shape[1]:
        raise ValueError(f"anchors and items must be (A, D) and (F, D), got {tuple(anchors.shape)} and {tuple(items.shape)}")
    if owner.shape != (items.shape[0],) or owner.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"owner must be an integer tensor of shape ({items.shape[0]},), got {owner.dtype} {tuple(owner.shape)}")
    if owner.numel() and (int(owner.min()) < 0 or int(owner.max()) >= anchors.shape[0]):
        raise ValueError(f"owner indices must lie in [0, {anchors.shape[0]})")
    if items.shape[0] == 0:
        return anchors.float().sum() * 0.0
    a = F.normalize(anchors.float(), dim=1)
    f = F.normalize(items.float(), dim=1)
    logits = a @ f.t() / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = owner.to(logits.device).unsqueeze(0) == torch.arange(a.shape[0], device=logits.device).unsqueeze(1)
    count = positive.sum(dim=1)
    has = count > 0
    per_anchor = -(log_prob * positive).sum(dim=1)[has] / count[has]
    return per_anchor.mean()


class NTXentLoss(nn.Module):
    """Module wrapper around :func:`nt_xent`."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: Tensor, z2: Tensor, negative_weights: Optional[Tensor] = None) -> Tensor:
        return nt_xent(z1, z2, self.temperature, negative_weights)


@_fp32
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


@_fp32
def byol_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL regression loss 2 - 2 cos(p, z'), mean over the batch; the target gets no gradient."""
    p = F.normalize(prediction.float(), dim=1)
    z = F.normalize(target.float(), dim=1).detach()
    return (2.0 - 2.0 * (p * z).sum(dim=1)).mean()


@_fp32
def info_nce(query: Tensor, candidates: Tensor, targets: Tensor, temperature: float = 1.0,
             normalize: bool = True) -> Tensor:
    """InfoNCE against a shared candidate set: ``query`` (N, D), ``candidates`` (M, D), ``targets`` (N,) the
    index of each query's positive among the candidates; every other candidate is a negative.

    ``-log softmax(s(q_i, c) / T)[targets_i]``, mean over queries; ``s`` is the cosine similarity (or,
    with ``normalize=False``, the plain dot product, CPC's log-bilinear score with ``W_k`` applied to the
    query beforehand; Oord et al. 2018, Eq. 3-4). Gradients flow into the candidates too.
    """
    if query.dim() != 2 or candidates.dim() != 2 or query.shape[1] != candidates.shape[1]:
        raise ValueError(f"query and candidates must be (N, D) and (M, D), got {tuple(query.shape)} and {tuple(candidates.shape)}")
    if targets.shape != (query.shape[0],):
        raise ValueError(f"need one target index per query, got {tuple(targets.shape)} for {query.shape[0]} queries")
    q, c = query.float(), candidates.float()
    if normalize:
        q, c = F.normalize(q, dim=1), F.normalize(c, dim=1)
    return F.cross_entropy(q @ c.t() / temperature, targets.to(q.device))


@_fp32
def instance_discrimination_loss(query: Tensor, bank: Tensor, indices: Tensor, temperature: float = 0.07,
                                 negatives: Optional[Tensor] = None) -> Tensor:
    """Non-parametric softmax of instance discrimination (NPID, Wu et al. 2018, Eq. 2) over a memory bank.

    ``query`` (N, D) are current features, ``bank`` (K, D) the memory bank (constants, no gradient),
    ``indices`` (N,) each query's own entry, its positive. Without ``negatives`` the softmax runs over the
    whole bank; with ``negatives`` (N, M) bank indices it runs over the own entry and those M entries (a
    sampled softmax, as with NPID's 4,096 noise samples). Cosine similarities over ``temperature``
    (0.07 in NPID and PIRL). PIRL's loss terms (Misra & van der Maaten 2020, Eq. 4-5) are this function
    with the image or the jigsaw representation as the query.
    """
    bank = bank.detach()
    if negatives is None:
        return info_nce(query, bank, indices, temperature)
    q = F.normalize(query.float(), dim=1)
    b = F.normalize(bank.float(), dim=1)
    positive = (q * b[indices]).sum(dim=1, keepdim=True)
    negative = torch.einsum("nd,nmd->nm", q, b[negatives])
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


@_fp32
def bidirectional_info_nce(a: Tensor, b: Tensor, temperature: float = 0.1, weight: float = 0.5) -> Tensor:
    """ConVIRT's loss between paired embeddings of two modalities (Zhang et al. 2020, Eq. 2-4).

    Row i of ``a`` and of ``b`` (N, D) are a pair; ``weight`` lambda mixes the a->b term (each a_i picks
    its b_i among all b) and the b->a term: ``mean_i lambda l(a->b)_i + (1 - lambda) l(b->a)_i``; cosine
    similarities over ``temperature``. ConVIRT: lambda 0.75 (image-to-text), temperature 0.1; lambda 0.5
    is the symmetric (CLIP) form.
    """
    if a.shape != b.shape:
        raise ValueError(f"paired embeddings must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    targets = torch.arange(a.shape[0], device=a.device)
    return weight * info_nce(a, b, targets, temperature) + (1.0 - weight) * info_nce(b, a, targets, temperature)
