"""SMILES -> molecular graph arrays in the MolCLR vocabulary (hydrogens implicit).

Atoms carry two integer features: atomic-number index (Z - 1, 0..117; :data:`MASK_ATOM` = 118 is
the mask token) and chirality tag (0 unspecified, 1 CW, 2 CCW, 3 other). Bonds carry type
(0 single, 1 double, 2 triple, 3 aromatic; :data:`SELF_LOOP_BOND` = 4 is used inside the
convolutions) and direction (0 none, 1 end-up-right, 2 end-down-right). See Wang et al.,
"Molecular contrastive learning of representations via graph neural networks",
Nat. Mach. Intell. 4, 279 (2022), and its reference code.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdchem

FEATURIZER_VERSION = "molclr-v1"

NUM_ATOM_TYPES = 119  # Z = 1..118 plus the mask token
MASK_ATOM = 118
NUM_CHIRALITY_TAGS = 4
NUM_BOND_TYPES = 5  # 4 chemical types plus the self-loop type
SELF_LOOP_BOND = 4
NUM_BOND_DIRECTIONS = 3

_CHIRALITY = {
    rdchem.ChiralType.CHI_UNSPECIFIED: 0,
    rdchem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
    rdchem.ChiralType.CHI_TETRAHEDRAL_CCW: 2,
}
_BOND_TYPE = {
    rdchem.BondType.SINGLE: 0,
    rdchem.BondType.DOUBLE: 1,
    rdchem.BondType.TRIPLE: 2,
    rdchem.BondType.AROMATIC: 3,
}
_BOND_DIR = {rdchem.BondDir.ENDUPRIGHT: 1, rdchem.BondDir.ENDDOWNRIGHT: 2}

RDLogger.DisableLog("rdApp.*")  # parse failures are reported per row by us, not on stderr


class InvalidMolecule(ValueError):
    """A SMILES that cannot be featurized; the message says why."""


class MolGraph(NamedTuple):
    """One molecule: ``atoms`` (n, 2) uint8 [type, chirality]; ``bonds`` (m, 4) int32 [src, dst, type, dir].

    Each chemical bond appears once (src < dst as RDKit orders them); batches add the reverse direction.
    """

    atoms: np.ndarray
    bonds: np.ndarray


def parse_smiles(smiles: str) -> Chem.Mol:
    """RDKit molecule from SMILES, or :class:`InvalidMolecule` with the reason."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidMolecule("empty SMILES")
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise InvalidMolecule("RDKit cannot parse this SMILES")
    return mol


def mol_to_graph(mol: Chem.Mol) -> MolGraph:
    """Graph arrays for an RDKit molecule, or :class:`InvalidMolecule` if it falls outside the vocabulary."""
    n = mol.GetNumAtoms()
    if n == 0:
        raise InvalidMolecule("molecule has no heavy atoms")
    atoms = np.empty((n, 2), dtype=np.uint8)
    for i, atom in enumerate(mol.GetAtoms()):
        z = atom.GetAtomicNum()
        if z == 0:
            raise InvalidMolecule("dummy atom '*' is not in the atom vocabulary")
        atoms[i, 0] = z - 1
        atoms[i, 1] = _CHIRALITY.get(atom.GetChiralTag(), 3)
    m = mol.GetNumBonds()
    bonds = np.empty((m, 4), dtype=np.int32)
    for j, bond in enumerate(mol.GetBonds()):
        kind = _BOND_TYPE.get(bond.GetBondType())
        if kind is None:
            raise InvalidMolecule(f"unsupported bond type {bond.GetBondType().name}")
        bonds[j, 0] = bond.GetBeginAtomIdx()
        bonds[j, 1] = bond.GetEndAtomIdx()
        bonds[j, 2] = kind
        bonds[j, 3] = _BOND_DIR.get(bond.GetBondDir(), 0)
    return MolGraph(atoms, bonds)


def smiles_to_graph(smiles: str) -> MolGraph:
    """Parse and featurize one SMILES (raises :class:`InvalidMolecule`)."""
    return mol_to_graph(parse_smiles(smiles))


def try_smiles_to_graph(smiles: str) -> tuple[Optional[MolGraph], Optional[str]]:
    """``(graph, None)`` on success, ``(None, reason)`` when the SMILES is invalid."""
    try:
        return smiles_to_graph(smiles), None
    except InvalidMolecule as exc:
        return None, str(exc)
