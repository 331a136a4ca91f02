"""Attribute masking: pre-train an encoder to recover masked atoms' attributes from their surroundings.

Hu, Liu, Gomes, Zitnik, Liang, Pande & Leskovec, "Strategies for Pre-training Graph Neural Networks"
(ICLR 2020): a fraction of the atoms is replaced by a mask token and a linear classifier on each
masked atom's node embedding predicts what the atom was: a node-level task, where contrast (MolCLR)
and descriptor prediction (:mod:`molssl.chem.nn.physchem`) are graph-level ones. GraphMAE (Hou et al.,
KDD 2022) reconstructs masked atoms with a 25% rate on molecules, the rate used here by default
(``--mask-rate``). Hu et al. found a node-level task combined with a graph-level one to transfer best;
``--method physchem-attrmask`` is that combination (:class:`~molssl.chem.nn.physchem.PhysChem` with
``mask_attributes``: the descriptors are predicted from the same masked graph, in the same pass).

Atoms are chosen as MolCLR's masking chooses them (``max(1, floor(rate * n))`` per molecule), every
field of the featurizer is set to its mask token, and every field is predicted (atom type and
chirality; with the rich vocabulary also charge, hydrogens, degree, hybridization, aromaticity, ring
membership, ...): one linear classifier per field, cross-entropy averaged over the masked atoms'
fields. One forward pass per step and no second view (MolCLR encodes two): 1,080-1,160 molecules/s in
bf16 on the 2-core AMX Xeon, two runs side by side (benchmarks/results/quality_ablation.md, thirty-third section).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from molssl.chem.data.batch import GraphBatch
from molssl.chem.nn.augment import MolecularAugmentation, mask_atoms_flagged
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.core import distributed as dist


class MaskedAttributes(nn.Module):
    """The node-level task: which atoms to mask, and a linear classifier per atom field for their true values
    (one product for all fields: the classifiers are slices of one linear layer)."""

    def __init__(self, emb_dim: int, vocab: Sequence[int], mask_values: Sequence[int], rate: float) -> None:
        super().__init__()
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"the masking rate must lie in (0, 1], got {rate}")
        if len(mask_values) != len(vocab):
            raise ValueError(f"{len(vocab)} atom fields but {len(mask_values)} mask values")
        self.rate = rate
        self.mask_values = tuple(int(v) for v in mask_values)
        self.vocab = tuple(int(v) for v in vocab)
        self.classifier = nn.Linear(emb_dim, sum(self.vocab))

    def mask(self, batch: GraphBatch, generator: Optional[torch.Generator] = None) -> tuple[GraphBatch, Tensor]:
        """(the batch with the chosen atoms' fields set to the mask token, a flag per atom marking them)."""
        return mask_atoms_flagged(batch, self.rate, generator, self.mask_values)

    def loss(self, nodes: Tensor, x: Tensor, atoms: Tensor) -> tuple[Tensor, Tensor]:
        """(cross-entropy of the masked atoms' true fields ``x[atoms]``, averaged over atoms and fields on every
        rank; the fraction of masked atom types, the first field, predicted right)."""
        truth = x[atoms]
        logits = self.classifier(nodes[atoms]).float().split(self.vocab, dim=1)
        total = sum(F.cross_entropy(field, truth[:, j], reduction="sum") for j, field in enumerate(logits))
        loss = dist.global_mean(total, torch.tensor(float(truth.numel()), device=nodes.device))
        accuracy = (logits[0].argmax(1) == truth[:, 0]).float().mean() if truth.shape[0] else logits[0].new_zeros(())
        return loss, accuracy.detach()


def freeze_readout(encoder: MolecularEncoder) -> None:
    """Freeze ``feat_lin`` and the projection head of an encoder trained on node-level targets only: they get no
    gradient, and DistributedDataParallel would wait for one (fine-tuning trains ``feat_lin`` from its initial weights)."""
    encoder.head.requires_grad_(False)
    encoder.feat_lin.requires_grad_(False)


class AttributeMasking(nn.Module):
    """Attribute-masking objective (see the module docstring); ``forward`` returns (loss, metrics).

    Only the node embeddings are trained: the encoder's readout is frozen (:func:`freeze_readout`).
    """

    def __init__(self, encoder: MolecularEncoder, rate: float, mask_values: Sequence[int]) -> None:
        super().__init__()
        self.encoder = encoder
        freeze_readout(encoder)
        self.attributes = MaskedAttributes(encoder.config.emb_dim, encoder.featurizer.atom_vocab, mask_values, rate)

    def forward(self, batch: GraphBatch) -> tuple[Tensor, dict]:
        view, atoms = self.attributes.mask(batch)
        loss, accuracy = self.attributes.loss(self.encoder.node_embeddings(view), batch.x, atoms)
        return loss, {"accuracy": accuracy}


def build_attribute_masking(encoder: MolecularEncoder, augmentation: MolecularAugmentation, temperature: float,
                            **options) -> AttributeMasking:
    """The registry's builder: the masking rate and mask token are the augmentation's (``--mask-rate``, the
    featurizer's ``atom_mask``); no contrast, so the temperature is unused."""
    if options:
        raise ValueError(f"attribute masking takes no options, got {sorted(options)}")
    return AttributeMasking(encoder, augmentation.mask_rate, augmentation.mask_values)
