"""Paired molecule images and SMILES: RDKit depictions with their SMILES, a held-out split, and batches.

Images come from :func:`molssl.vision.depictions.render_corpus` (the SMILES file is read where it lies).
Training batches pair each depiction with a randomized SMILES of its molecule (the text augmentation),
seeded by (run seed, epoch, molecule), so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from molssl.multimodal.text import random_smiles, tokenize
from molssl.vision.data import ImageDataset, stratified_split
from molssl.vision.depictions import LABELS, PRIMARY_LABEL, render_corpus


@dataclass
class Pairs:
    """``images`` uint8 (N, 3, S, S), the canonical ``smiles`` they show, and chemistry ``labels`` (N,) by name."""

    images: Tensor
    smiles: list[str]
    labels: dict[str, Tensor]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor) -> "Pairs":
        rows = index.tolist()
        return Pairs(self.images[index], [self.smiles[i] for i in rows], {k: v[index] for k, v in self.labels.items()})

    def as_images(self) -> ImageDataset:
        """The depictions as an image dataset with every label (for probing the image encoder)."""
        sets = {name: (self.labels[name], list(LABELS[name])) for name in LABELS}
        return ImageDataset(self.images, self.labels[PRIMARY_LABEL], list(LABELS[PRIMARY_LABEL]), sets)


def load_pairs(path: str | Path, count: int, size: int) -> Pairs:
    corpus = render_corpus(path, count, size)
    return Pairs(corpus.images, corpus.smiles, corpus.labels)


def split_pairs(pairs: Pairs, test_count: int, seed: int) -> tuple[Pairs, Pairs]:
    """(train, test) with ``test_count`` held-out molecules, stratified by the ring-count label."""
    if not 0 < test_count < len(pairs):
        raise ValueError(f"the held-out molecules must be between 1 and {len(pairs) - 1}, got {test_count}")
    train, test = stratified_split(pairs.labels[PRIMARY_LABEL], test_count / len(pairs), seed)
    return pairs.subset(train), pairs.subset(test)


class PairBatches:
    """Shuffled batches ``(images, tokens)``: depictions and character tokens of a randomized SMILES of each
    molecule (canonical SMILES with ``randomize=False``). Epoch ``e`` always gives the same batches."""

    def __init__(self, pairs: Pairs, batch_size: int, max_len: int, seed: int = 0, randomize: bool = True) -> None:
        from rdkit import Chem

        if batch_size < 2 or batch_size > len(pairs):
            raise ValueError(f"batch_size must be between 2 and the {len(pairs)} training pairs, got {batch_size}")
        self.pairs, self.batch_size, self.max_len, self.seed, self.randomize = pairs, batch_size, max_len, seed, randomize
        self.mols = [Chem.MolFromSmiles(s) for s in pairs.smiles] if randomize else []

    def __len__(self) -> int:
        return len(self.pairs) // self.batch_size

    def texts(self, rows: list[int], epoch: int) -> list[str]:
        if not self.randomize:
            return [self.pairs.smiles[i] for i in rows]
        return [random_smiles(self.mols[i], (self.seed * 1_000_003 + epoch) * 1_000_033 + i) for i in rows]

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(len(self.pairs), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        for b in range(start, len(self)):
            rows = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.pairs.images[rows], tokenize(self.texts(rows.tolist(), epoch), self.max_len)
