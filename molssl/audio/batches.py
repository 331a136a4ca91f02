"""A deterministic batch source over an in-memory clip tensor (for :class:`molssl.core.trainer.Trainer`)."""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from molssl.core.device import pin


class ClipBatches:
    """Shuffled batches of clips (B, T); epoch ``e`` uses the permutation seeded by ``seed + e``.

    Incomplete last batches are dropped so every contrastive batch has the same number of negatives.
    """

    def __init__(self, clips: Tensor, batch_size: int, seed: int = 0) -> None:
        if clips.dim() != 2:
            raise ValueError(f"expected clips of shape (N, samples), got {tuple(clips.shape)}")
        if batch_size < 2:
            raise ValueError(f"a contrastive batch needs at least 2 clips, got batch_size={batch_size}")
        self.clips, self.batch_size, self.seed = clips, batch_size, seed

    def __len__(self) -> int:
        return self.clips.shape[0] // self.batch_size

    def batches(self, epoch: int, start: int = 0) -> Iterator[Tensor]:
        order = torch.randperm(self.clips.shape[0], generator=torch.Generator().manual_seed(self.seed + epoch))
        for i in range(start, len(self)):
            yield pin(self.clips[order[i * self.batch_size:(i + 1) * self.batch_size]])
