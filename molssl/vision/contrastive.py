"""Two-view contrastive and self-distillation methods: SimCLR, MoCo v2 and BYOL.

Each is a *training module* for :class:`molssl.core.trainer.Trainer`: ``forward(batch)`` returns
``(loss, metrics)``. They are modality-agnostic: the view maker ``views`` turns a raw batch into its two
augmented views ``(view1, view2)`` (images here; two clips of a video in :mod:`molssl.video`), ``encoder`` maps a view to features
(``encoder.feature_dim`` wide). Losses, heads, momentum encoders and queues come from :mod:`molssl.core`.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from molssl.core.heads import PredictionHead, ProjectionHead
from molssl.core.losses import byol_loss, info_nce_with_queue, nt_xent
from molssl.core.momentum import MemoryQueue, MomentumEncoder


def _positive_alignment(a: Tensor, b: Tensor) -> float:
    """Mean cosine similarity of matching rows (a cheap training-progress metric)."""
    return float(nn.functional.cosine_similarity(a.detach().float(), b.detach().float(), dim=1).mean())


class SimCLR(nn.Module):
    """SimCLR (Chen et al. 2020): encoder + MLP projection head, NT-Xent over the 2N views of a batch."""

    def __init__(self, encoder: nn.Module, views: nn.Module, hidden_dim: int = 256, out_dim: int = 128,
                 temperature: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.views = views
        self.projector = ProjectionHead(encoder.feature_dim, hidden_dim, out_dim)
        self.temperature = temperature

    def forward(self, batch) -> tuple[Tensor, dict]:
        view1, view2 = self.views(batch)
        z = self.projector(self.encoder(torch.cat([view1, view2])))
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.temperature), {"pos_cos": _positive_alignment(z1, z2)}


def split_batch_forward(net: Callable[[Tensor], Tensor], x: Tensor, splits: int, shuffle: bool) -> Tensor:
    """Run ``net`` on ``splits`` sub-batches so BatchNorm statistics are per sub-batch.

    With ``shuffle`` the rows are permuted before splitting and un-permuted after: MoCo's "shuffling BN"
    (He et al. 2020, Sec. 3.3) on one device, so a key never shares BN statistics with its own query.
    """
    if splits <= 1 or x.shape[0] < 2 * splits:
        return net(x)
    order = torch.randperm(x.shape[0], device=x.device) if shuffle else None
    inputs = x[order] if shuffle else x
    out = torch.cat([net(chunk) for chunk in inputs.chunk(splits)])
    return out[torch.argsort(order)] if shuffle else out


class MoCo(nn.Module):
    """MoCo v2 (Chen et al. 2020, arXiv:2003.04297): MLP head, momentum key encoder, FIFO queue of negatives.

    Paper defaults: key-encoder momentum m=0.999, temperature 0.2. Keys of each step are enqueued after
    the loss is computed (training mode only); the key encoder follows the query encoder after each
    optimizer step.
    """

    def __init__(self, encoder: nn.Module, views: nn.Module, hidden_dim: int = 256, out_dim: int = 128,
                 temperature: float = 0.2, momentum: float = 0.999, queue_size: int = 4096, bn_splits: int = 2) -> None:
        super().__init__()
        self.encoder = encoder
        self.views = views
        self.query_net = nn.Sequential(encoder, ProjectionHead(encoder.feature_dim, hidden_dim, out_dim))
        self.key_net = MomentumEncoder(self.query_net, momentum)
        self.queue = MemoryQueue(queue_size, out_dim)
        self.temperature = temperature
        self.bn_splits = bn_splits

    def forward(self, batch) -> tuple[Tensor, dict]:
        view1, view2 = self.views(batch)
        q = split_batch_forward(self.query_net, view1, self.bn_splits, shuffle=False)
        with torch.no_grad():
            k = split_batch_forward(self.key_net, view2, self.bn_splits, shuffle=True)
        loss = info_nce_with_queue(q, k, self.queue.queue, self.temperature)
        metrics = {"pos_cos": _positive_alignment(q, k)}
        if self.training:
            self.queue.enqueue(nn.functional.normalize(k.float(), dim=1))
        return loss, metrics

    def after_optimizer_step(self) -> None:
        self.key_net.update(self.query_net)


def byol_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's target decay: tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2 (Grill et al. 2020, Sec. 3.2)."""
    if total_steps <= 0:
        return base
    progress = min(step, total_steps) / total_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class BYOL(nn.Module):
    """BYOL (Grill et al. 2020): online encoder + projector + predictor regress an EMA target; no negatives.

    The loss is symmetrised over the two views. ``total_steps`` drives the cosine increase of the target
    momentum from ``base_momentum`` (paper: 0.996) to 1; the step count is a buffer, so it resumes.
    """

    step: Tensor

    def __init__(self, encoder: nn.Module, views: nn.Module, hidden_dim: int = 256, out_dim: int = 128,
                 predictor_hidden_dim: int = 256, base_momentum: float = 0.996, total_steps: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.views = views
        self.online = nn.Sequential(encoder, ProjectionHead(encoder.feature_dim, hidden_dim, out_dim, batch_norm=True))
        self.predictor = PredictionHead(out_dim, predictor_hidden_dim, out_dim)
        self.target = MomentumEncoder(self.online, base_momentum)
        self.base_momentum = base_momentum
        self.total_steps = total_steps
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, batch) -> tuple[Tensor, dict]:
        view1, view2 = self.views(batch)
        both = torch.cat([view1, view2])
        p1, p2 = self.predictor(self.online(both)).chunk(2)
        z1, z2 = self.target(both).chunk(2)
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return loss, {"tau": self.target.momentum}

    def after_optimizer_step(self) -> None:
        self.step += 1
        self.target.momentum = byol_momentum(self.base_momentum, int(self.step), self.total_steps)
        self.target.update(self.online)
