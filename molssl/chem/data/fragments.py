"""BRICS fragments of a molecule, as graphs in the molecule's own vocabulary (for iMolCLR's fragment contrast).

Following the iMolCLR reference code (github.com/yuyangw/iMolCLR, ``data_aug/dataset.py``,
``get_fragment_indices``; Wang et al., J. Chem. Inf. Model. 62, 2713 (2022)):

- the bonds that RDKit's BRICS rules mark as breakable (``FindBRICSBonds``) are cut and each
  fragment is a connected component of what remains that contains an atom of a cut bond;
- only fragments with more than 3 heavy atoms are kept (``min_atoms=4``);
- a fragment is the parent's atom subset with the parent's atom and bond features. No BRICS dummy
  atom ("*", atomic number 0, outside our atom vocabulary) is added at the cut points: the reference
  pools the parent's atoms of each fragment, so its fragments carry no dummy atoms either;
- a molecule that BRICS does not split (no breakable bond) has no fragment, and neither does one whose
  pieces all have 3 atoms or fewer: such a molecule contributes nothing to the fragment loss.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from rdkit import Chem
from rdkit.Chem import BRICS

from molssl.chem.data.featurize import MolGraph, mol_to_graph

DEFAULT_MIN_ATOMS = 4  # the reference keeps fragments with len(atoms) > 3


def brics_fragment_atoms(mol: Chem.Mol, min_atoms: int = DEFAULT_MIN_ATOMS) -> list[np.ndarray]:
    """Sorted atom indices of each BRICS fragment with at least ``min_atoms`` atoms (empty if BRICS does not split)."""
    if min_atoms < 1:
        raise ValueError(f"min_atoms must be >= 1, got {min_atoms}")
    cut = [pair for pair, _labels in BRICS.FindBRICSBonds(mol)]
    if not cut:
        return []
    bond_ids = sorted({mol.GetBondBetweenAtoms(a, b).GetIdx() for a, b in cut})
    broken = Chem.FragmentOnBonds(mol, bond_ids, addDummies=False)
    cut_atoms = {a for pair in cut for a in pair}
    return [
        np.array(sorted(atoms), dtype=np.int64)
        for atoms in Chem.GetMolFrags(broken, asMols=False, sanitizeFrags=False)
        if len(atoms) >= min_atoms and not cut_atoms.isdisjoint(atoms)
    ]


def subgraph(graph: MolGraph, atoms: np.ndarray) -> MolGraph:
    """The graph induced by ``atoms`` (sorted indices), renumbered 0..len(atoms)-1, features unchanged."""
    new_index = np.full(len(graph.atoms), -1, dtype=np.int64)
    new_index[atoms] = np.arange(len(atoms))
    src, dst = graph.bonds[:, 0], graph.bonds[:, 1]
    bonds = graph.bonds[(new_index[src] >= 0) & (new_index[dst] >= 0)].copy()
    bonds[:, 0] = new_index[bonds[:, 0]]
    bonds[:, 1] = new_index[bonds[:, 1]]
    return MolGraph(graph.atoms[atoms].copy(), bonds)


def brics_fragment_graphs(
    mol: Chem.Mol, min_atoms: int = DEFAULT_MIN_ATOMS, graph: Optional[MolGraph] = None
) -> list[MolGraph]:
    """Graphs of the BRICS fragments of ``mol`` (see the module docstring for the rules).

    ``graph`` is ``mol_to_graph(mol)`` when the caller already has it (the store does), so the
    molecule is featurized once; fragments are sliced from it and share its vocabulary.
    """
    atom_sets = brics_fragment_atoms(mol, min_atoms)
    if not atom_sets:
        return []
    parent = mol_to_graph(mol) if graph is None else graph
    if len(parent.atoms) != mol.GetNumAtoms():
        raise ValueError(f"graph has {len(parent.atoms)} atoms but the molecule has {mol.GetNumAtoms()}")
    return [subgraph(parent, atoms) for atoms in atom_sets]
