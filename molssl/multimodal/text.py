"""SMILES as text: a fixed character vocabulary, randomized SMILES (the text augmentation) and a character CNN.

Randomized SMILES write the same molecule from another starting atom and branch order (RDKit's
``MolToRandomSmilesVect``), seeded per sample, so a batch source can re-create any batch exactly.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

# Every character RDKit writes in SMILES of organic molecules; others map to UNKNOWN. 0 pads.
ALPHABET = "#%()+-./0123456789:=@ABCDEFGHIKLMNOPRSTUVWXYZ[\\]abcdefghiklmnoprstuy"
PAD, UNKNOWN = 0, 1
VOCAB_SIZE = len(ALPHABET) + 2
_INDEX = {char: i + 2 for i, char in enumerate(ALPHABET)}


def tokenize(texts: Sequence[str], max_len: int) -> Tensor:
    """(N, max_len) long character indices, padded with :data:`PAD` and cut at ``max_len``."""
    out = torch.zeros(len(texts), max_len, dtype=torch.long)
    for row, text in enumerate(texts):
        codes = [_INDEX.get(char, UNKNOWN) for char in text[:max_len]]
        out[row, :len(codes)] = torch.tensor(codes, dtype=torch.long)
    return out


def random_smiles(mol, seed: int) -> str:
    """One randomized SMILES of an RDKit molecule; the same ``seed`` gives the same string."""
    from rdkit import Chem

    return Chem.MolToRandomSmilesVect(mol, 1, randomSeed=int(seed) % 2_147_483_647)[0]


class SmilesCNN(nn.Module):
    """Character-level text encoder: embedding, ``layers`` 1-D conv-BN-ReLU stages with growing dilation
    (1, 2, 4, ... so the receptive field covers rings and branches), then mean and max pooling over the
    characters (padding excluded), summed, to ``width`` features."""

    def __init__(self, embed_dim: int = 64, width: int = 128, layers: int = 3, kernel: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, embed_dim, padding_idx=PAD)
        stages: list[nn.Module] = []
        channels = embed_dim
        for i in range(layers):
            dilation = 2 ** i
            stages += [nn.Conv1d(channels, width, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
                       nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            channels = width
        self.net = nn.Sequential(*stages)
        self.feature_dim = width

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"expected (batch, length) long character indices, got {tokens.dtype} {tuple(tokens.shape)}")
        present = (tokens != PAD).unsqueeze(1)  # (B, 1, L)
        h = self.net(self.embed(tokens).transpose(1, 2)) * present
        count = present.sum(dim=2).clamp_min(1)
        mean = h.sum(dim=2) / count
        peak = h.masked_fill(~present, float("-inf")).amax(dim=2)
        return mean + torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))

