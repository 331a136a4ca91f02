"""Instance-level methods: every training image is its own class.

- :class:`NPID` — non-parametric instance discrimination with a memory bank (Wu et al. 2018).
- :class:`PIRL` — pretext-invariant representations: an image and its jigsaw-shuffled tiles are pulled
  towards the image's memory-bank entry (Misra & van der Maaten 2020).
- :class:`ExemplarCNN` — a parametric classifier over the training images under heavy augmentation
  (Dosovitskiy et al. 2014).

Batches are ``(images, indices)``: each image's position in the training set, its bank entry or class.
The bank and the loss come from :mod:`molssl.core` (:class:`~molssl.core.memory_bank.MemoryBank`,
:func:`~molssl.core.losses.instance_discrimination_loss`).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.losses import instance_discrimination_loss
from molssl.core.memory_bank import MemoryBank
from molssl.vision.data import to_unit_float
from molssl.vision.pretext import grid_tiles


def _sized(name: str, value: Optional[int]) -> int:
    if value is None or value < 2:
        raise ValueError(f"{name} must be the number of training images (at least 2), got {value}; build the "
                         "module from the config a run recorded (load_module returns it)")
    return value


class MemoryBankMethod(nn.Module):
    """The shared part of NPID and PIRL: a linear embedding to ``embed_dim`` (L2-normalized), the bank, and the
    loss against it over the whole bank (when it holds at most ``negatives`` other entries) or over
    ``negatives`` entries drawn at random."""

    def __init__(self, encoder: nn.Module, bank_size: Optional[int], embed_dim: int, temperature: float,
                 negatives: int, bank_momentum: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.embed = nn.Linear(encoder.feature_dim, embed_dim)
        self.bank = MemoryBank(_sized("bank_size", bank_size), embed_dim, bank_momentum)
        self.temperature = temperature
        self.negatives = negatives

    def image_embedding(self, images: Tensor) -> Tensor:
        return F.normalize(self.embed(self.encoder(images)), dim=1)

    def bank_loss(self, query: Tensor, indices: Tensor) -> Tensor:
        sampled = None
        if self.negatives < len(self.bank) - 1:
            sampled = self.bank.sample_negatives(indices, self.negatives)
        return instance_discrimination_loss(query, self.bank.features, indices, self.temperature, sampled)

    def bank_alignment(self, query: Tensor, indices: Tensor) -> float:
        """Mean cosine between the queries and their own (pre-update) bank entries."""
        return float((query.detach().float() * self.bank.features[indices]).sum(dim=1).mean())


class NPID(MemoryBankMethod):
    """Non-parametric instance discrimination (Wu et al. 2018).

    One augmented view per image is embedded (linear layer to 128-d, L2-normalized; Sec. 3.1) and
    classified among all images by a softmax over the memory bank with temperature 0.07 (Sec. 3.1);
    NPID draws 4,096 negatives (Sec. 3.2), here the whole bank when it holds fewer. The image's entry is
    then moved towards its new embedding with momentum 0.5 (the NPID and PIRL reference setting).
    NPID's proximal regularization (Sec. 3.4) is left out.
    """

    def __init__(self, encoder: nn.Module, augment: nn.Module, bank_size: Optional[int] = None, embed_dim: int = 128,
                 temperature: float = 0.07, negatives: int = 4096, bank_momentum: float = 0.5) -> None:
        super().__init__(encoder, bank_size, embed_dim, temperature, negatives, bank_momentum)
        self.augment = augment

    def forward(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict]:
        images, indices = batch
        z = self.image_embedding(self.augment(to_unit_float(images)))
        loss = self.bank_loss(z, indices)
        metrics = {"bank_cos": self.bank_alignment(z, indices)}
        if self.training:
            self.bank.update(indices, z)
        return loss, metrics


class PIRL(MemoryBankMethod):
    """Pretext-invariant representation learning with the jigsaw transformation (Misra & van der Maaten 2020).

    ``f(v_I)``: the encoder on one augmented view, linearly embedded. ``g(v_It)``: the encoder on each of
    the ``grid`` x ``grid`` tiles of another view, in a random order, each tile's features linearly
    embedded, concatenated and embedded again (Sec. 4.1). Loss (Eq. 5):
    ``jigsaw_weight * L(m_I, g(v_It)) + (1 - jigsaw_weight) * L(m_I, f(v_I))``, each an InfoNCE against the
    memory bank (the image's own entry ``m_I`` the positive, other entries the negatives; PIRL's NCE form is
    replaced by the softmax form), lambda = 0.5 and temperature 0.07 as in the paper; the bank holds an
    exponential moving average (0.5) of ``f(v_I)``.
    """

    def __init__(self, encoder: nn.Module, views: nn.Module, bank_size: Optional[int] = None, embed_dim: int = 128,
                 temperature: float = 0.07, negatives: int = 4096, bank_momentum: float = 0.5,
                 jigsaw_weight: float = 0.5, grid: int = 3) -> None:
        super().__init__(encoder, bank_size, embed_dim, temperature, negatives, bank_momentum)
        if not 0.0 <= jigsaw_weight <= 1.0:
            raise ValueError(f"jigsaw_weight must be in [0, 1], got {jigsaw_weight}")
        self.views = views
        self.grid = grid
        self.jigsaw_weight = jigsaw_weight
        self.tile_embed = nn.Linear(encoder.feature_dim, embed_dim)
        self.jigsaw_embed = nn.Linear(grid * grid * embed_dim, embed_dim)

    def jigsaw_embedding(self, images: Tensor) -> Tensor:
        """``g(v_It)``: tiles of each image shuffled by a random permutation, embedded, concatenated, embedded."""
        tiles = grid_tiles(images, self.grid)
        b, k = tiles.shape[:2]
        order = torch.rand(b, k, device=tiles.device).argsort(dim=1)
        shuffled = tiles[torch.arange(b, device=tiles.device)[:, None], order]
        per_tile = self.tile_embed(self.encoder(shuffled.flatten(0, 1))).view(b, -1)
        return F.normalize(self.jigsaw_embed(per_tile), dim=1)

    def forward(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict]:
        images, indices = batch
        view1, view2 = self.views(images)
        f = self.image_embedding(view1)
        g = self.jigsaw_embedding(view2)
        w = self.jigsaw_weight
        loss = w * self.bank_loss(g, indices) + (1.0 - w) * self.bank_loss(f, indices)
        metrics = {"bank_cos": self.bank_alignment(f, indices), "jigsaw_cos": self.bank_alignment(g, indices)}
        if self.training:
            self.bank.update(indices, f)
        return loss, metrics


class ExemplarCNN(nn.Module):
    """Exemplar CNN (Dosovitskiy et al. 2014): a classifier over ``num_exemplars`` surrogate classes, one per
    training image, trained on heavily augmented copies (rotation, translation, scaling, colour; see
    :class:`~molssl.vision.augment.AugmentConfig`), with dropout before the classifier as in the paper."""

    def __init__(self, encoder: nn.Module, augment: nn.Module, num_exemplars: Optional[int] = None,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.classifier = nn.Sequential(nn.Dropout(dropout),
                                        nn.Linear(encoder.feature_dim, _sized("num_exemplars", num_exemplars)))

    def forward(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict]:
        images, indices = batch
        logits = self.classifier(self.encoder(self.augment(to_unit_float(images))))
        loss = F.cross_entropy(logits.float(), indices)
        return loss, {"acc": float((logits.argmax(1) == indices).float().mean())}
