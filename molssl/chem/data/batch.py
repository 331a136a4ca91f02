"""A batch of molecular graphs as flat tensors (the layout every encoder and augmentation uses)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import Tensor


@dataclass
class GraphBatch:
    """``num_graphs`` molecules concatenated.

    x           (n_atoms, 2) long: atom type index, chirality tag
    edge_index  (2, 2*n_bonds) long: bond k is stored as edges 2k (u->v) and 2k+1 (v->u)
    edge_attr   (2*n_bonds, 2) long: bond type, bond direction
    batch       (n_atoms,) long: graph id of each atom
    ptr         (num_graphs + 1,) long: atom offsets of the graphs
    index       (num_graphs,) long: position of each molecule in its store
    ecfp        (num_graphs, n_bytes) uint8 packed fingerprint bits, when the store has them
    fragments   the molecules' BRICS fragments as a GraphBatch, when the store has them
    fragment_owner (n_fragments,) long: which graph of this batch each fragment comes from
    """

    x: Tensor
    edge_index: Tensor
    edge_attr: Tensor
    batch: Tensor
    ptr: Tensor
    index: Tensor
    ecfp: Optional[Tensor] = None
    fragments: Optional["GraphBatch"] = None
    fragment_owner: Optional[Tensor] = None

    @property
    def num_graphs(self) -> int:
        return self.ptr.numel() - 1

    @property
    def num_atoms(self) -> int:
        return self.x.shape[0]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def atoms_per_graph(self) -> Tensor:
        return self.ptr[1:] - self.ptr[:-1]

    def bond_graph(self) -> Tensor:
        """Graph id of each bond (one entry per bond, i.e. per pair of directed edges)."""
        return self.batch[self.edge_index[0, 0::2]]

    def bonds_per_graph(self) -> Tensor:
        return torch.bincount(self.bond_graph(), minlength=self.num_graphs)

    def with_(self, **changes) -> "GraphBatch":
        return replace(self, **changes)
