"""Batches of molecular graphs as flat tensors (the layout every encoder and augmentation uses), and collation.

:class:`GraphArrays` holds many graphs concatenated with offsets (in memory or memory-mapped from a
store); its ``gather`` builds a :class:`GraphBatch` with vectorized NumPy, no Python object per molecule.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from molssl.chem.data.featurize import MolGraph


@dataclass
class GraphBatch:
    """``num_graphs`` molecules concatenated.

    x           (n_atoms, F) long: atom fields (MolCLR: type index, chirality tag)
    edge_index  (2, 2*n_bonds) long: bond k is stored as edges 2k (u->v) and 2k+1 (v->u)
    edge_attr   (2*n_bonds, G) long: bond fields (MolCLR: type, direction)
    batch       (n_atoms,) long: graph id of each atom
    ptr         (num_graphs + 1,) long: atom offsets of the graphs
    index       (num_graphs,) long: position of each molecule in its store
    ecfp        (num_graphs, n_bytes) uint8 packed fingerprint bits, when the store has them
    features    molecule-level vectors by store-extra name (e.g. "rdkit2d"), for hybrid property models
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
    features: Optional[dict[str, Tensor]] = None

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


def induced_subgraph(batch: GraphBatch, keep: Tensor) -> GraphBatch:
    """The atoms flagged in ``keep`` (n_atoms,) bool and the bonds between two of them; every graph stays (one
    may be left with no atoms), its kept atoms renumbered in order, each kept bond's two directions together."""
    new_atom = torch.cumsum(keep, 0) - 1
    edge_keep = keep[batch.edge_index[0]] & keep[batch.edge_index[1]]
    counts = torch.bincount(batch.batch[keep], minlength=batch.num_graphs)
    return GraphBatch(
        x=batch.x[keep],
        edge_index=new_atom[batch.edge_index[:, edge_keep]],
        edge_attr=batch.edge_attr[edge_keep],
        batch=batch.batch[keep],
        ptr=torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]),
        index=batch.index,
    )


def select_graphs(batch: GraphBatch, keep: Tensor) -> GraphBatch:
    """The graphs flagged in ``keep`` (num_graphs,) bool, renumbered in order, on the batch's device."""
    atoms = induced_subgraph(batch, keep[batch.batch])
    counts = atoms.atoms_per_graph()[keep]
    return atoms.with_(batch=(torch.cumsum(keep, 0) - 1)[atoms.batch],
                       ptr=torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]), index=batch.index[keep])


@dataclass
class GraphArrays:
    """Concatenated graphs with per-graph offsets; ``gather`` builds a :class:`GraphBatch` without per-graph Python."""

    atoms: np.ndarray
    atom_ptr: np.ndarray
    bonds: np.ndarray
    bond_ptr: np.ndarray

    def __len__(self) -> int:
        return self.atom_ptr.shape[0] - 1

    def gather(self, index: np.ndarray) -> GraphBatch:
        index = np.asarray(index, dtype=np.int64)
        atom_start = self.atom_ptr[index]
        n_atoms = self.atom_ptr[index + 1] - atom_start
        bond_start = self.bond_ptr[index]
        n_bonds = self.bond_ptr[index + 1] - bond_start
        ptr = np.zeros(index.size + 1, dtype=np.int64)
        np.cumsum(n_atoms, out=ptr[1:])
        bond_offsets = np.zeros(index.size + 1, dtype=np.int64)
        np.cumsum(n_bonds, out=bond_offsets[1:])

        atom_rows = np.repeat(atom_start - ptr[:-1], n_atoms) + np.arange(ptr[-1])
        bond_rows = np.repeat(bond_start - bond_offsets[:-1], n_bonds) + np.arange(bond_offsets[-1])
        x = self.atoms[atom_rows].astype(np.int64)
        bonds = self.bonds[bond_rows].astype(np.int64)
        shift = np.repeat(ptr[:-1], n_bonds)
        src, dst = bonds[:, 0] + shift, bonds[:, 1] + shift
        edge_index = np.empty((2, 2 * src.size), dtype=np.int64)
        edge_index[0, 0::2], edge_index[1, 0::2] = src, dst
        edge_index[0, 1::2], edge_index[1, 1::2] = dst, src
        edge_attr = np.repeat(bonds[:, 2:], 2, axis=0)
        return GraphBatch(
            x=torch.from_numpy(x),
            edge_index=torch.from_numpy(edge_index),
            edge_attr=torch.from_numpy(edge_attr),
            batch=torch.from_numpy(np.repeat(np.arange(index.size, dtype=np.int64), n_atoms)),
            ptr=torch.from_numpy(ptr),
            index=torch.from_numpy(index.copy()),
        )


def graphs_to_arrays(graphs: Sequence[MolGraph], atom_width: int = 2, bond_width: int = 4) -> GraphArrays:
    """Pack a list of graphs (e.g. built in memory for prediction) into :class:`GraphArrays`.

    ``atom_width``/``bond_width``: columns of an empty result (the featurizer's fields; MolCLR by default).
    """
    atom_ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    bond_ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum([g.atoms.shape[0] for g in graphs], out=atom_ptr[1:])
    np.cumsum([g.bonds.shape[0] for g in graphs], out=bond_ptr[1:])
    atoms = np.concatenate([g.atoms for g in graphs]) if graphs else np.zeros((0, atom_width), np.uint8)
    bonds = np.concatenate([g.bonds for g in graphs]).astype(np.int16) if graphs else np.zeros((0, bond_width), np.int16)
    return GraphArrays(atoms.astype(np.uint8), atom_ptr, bonds, bond_ptr)
