"""A memory bank: one L2-normalized feature per training sample, refreshed by an exponential moving average.

Instance discrimination (NPID, Wu et al. 2018) and PIRL (Misra & van der Maaten 2020) compare a sample's
current feature with the bank's entries of every other sample instead of computing them again each step.
Unlike :class:`~molssl.core.momentum.MemoryQueue` (FIFO keys of recent batches), an entry belongs to one
sample and is found by the sample's index in the training set.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MemoryBank(nn.Module):
    """``size`` unit vectors of ``dim``; ``update`` moves entry i towards a new feature of sample i.

    ``momentum`` m: ``v_i <- normalize(m v_i + (1 - m) f_i)``; m = 0 replaces the entry (NPID, Sec. 3.2),
    0.5 is the NPID/PIRL reference setting. Entries start as random unit vectors. A buffer, so it is
    checkpointed with the model and resumes exactly.
    """

    features: Tensor

    def __init__(self, size: int, dim: int, momentum: float = 0.5) -> None:
        super().__init__()
        if size < 2 or dim < 1:
            raise ValueError(f"a memory bank needs at least 2 entries and 1 dimension, got {size} x {dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"memory bank momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.register_buffer("features", F.normalize(torch.randn(size, dim), dim=1))

    def __len__(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def update(self, indices: Tensor, features: Tensor) -> None:
        """EMA-update the entries ``indices`` (N,) with ``features`` (N, D) (normalized here); no gradient."""
        if indices.dim() != 1 or features.shape != (indices.shape[0], self.features.shape[1]):
            raise ValueError(f"need indices (N,) and features (N, {self.features.shape[1]}), "
                             f"got {tuple(indices.shape)} and {tuple(features.shape)}")
        new = F.normalize(features.detach().float(), dim=1).to(self.features.dtype)
        mixed = self.momentum * self.features[indices] + (1.0 - self.momentum) * new
        self.features[indices] = F.normalize(mixed, dim=1)

    @torch.no_grad()
    def sample_negatives(self, indices: Tensor, count: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """(N, count) bank indices drawn uniformly without the sample's own entry (with replacement across rows).

        Draws from ``size - 1`` values and shifts those at or above the own index up by one, so every
        other entry is equally likely and the own entry never appears.
        """
        size = self.features.shape[0]
        if count < 1:
            raise ValueError(f"need at least one negative, got {count}")
        draws = torch.randint(0, size - 1, (indices.shape[0], count), generator=generator,
                              device=self.features.device if generator is None else generator.device)
        draws = draws.to(indices.device)
        return draws + (draws >= indices[:, None]).long()
