"""Momentum (EMA) target networks and a FIFO memory queue of negatives."""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, for parameters and float buffers."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers()):
        if t.dtype.is_floating_point:
            t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
        else:
            t.copy_(o)


class MomentumEncoder(nn.Module):
    """A frozen EMA copy of a network (MoCo key encoder, BYOL/SODA target)."""

    def __init__(self, online: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.target = copy.deepcopy(online)
        for p in self.target.parameters():
            p.requires_grad_(False)

    def update(self, online: nn.Module) -> None:
        ema_update(self.target, online, self.momentum)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.target(*args, **kwargs)


class MemoryQueue(nn.Module):
    """A FIFO queue of K embeddings (MoCo's dictionary of negatives), kept as a buffer."""

    queue: Tensor
    pointer: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size <= 0:
            raise ValueError("queue size must be positive")
        self.register_buffer("queue", nn.functional.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Overwrite the oldest entries with ``keys`` (N, D), wrapping around."""
        keys = keys.detach().to(self.queue.dtype)
        size = self.queue.shape[0]
        n = keys.shape[0]
        if n > size:
            keys, n = keys[-size:], size
        start = int(self.pointer)
        idx = (start + torch.arange(n, device=self.queue.device)) % size
        self.queue[idx] = keys
        self.pointer.fill_((start + n) % size)
