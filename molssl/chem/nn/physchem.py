"""Descriptor prediction: pre-train an encoder to predict each molecule's RDKit 2D descriptors.

A self-supervised task whose targets are computed from the molecule itself, no measured labels:
MolBERT's "PhysChemPred" (Fabian et al., "Molecular representation learning with language models
and domain-relevant auxiliary tasks", arXiv:2011.13230, 2020) and ChemBERTa-2's multi-task
regression (Ahmad et al., arXiv:2209.01712, 2022: it transferred better than masked-language
pre-training) regress the ~200 descriptors of RDKit's list from the molecule's representation.
Here the encoder's graph representation ``h`` goes through a small MLP to the 217 descriptors of
the ``rdkit2d`` store extra (:mod:`molssl.chem.data.descriptors`, the same values the hybrid heads
use). One forward pass per step, no second view: about half a MolCLR step.

``--method physchem-ecfp`` adds a second head that predicts the molecule's 2048 ECFP4 bits (binary
cross-entropy; each bit is the presence of one circular substructure, the features on which a random
forest wins BACE): substructure prediction, as GROVER's motif task (Rong et al., NeurIPS 2020) predicts
RDKit's functional-group keys. The two losses are per-entry means, added with equal weight.

``--method physchem-attrmask`` predicts the descriptors from a graph whose atoms are masked at ``--mask-rate``
and, in the same pass, the masked atoms' attributes from their node embeddings
(:mod:`molssl.chem.nn.attribute_masking`): a graph-level and a node-level task, losses added.

RDKit's descriptors are heavy-tailed (``Ipc`` spans dozens of orders of magnitude), so each one is
centred on its median and scaled by its inter-quartile range (the standard deviation where that
range is 0), from the training molecules, and clipped to +-``clip``; descriptors that never vary
and entries RDKit could not compute (NaN) are left out of the loss. The statistics are buffers, so
checkpoints carry them and a resumed run uses the same targets.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.descriptors import column_medians
from molssl.chem.nn.attribute_masking import MaskedAttributes
from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.chem.nn.similarity import unpack_bits
from molssl.core import distributed as dist

DESCRIPTOR_EXTRA = "rdkit2d"
BITS_EXTRA = "ecfp2048"  # packed ECFP4 bits, the substructure targets of physchem-ecfp
STATISTICS_SAMPLE = 100_000  # rows that decide the medians and ranges; more moves them by little


def robust_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (centre, scale): median and IQR/1.349 (the std of a normal with that IQR), the std where
    the IQR is 0; scale 0 marks a column that never varies (or is never computed)."""
    values = np.asarray(values, dtype=np.float64)
    centre = column_medians(values)  # the hybrid heads' imputation values, 0 for a column never computed
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        q1, q3 = np.nanpercentile(values, [25, 75], axis=0)
        std = np.nanstd(values, axis=0)
    scale = (q3 - q1) / 1.349
    scale = np.where(scale > 0, scale, std)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 0.0)
    return centre.astype(np.float32), scale.astype(np.float32)


class PhysChem(nn.Module):
    """Descriptor-prediction objective (see the module docstring); ``forward`` returns (loss, metrics).

    ``augment``: predict the intact molecule's descriptors from one augmented view (a denoising variant)
    instead of from the molecule itself (MolBERT's setting, the default).
    ``n_bits``: also predict that many ECFP bits (the ``ecfp2048`` extra); 0 = descriptors only.
    ``mask_attributes``: mask atoms at the augmentation's ``mask_rate`` and also predict their attributes.
    """

    def __init__(self, encoder: MolecularEncoder, augmentation: Optional[MolecularAugmentation], n_targets: int,
                 augment: bool = False, clip: float = 5.0, n_bits: int = 0, mask_attributes: bool = False) -> None:
        super().__init__()
        if n_targets < 1:
            raise ValueError(f"n_targets must be positive, got {n_targets}")
        if not clip > 0:
            raise ValueError(f"clip must be positive, got {clip}")
        if augment and augmentation is None:
            raise ValueError("augment=True needs an augmentation")
        if mask_attributes and (augment or augmentation is None):
            raise ValueError("mask_attributes needs an augmentation (its mask rate and token) and excludes augment=True")
        if n_bits < 0:
            raise ValueError(f"n_bits must be 0 or positive, got {n_bits}")
        self.encoder = encoder
        # MolCLR's projection head takes no part here: frozen, so that DistributedDataParallel does not wait for
        # gradients it will never get (the encoder file keeps it, as every encoder.pt does)
        encoder.head.requires_grad_(False)
        self.augmentation = augmentation if augment else None
        self.clip = clip
        width = encoder.config.feat_dim
        self.regressor = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_targets))
        self.bit_classifier = (nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_bits))
                               if n_bits else None)
        self.attributes = (MaskedAttributes(encoder.config.emb_dim, encoder.featurizer.atom_vocab,
                                            augmentation.mask_values, augmentation.mask_rate)
                           if mask_attributes else None)
        self.register_buffer("centre", torch.zeros(n_targets))
        self.register_buffer("scale", torch.zeros(n_targets))  # all 0 = not fitted yet

    def fit_statistics(self, values: np.ndarray) -> int:
        """Set the targets' centres and scales from training rows; returns how many descriptors vary."""
        if values.ndim != 2 or values.shape[1] != self.centre.numel():
            raise ValueError(f"expected rows of {self.centre.numel()} descriptors, got shape {values.shape}")
        centre, scale = robust_statistics(values)
        self.centre.copy_(torch.from_numpy(centre))
        self.scale.copy_(torch.from_numpy(scale))
        return int((scale > 0).sum())

    def targets(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """(standardized, clipped targets; mask of the entries that count)."""
        if not bool((self.scale > 0).any()):
            raise RuntimeError("PhysChem.fit_statistics() must be called before training")
        values = values.to(self.centre.device, torch.float32)
        mask = torch.isfinite(values) & (self.scale > 0)
        safe_scale = torch.where(self.scale > 0, self.scale, torch.ones_like(self.scale))
        target = ((torch.nan_to_num(values) - self.centre) / safe_scale).clamp(-self.clip, self.clip)
        return torch.where(mask, target, torch.zeros_like(target)), mask

    def forward(self, batch: GraphBatch) -> tuple[Tensor, dict]:
        if batch.features is None or DESCRIPTOR_EXTRA not in batch.features:
            raise ValueError("descriptor pre-training needs the 'rdkit2d' store extra attached to each batch")
        if self.bit_classifier is not None and BITS_EXTRA not in batch.features:
            raise ValueError("ECFP-bit prediction needs the 'ecfp2048' store extra attached to each batch")
        target, mask = self.targets(batch.features[DESCRIPTOR_EXTRA])
        if self.attributes is not None:
            view, atoms = self.attributes.mask(batch)
            nodes = self.encoder.node_embeddings(view)
            h = self.encoder.readout(nodes, view)
        else:
            view = self.augmentation(batch) if self.augmentation is not None else batch
            h = self.encoder.represent(view)
        prediction = self.regressor(h).float()
        weight = mask.float()
        squared = (prediction - target).square() * weight
        loss = dist.global_mean(squared.sum(), weight.sum())
        # fraction of the targets' variance explained in this batch (1 = perfect), a readable progress figure
        centred = (target - (target * weight).sum(0) / weight.sum(0).clamp(min=1.0)) * weight
        explained = 1.0 - squared.sum() / centred.square().sum().clamp(min=1e-12)
        metrics = {"r2": explained.detach()}
        if self.attributes is None and self.bit_classifier is None:
            return loss, metrics
        metrics["loss_descriptors"] = loss.detach()  # one of several terms: each is logged
        if self.attributes is not None:
            loss_attributes, accuracy = self.attributes.loss(nodes, batch.x, atoms)
            metrics.update(loss_attributes=loss_attributes.detach(), accuracy=accuracy)
            loss = loss + loss_attributes
        if self.bit_classifier is None:
            return loss, metrics
        bits = unpack_bits(batch.features[BITS_EXTRA].to(h.device))
        logits = self.bit_classifier(h).float()
        if logits.shape != bits.shape:
            raise ValueError(f"expected {logits.shape[1]} ECFP bits per molecule, got {bits.shape[1]}")
        cross_entropy = F.binary_cross_entropy_with_logits(logits, bits, reduction="sum")
        loss_bits = dist.global_mean(cross_entropy, torch.tensor(float(bits.numel()), device=h.device))
        metrics["loss_bits"] = loss_bits.detach()
        return loss + loss_bits, metrics
