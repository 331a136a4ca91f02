"""The ``rich`` graph vocabulary: the MolCLR fields plus what chemists know decides properties.

Atoms (10 fields, each an embedding summed by the encoder; the last index of each field is its
mask token): atomic number (Z - 1, as MolCLR), chirality tag, formal charge (-4..+4, other),
total hydrogen count (0..4, 5+), heavy-atom degree (0..5, 6+), hybridization, aromaticity, ring
membership, isotope label present, radical electrons (0, 1, 2+). Bonds (5 fields): type (single,
double, triple, aromatic; 4 = self-loop), direction (MolCLR's), stereo (none, Z/cis, E/trans),
conjugation, ring membership.

These are the atom and bond features of chemprop's default featurizer (Heid et al., J. Chem. Inf.
Model. 64, 9 (2024); Yang et al., J. Chem. Inf. Model. 59, 3370 (2019)) less atomic mass, which
the atomic number and isotope flag determine, plus MolCLR's chirality and bond direction, so
``C``, ``[CH3]``, ``[13CH4]`` and ``[C+8]`` are four different graphs.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdchem

from molssl.chem.data.featurize import (_BOND_DIR, _CHIRALITY, DENSE_MAX_ATOMS, MASK_ATOM, NUM_ATOM_TYPES,
                                        SELF_LOOP_BOND, Featurizer, GraphResults, InvalidMolecule, MolGraph,
                                        bonds_in_order, too_many_atoms, try_smiles_to_graph)
from molssl.chem.data.smiles_text import parse_for_graph

RICH_VERSION = "rich-v1"
CHARGE_RANGE = 4  # formal charges -4..+4 have their own index; others share one
_HYBRIDIZATION = {
    rdchem.HybridizationType.UNSPECIFIED: 0, rdchem.HybridizationType.S: 1, rdchem.HybridizationType.SP: 2,
    rdchem.HybridizationType.SP2: 3, rdchem.HybridizationType.SP3: 4, rdchem.HybridizationType.SP3D: 5,
    rdchem.HybridizationType.SP3D2: 6,
}
_BOND_TYPE = {rdchem.BondType.SINGLE: 0, rdchem.BondType.DOUBLE: 1, rdchem.BondType.TRIPLE: 2,
              rdchem.BondType.AROMATIC: 3}
_STEREO = {rdchem.BondStereo.STEREOZ: 1, rdchem.BondStereo.STEREOCIS: 1,
           rdchem.BondStereo.STEREOE: 2, rdchem.BondStereo.STEREOTRANS: 2}

# vocabulary sizes: each field's values, then its mask token
ATOM_VOCAB = (NUM_ATOM_TYPES, 5, 2 * CHARGE_RANGE + 3, 7, 8, len(_HYBRIDIZATION) + 2, 3, 3, 3, 4)
ATOM_MASK = (MASK_ATOM,) + tuple(v - 1 for v in ATOM_VOCAB[1:])
BOND_VOCAB = (SELF_LOOP_BOND + 1, 3, 3, 2, 2)


def _charge_index(charge: int) -> int:
    return charge + CHARGE_RANGE if -CHARGE_RANGE <= charge <= CHARGE_RANGE else 2 * CHARGE_RANGE + 1


def _atom_row(atom: Chem.Atom, bracket: bool = True) -> tuple[int, ...]:
    """The ten atom fields. ``bracket=False`` for an atom written outside brackets in SMILES: such an atom has
    no chirality tag, isotope or radical (only bracket atoms can), so those three RDKit calls are skipped. Its
    charge is read either way: sanitizing writes N(=O)=O as [N+](=O)[O-]."""
    z = atom.GetAtomicNum()
    if z == 0:
        raise InvalidMolecule("dummy atom '*' is not in the atom vocabulary")
    return (z - 1,
            _CHIRALITY.get(atom.GetChiralTag(), 3) if bracket else 0,
            _charge_index(atom.GetFormalCharge()),
            min(atom.GetTotalNumHs(), 5),
            min(atom.GetDegree(), 6),
            _HYBRIDIZATION.get(atom.GetHybridization(), len(_HYBRIDIZATION)),
            int(atom.GetIsAromatic()),
            int(atom.IsInRing()),
            int(atom.GetIsotope() != 0) if bracket else 0,
            min(atom.GetNumRadicalElectrons(), 2) if bracket else 0)


_BOND_STEREO_SYMBOLS = frozenset("/\\|")  # a SMILES without these has no bond directions or E/Z stereo


def rich_graph(mol: Chem.Mol, smiles_hint: Optional[str] = None) -> MolGraph:
    """The ``rich`` graph of one molecule, or :class:`InvalidMolecule` naming what falls outside the vocabulary.

    ``smiles_hint`` (the SMILES the molecule was parsed from) only saves time: without brackets no atom can
    carry chirality, an isotope or a radical, and without '/', '\\' or CXSMILES fields ('|') no bond has a
    direction or E/Z stereo. Atoms and bonds are read by index (RDKit's Python sequence wrappers cost about a fifth of the time);
    molecules over :data:`DENSE_MAX_ATOMS` atoms read bonds through their atoms (linear in the bond count).
    """
    n = mol.GetNumAtoms()
    if n == 0:
        raise InvalidMolecule("molecule has no heavy atoms")
    atom = mol.GetAtomWithIdx
    bracket = smiles_hint is None or "[" in smiles_hint or "|" in smiles_hint  # '|': CXSMILES fields
    atoms = np.array([_atom_row(atom(i), bracket) for i in range(n)], dtype=np.uint8).reshape(n, len(ATOM_VOCAB))
    directed = smiles_hint is None or not _BOND_STEREO_SYMBOLS.isdisjoint(smiles_hint)
    bond_at = mol.GetBondWithIdx
    bonds_read = bonds_in_order(mol) if n > DENSE_MAX_ATOMS else [bond_at(j) for j in range(mol.GetNumBonds())]
    rows = []
    for bond in bonds_read:
        kind = _BOND_TYPE.get(bond.GetBondType())
        if kind is None:
            raise InvalidMolecule(f"unsupported bond type {bond.GetBondType().name}")
        i, k = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        direction, stereo = (_BOND_DIR.get(bond.GetBondDir(), 0), _STEREO.get(bond.GetStereo(), 0)) if directed else (0, 0)
        rows.append((min(i, k), max(i, k), kind, direction, stereo, int(bond.GetIsConjugated()), int(bond.IsInRing())))
    bonds = np.array(rows, dtype=np.int32).reshape(len(rows), 2 + len(BOND_VOCAB))
    return MolGraph(atoms, bonds)


def rich_graphs(mols: Sequence[Optional[Chem.Mol]], smiles: Sequence[str]) -> GraphResults:
    """``(graph, None)`` or ``(None, reason)`` for parsed molecules (``None`` where RDKit failed) and their SMILES."""
    return [_rich_result(mol, text, None) for mol, text in zip(mols, smiles)]


def rich_graphs_of_smiles(smiles: Sequence[str], max_atoms: Optional[int] = None) -> GraphResults:
    """:func:`rich_graphs` from SMILES alone, each parsed (:func:`~molssl.chem.data.smiles_text.parse_for_graph`),
    read and let go in turn; molecules over ``max_atoms`` heavy atoms are rejected unread."""
    return [_rich_result(parse_for_graph(text) if isinstance(text, str) else None, text, max_atoms) for text in smiles]


def _rich_result(mol: Optional[Chem.Mol], text: str, max_atoms: Optional[int]) -> tuple[Optional[MolGraph], Optional[str]]:
    n = 0 if mol is None else mol.GetNumAtoms()
    if n == 0:
        return None, try_smiles_to_graph(text)[1]  # names why: empty, or RDKit cannot parse it
    if max_atoms is not None and n > max_atoms:
        return None, too_many_atoms(n, max_atoms)
    try:
        return rich_graph(mol, smiles_hint=text.strip() if isinstance(text, str) else None), None
    except InvalidMolecule as exc:
        return None, str(exc)


RICH = Featurizer(
    name="rich", version=RICH_VERSION,
    atom_fields=("atomic_number", "chirality", "formal_charge", "total_h", "degree", "hybridization", "aromatic",
                 "in_ring", "isotope", "radical"),
    atom_vocab=ATOM_VOCAB, atom_mask=ATOM_MASK,
    bond_fields=("type", "direction", "stereo", "conjugated", "in_ring"), bond_vocab=BOND_VOCAB,
    self_loop=(SELF_LOOP_BOND, 0, 0, 0, 0), featurize=rich_graphs, featurize_smiles=rich_graphs_of_smiles,
)
