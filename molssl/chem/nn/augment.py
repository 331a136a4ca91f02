"""Batched molecular graph augmentations (MolCLR): atom masking, bond deletion, subgraph removal.

All operate on a whole :class:`GraphBatch` with tensor ops (no per-molecule Python loop), on
whatever device the batch lives on. Per-graph counts are exact: ``max(1, floor(rate * n_atoms))``
atoms and ``floor(rate * n_bonds)`` bonds, as in MolCLR's reference data pipeline (Wang et al.,
Nat. Mach. Intell. 2022). Randomness comes from ``generator`` (or torch's global RNG).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.featurize import MOLCLR

AUGMENTATIONS = ("mask", "delete", "subgraph")


def _rand(n: int, device: torch.device, generator: Optional[torch.Generator]) -> Tensor:
    if generator is not None and generator.device != device:
        return torch.rand(n, generator=generator, device=generator.device).to(device)
    return torch.rand(n, generator=generator, device=device)


def random_rank_in_groups(group: Tensor, num_groups: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """A uniformly random rank (0, 1, ...) of every item among the items of its group."""
    n = group.numel()
    if n == 0:
        return group.clone()
    key = _rand(n, group.device, generator)
    order = torch.argsort(group.to(torch.float64) + key.to(torch.float64))  # by group, random within
    counts = torch.bincount(group, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[order] = torch.arange(n, device=group.device) - starts[group[order]]
    return rank


def _count(rate: float, sizes: Tensor, at_least_one: bool) -> Tensor:
    k = torch.floor(sizes.to(torch.float64) * rate).to(torch.long)
    if at_least_one:
        k = torch.maximum(k, torch.ones_like(k))
    return torch.minimum(k, sizes)


def select_atoms(batch: GraphBatch, rate: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """A flag per atom: ``max(1, floor(rate * n))`` random atoms of each graph of ``n`` atoms."""
    k = _count(rate, batch.atoms_per_graph(), at_least_one=True)
    return random_rank_in_groups(batch.batch, batch.num_graphs, generator) < k[batch.batch]


def masked_fields(x: Tensor, atoms: Tensor, mask_values: Sequence[int]) -> Tensor:
    """Every field of the selected atoms set to its mask value (the featurizer's ``atom_mask``)."""
    if len(mask_values) != x.shape[1]:
        raise ValueError(f"atoms have {x.shape[1]} fields but the mask has {len(mask_values)} values: "
                         "augmentation and data use different featurizers")
    x = x.clone()
    x[atoms] = torch.as_tensor(mask_values, dtype=x.dtype, device=x.device)
    return x


def _keep_bonds(batch: GraphBatch, keep: Tensor) -> GraphBatch:
    """Keep the bonds flagged in ``keep`` (one flag per bond), both directions together."""
    edge_keep = keep.repeat_interleave(2)
    return batch.with_(edge_index=batch.edge_index[:, edge_keep], edge_attr=batch.edge_attr[edge_keep])


def mask_atoms(batch: GraphBatch, rate: float = 0.25, generator: Optional[torch.Generator] = None,
               mask_values: Sequence[int] = MOLCLR.atom_mask) -> GraphBatch:
    """Replace ``max(1, floor(rate*n))`` random atoms of each graph by the mask token (every field)."""
    return mask_atoms_flagged(batch, rate, generator, mask_values)[0]


def mask_atoms_flagged(batch: GraphBatch, rate: float, generator: Optional[torch.Generator] = None,
                       mask_values: Sequence[int] = MOLCLR.atom_mask) -> tuple[GraphBatch, Tensor]:
    """:func:`mask_atoms`, also returning a flag per atom marking the masked ones (the masking objectives'
    prediction targets)."""
    atoms = select_atoms(batch, rate, generator)
    return batch.with_(x=masked_fields(batch.x, atoms, mask_values)), atoms


def delete_bonds(batch: GraphBatch, rate: float = 0.25, generator: Optional[torch.Generator] = None) -> GraphBatch:
    """Delete ``floor(rate*m)`` random bonds of each graph (both directed edges of each)."""
    bond_graph = batch.bond_graph()
    k = _count(rate, torch.bincount(bond_graph, minlength=batch.num_graphs), at_least_one=False)
    deleted = random_rank_in_groups(bond_graph, batch.num_graphs, generator) < k[bond_graph]
    return _keep_bonds(batch, ~deleted)


def subgraph_atoms(batch: GraphBatch, rate: float = 0.25, generator: Optional[torch.Generator] = None) -> Tensor:
    """Boolean mask of a connected region per graph, grown from a random atom to exactly
    ``max(1, floor(rate*n))`` atoms: each round adds random neighbours of the region (a random
    unselected atom when the region's component is exhausted) until the count is reached."""
    sizes = batch.atoms_per_graph()
    target = _count(rate, sizes, at_least_one=True)
    selected = random_rank_in_groups(batch.batch, batch.num_graphs, generator) == 0  # one seed per graph
    src, dst = batch.edge_index
    while True:
        need = target - torch.bincount(batch.batch[selected], minlength=batch.num_graphs)
        if int(need.max()) <= 0:
            return selected
        frontier = torch.zeros_like(selected)
        frontier[dst[selected[src]]] = True
        frontier &= ~selected
        stuck = (need > 0) & (torch.bincount(batch.batch[frontier], minlength=batch.num_graphs) == 0)
        frontier |= stuck[batch.batch] & ~selected
        candidates = frontier.nonzero().squeeze(1)
        group = batch.batch[candidates]
        rank = random_rank_in_groups(group, batch.num_graphs, generator)
        selected[candidates[rank < need[group]]] = True


def remove_subgraph(batch: GraphBatch, rate: float = 0.25, generator: Optional[torch.Generator] = None,
                    mask_values: Sequence[int] = MOLCLR.atom_mask) -> GraphBatch:
    """Mask a connected region of each graph and cut every bond touching it (MolCLR subgraph removal)."""
    removed = subgraph_atoms(batch, rate, generator)
    src = batch.edge_index[0, 0::2]
    dst = batch.edge_index[1, 0::2]
    return _keep_bonds(batch.with_(x=masked_fields(batch.x, removed, mask_values)), ~(removed[src] | removed[dst]))


@dataclass
class MolecularAugmentation:
    """A composition of augmentations applied in order; MolCLR's default view is mask then delete."""

    augmentations: Sequence[str] = ("mask", "delete")
    mask_rate: float = 0.25
    delete_rate: float = 0.25
    subgraph_rate: float = 0.25
    mask_values: Sequence[int] = MOLCLR.atom_mask  # the featurizer's mask token of every atom field

    def __post_init__(self) -> None:
        unknown = [a for a in self.augmentations if a not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; choose from {list(AUGMENTATIONS)}")
        for name in ("mask_rate", "delete_rate", "subgraph_rate"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0) or math.isnan(value):
                raise ValueError(f"{name} must be in [0, 1], got {value}")

    def __call__(self, batch: GraphBatch, generator: Optional[torch.Generator] = None) -> GraphBatch:
        for name in self.augmentations:
            if name == "mask":
                batch = mask_atoms(batch, self.mask_rate, generator, self.mask_values)
            elif name == "delete":
                batch = delete_bonds(batch, self.delete_rate, generator)
            else:
                batch = remove_subgraph(batch, self.subgraph_rate, generator, self.mask_values)
        return batch
