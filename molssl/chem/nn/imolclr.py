"""iMolCLR: MolCLR plus faulty-negative mitigation and BRICS fragment contrast.

Wang, Magar, Liang and Barati Farimani, "Improving Molecular Contrastive Learning via Faulty
Negative Mitigation and Decomposed Fragment Contrast", J. Chem. Inf. Model. 62, 2713 (2022);
reference code github.com/yuyangw/iMolCLR. Total loss ``L = L_mol + lambda2 * L_frag``:

- ``L_mol``: NT-Xent between two augmented views in which each negative pair (i, k) is weighted
  by ``w_ik = 1 - lambda1 * Tanimoto(M_i, M_k)`` inside the denominator
  (:func:`molssl.core.losses.nt_xent`, ``weight_mode="denominator"``); ``weight_mode="similarity"``
  scales the cosine instead, as the reference code does. Defaults lambda1 = lambda2 = 0.5 (the
  reference ``config.yaml``). Fingerprints are ECFP4 bits from the store, Tanimoto on the device
  (:mod:`molssl.chem.nn.similarity`).
- ``L_frag``: each molecule's view projections are anchors, the projections of its own BRICS
  fragments (:mod:`molssl.chem.data.fragments`, encoded by the same encoder and head) are its positives
  and the other molecules' fragments its negatives (:func:`molssl.core.losses.multi_positive_nt_xent`),
  averaged over the two views. Molecules with no fragment (BRICS does not split them, or every piece
  has 3 atoms or fewer) are not anchors, as in the reference code where they contribute no fragment.
  The reference code instead pools each fragment's atoms inside the two augmented molecule graphs and
  runs plain NT-Xent between the two views' fragment embeddings (same fragment = positive, every
  other fragment, of the same molecule or not, = negative).
"""
from __future__ import annotations

import torch
from torch import Tensor

from molssl.chem.nn.augment import MolecularAugmentation, random_rank_in_groups
from molssl.chem.data.batch import GraphBatch
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.chem.tasks.pretrain import MolCLR
from molssl.chem.nn.similarity import DEFAULT_LAMBDA1, negative_weights, tanimoto_matrix
from molssl.core import distributed as dist
from molssl.core.losses import NEGATIVE_WEIGHT_MODES, multi_positive_nt_xent, nt_xent

DEFAULT_LAMBDA2 = 0.5


def select_graphs(batch: GraphBatch, keep: Tensor) -> GraphBatch:
    """The graphs flagged in ``keep`` (num_graphs,) bool, renumbered in order, on the batch's device."""
    atom_keep = keep[batch.batch]
    new_atom = torch.cumsum(atom_keep, 0) - 1
    edge_keep = atom_keep[batch.edge_index[0]]
    new_graph = torch.cumsum(keep, 0) - 1
    counts = batch.atoms_per_graph()[keep]
    return GraphBatch(
        x=batch.x[atom_keep],
        edge_index=new_atom[batch.edge_index[:, edge_keep]],
        edge_attr=batch.edge_attr[edge_keep],
        batch=new_graph[batch.batch[atom_keep]],
        ptr=torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]),
        index=batch.index[keep],
    )


class IMolCLR(MolCLR):
    """iMolCLR training module (see the module docstring); ``forward`` returns (loss, metrics).

    ``max_fragments`` (default 1; 0 = all) contrasts at most that many randomly chosen fragments
    per molecule each step, a cheaper estimate of the fragment term in which every fragment still
    takes part over the epochs. Encoding all fragments adds about 0.8 of a view's atoms to each step
    (measured +44% over a MolCLR step, ``benchmarks/results/imolclr_throughput.md``); one per
    molecule keeps the whole iMolCLR overhead under the 30% budget. Fragment graphs go through the
    encoder in a separate pass, so in training mode its BatchNorm statistics also see fragments.
    """

    def __init__(
        self,
        encoder: MolecularEncoder,
        augmentation: MolecularAugmentation,
        temperature: float = 0.1,
        lambda1: float = DEFAULT_LAMBDA1,
        lambda2: float = DEFAULT_LAMBDA2,
        weight_mode: str = "denominator",
        max_fragments: int = 1,
    ) -> None:
        super().__init__(encoder, augmentation, temperature)
        if not 0.0 <= lambda1 <= 1.0:
            raise ValueError(f"lambda1 must lie in [0, 1], got {lambda1}")
        if lambda2 < 0:
            raise ValueError(f"lambda2 must be >= 0, got {lambda2}")
        if weight_mode not in NEGATIVE_WEIGHT_MODES:
            raise ValueError(f"weight_mode must be one of {NEGATIVE_WEIGHT_MODES}, got {weight_mode!r}")
        if max_fragments < 0:
            raise ValueError(f"max_fragments must be >= 0 (0 = all fragments), got {max_fragments}")
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.weight_mode = weight_mode
        self.max_fragments = max_fragments

    def molecule_loss(self, z1: Tensor, z2: Tensor, batch: GraphBatch) -> Tensor:
        """Weighted NT-Xent of the gathered views ``z1``, ``z2`` (plain NT-Xent when lambda1 = 0)."""
        if self.lambda1 == 0:
            return nt_xent(z1, z2, self.temperature)
        if batch.ecfp is None:
            raise ValueError("iMolCLR with lambda1 > 0 needs fingerprints: build the store with the 'ecfp' extra")
        weights = negative_weights(tanimoto_matrix(dist.all_gather_tensor(batch.ecfp)), self.lambda1)
        return nt_xent(z1, z2, self.temperature, negative_weights=weights, weight_mode=self.weight_mode)

    def fragment_loss(self, z1: Tensor, z2: Tensor, batch: GraphBatch) -> Tensor:
        """Molecule-vs-fragments NT-Xent of the gathered views against all ranks' fragments, mean of the two views."""
        if batch.fragments is None or batch.fragment_owner is None:
            raise ValueError("iMolCLR with lambda2 > 0 needs BRICS fragments: build the store with the 'fragments' extra")
        fragments, owner = batch.fragments, batch.fragment_owner
        if self.max_fragments and owner.numel():
            keep = random_rank_in_groups(owner, batch.num_graphs) < self.max_fragments
            fragments, owner = select_graphs(fragments, keep), owner[keep]
        # every rank takes part in the gathers, also one whose molecules BRICS does not split
        zf = self.encoder(fragments)[1] if owner.numel() else z1.new_zeros((0, z1.shape[1]))
        zf, owner = dist.gather_with_grad(zf), dist.gather_index(owner, batch.num_graphs)
        if owner.numel() == 0:
            return (z1.sum() + z2.sum()) * 0.0
        return 0.5 * (multi_positive_nt_xent(z1, zf, owner, self.temperature)
                      + multi_positive_nt_xent(z2, zf, owner, self.temperature))

    def forward(self, batch: GraphBatch) -> tuple[Tensor, dict]:
        _, z1, _, z2 = self.views(batch)
        z1, z2 = dist.gather_with_grad(z1), dist.gather_with_grad(z2)
        loss_mol = self.molecule_loss(z1, z2, batch)
        if self.lambda2 == 0:
            return loss_mol, {"loss_mol": loss_mol.detach()}
        loss_frag = self.fragment_loss(z1, z2, batch)
        return loss_mol + self.lambda2 * loss_frag, {"loss_mol": loss_mol.detach(), "loss_frag": loss_frag.detach()}
