"""Batch sources over a molecule store: seeded shuffles, resumable from any batch, sharded across ranks."""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.store import MoleculeStore
from molssl.core import distributed as dist
from molssl.core.device import pin


class StoreBatches:
    """Batches of ``indices`` of a store; the order of epoch e depends only on (seed, e).

    Under torchrun each global batch of ``batch_size * world_size`` molecules is split across the
    ranks, so every molecule is seen once per epoch and no rank duplicates another's work.
    """

    def __init__(
        self,
        store: MoleculeStore,
        indices: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        pin_memory: bool = False,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.pin_memory = pin_memory
        self.rank = dist.rank() if rank is None else rank
        self.world_size = dist.world_size() if world_size is None else world_size

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        n = self.indices.size
        return n // self.global_batch_size if self.drop_last else -(-n // self.global_batch_size)

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        return np.random.default_rng([self.seed, epoch]).permutation(self.indices)

    def batches(self, epoch: int, start: int = 0) -> Iterator[GraphBatch]:
        order = self.order(epoch)
        for i in range(start, len(self)):
            chunk = order[i * self.global_batch_size:(i + 1) * self.global_batch_size]
            local = np.array_split(chunk, self.world_size)[self.rank]
            if local.size == 0:
                continue
            batch = self.store.gather(local)
            yield pin(batch) if self.pin_memory else batch


def train_valid_indices(n: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (seeded) split of 0..n-1 into training and validation positions."""
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {valid_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_valid = int(round(n * valid_fraction))
    if n_valid == 1:
        n_valid = 0  # a contrastive validation batch needs at least two molecules
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])
