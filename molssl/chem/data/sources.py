"""Batch sources: over a store (seeded, resumable, sharded across ranks) and over SMILES in memory.

Both hand out :class:`~molssl.chem.data.batch.GraphBatch` objects built by the same ``gather``, so
training, prediction and fingerprints see identical batches of the same molecule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from molssl.chem.data.batch import GraphArrays, GraphBatch
from molssl.chem.data.inputs import SmilesChunk
from molssl.chem.data.parallel import MAX_ATOMS, parallel_featurize
from molssl.chem.data.store import MoleculeStore, build_store
from molssl.core import distributed as dist
from molssl.core.device import pin
from molssl.core.progress import Progress

OK = "ok"


class StoreBatches:
    """Batches of ``indices`` of a store; the order of epoch e depends only on (seed, e).

    Under torchrun each global batch of ``batch_size * world_size`` molecules is split across the
    ranks, so every molecule is seen once per epoch and no rank duplicates another's work. A rank
    runs the same number of batches; a last partial batch with fewer molecules than ranks is left out.
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
        features: Sequence[str] = (),
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
        self.features = tuple(features)

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        full, rest = divmod(self.indices.size, self.global_batch_size)
        # a last partial batch is kept only if every rank gets a molecule of it: every rank then takes
        # part in every batch (collectives such as gathered negatives need that) and none is empty
        return full + (0 if self.drop_last or rest < self.world_size else 1)

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        return np.random.default_rng([self.seed, epoch]).permutation(self.indices)

    def batches(self, epoch: int, start: int = 0) -> Iterator[GraphBatch]:
        order = self.order(epoch)
        for i in range(start, len(self)):
            chunk = order[i * self.global_batch_size:(i + 1) * self.global_batch_size]
            local = np.array_split(chunk, self.world_size)[self.rank]
            batch = self.store.gather(local, self.features)
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


class SmilesBatches:
    """Batches of featurized molecules with their input rows, from SMILES in memory or a store.

    Iterating yields ``(rows, GraphBatch)`` for the valid molecules in input order; ``status``
    (one entry per input: ``"ok"`` or ``"invalid: <reason>"``) is complete once iteration ends.
    From a list, SMILES are featurized chunk by chunk, in ``workers`` processes when above 1 (so
    featurizing the next chunk overlaps with the model working on this one); no disk store.
    ``features`` names row extras (e.g. ``rdkit2d``) computed alongside and attached to each batch.
    """

    def __init__(self, smiles: Sequence[str], batch_size: int = 256, workers: int = 1,
                 chunk_size: Optional[int] = None, progress: Optional[bool] = None, desc: str = "predicting",
                 featurizer: str = "molclr", features: Sequence[str] = (), max_atoms: int = MAX_ATOMS) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.smiles = list(smiles)
        # one batch per chunk: the model starts after the first batch is featurized, not after a big chunk
        self.batch_size, self.workers, self.chunk_size = batch_size, workers, chunk_size or batch_size
        self.status = [OK] * len(self.smiles)
        self.progress = progress
        self.desc = desc
        self.featurizer = featurizer
        self.features = tuple(features)
        self.max_atoms = max_atoms
        self._store: Optional[MoleculeStore] = None

    @classmethod
    def from_store(cls, store: MoleculeStore, status: list[str], batch_size: int = 256,
                   progress: Optional[bool] = None, desc: str = "predicting",
                   features: Sequence[str] = ()) -> "SmilesBatches":
        """Batches over an already featurized store (``status`` covers every input row)."""
        out = cls([], batch_size, progress=progress, desc=desc, featurizer=store.featurizer.name, features=features)
        out.status, out._store = status, store
        return out

    def __len__(self) -> int:
        return len(self.status)

    def _chunks(self) -> Iterator[tuple[np.ndarray, GraphArrays, dict[str, np.ndarray]]]:
        if self._store is not None:
            store = self._store
            yield (np.asarray(store.rows, dtype=np.int64), store.graphs,
                   {name: store.extra(name) for name in self.features})
            return
        n = len(self.smiles)
        chunks = (SmilesChunk(list(range(i, min(i + self.chunk_size, n))), list(range(i, min(i + self.chunk_size, n))),
                              self.smiles[i:i + self.chunk_size]) for i in range(0, n, self.chunk_size))
        for result in parallel_featurize(chunks, self.features, self.workers, self.featurizer,
                                         max_atoms=self.max_atoms):
            for row, _line, _smiles, reason in result.rejected:
                self.status[row] = f"invalid: {reason}"
            yield result.rows, result.graphs, result.rows_extras

    def __iter__(self) -> Iterator[tuple[np.ndarray, GraphBatch]]:
        with Progress(self.desc, total=len(self.status), enabled=self.progress) as bar:
            for rows, graphs, extras in self._chunks():
                for start in range(0, rows.size, self.batch_size):
                    index = np.arange(start, min(start + self.batch_size, rows.size))
                    batch = graphs.gather(index)
                    if self.features:
                        batch.features = {name: torch.from_numpy(np.ascontiguousarray(values[index]))
                                          for name, values in extras.items()}
                    yield rows[index], batch
                    bar.update(index.size)


IN_MEMORY_LIMIT = 20_000


def file_batches(path: Optional[Path], smiles_column: Optional[str], smiles: list[str], batch_size: int = 256,
                 workers: Optional[int] = None, cache_dir: Optional[str] = None, progress: Optional[bool] = None,
                 desc: str = "predicting", featurizer: str = "molclr", features: Sequence[str] = ()) -> SmilesBatches:
    """Batches of a file's molecules: in memory up to :data:`IN_MEMORY_LIMIT` rows, else via the cached store."""
    if len(smiles) <= IN_MEMORY_LIMIT or path is None:
        return SmilesBatches(smiles, batch_size, workers=workers or 1, progress=progress, desc=desc,
                             featurizer=featurizer, features=features)
    store = build_store(path, smiles_column=smiles_column, cache_dir=cache_dir, workers=workers,
                        progress=progress is not False, featurizer=featurizer, extras=features)
    status = [OK] * len(smiles)
    for row, reason in store.rejected_rows():
        status[row] = f"invalid: {reason}"
    return SmilesBatches.from_store(store, status, batch_size, progress, desc, features)
