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

from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdchem

from molssl.chem.data.featurize import (_BOND_DIR, _CHIRALITY, DENSE_MAX_ATOMS, MASK_ATOM, NUM_ATOM_TYPES,
                                        SELF_LOOP_BOND, Featurizer, GraphResults, InvalidMolecule, MolGraph,
                                        bonds_in_order, too_many_atoms, try_smiles_to_graph)
from molssl.chem.data import rdkit_binary
from molssl.chem.data.rdkit_binary import AtomBondFields, binary_form, read_binary_fields
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


# From this many molecules on they are read in bulk from RDKit's binary form; below it the reader's numpy calls
# per record position cost more than reading atom by atom (crossover measured at 32-64 MOSES molecules).
BULK_MIN_MOLECULES = 64
_BOND_STEREO_SYMBOLS = frozenset("/\\|")  # a SMILES without these has no bond directions or E/Z stereo


def rich_graph(mol: Chem.Mol, smiles_hint: Optional[str] = None) -> MolGraph:
    """The ``rich`` graph of one molecule, or :class:`InvalidMolecule` naming what falls outside the vocabulary.

    ``smiles_hint`` (the SMILES the molecule was parsed from) only saves time where the molecule is read atom
    by atom (:class:`_RawFields`). The same readers as :func:`rich_graphs`, for one molecule.
    """
    if mol.GetNumAtoms() == 0:
        raise InvalidMolecule("molecule has no heavy atoms")
    graph, reason = _rich_results([(mol, smiles_hint)], 1, lambda i: mol, None)[0]
    if graph is None:
        raise InvalidMolecule(reason)
    return graph


def _why_invalid(mol: Chem.Mol) -> str:
    """What puts a molecule the reader flagged outside the vocabulary: a dummy atom or a bond type."""
    if any(atom.GetAtomicNum() == 0 for atom in mol.GetAtoms()):
        return "dummy atom '*' is not in the atom vocabulary"
    kind = next((bond.GetBondType() for bond in bonds_in_order(mol) if bond.GetBondType() not in _BOND_TYPE), None)
    return f"unsupported bond type {kind.name}" if kind is not None else "an RDKit value outside the rich vocabulary"


def rich_graphs(mols: Sequence[Optional[Chem.Mol]], smiles: Sequence[str]) -> GraphResults:
    """``(graph, None)`` or ``(None, reason)`` for parsed molecules (``None`` where RDKit failed) and their SMILES."""
    return _rich_results(zip(mols, smiles), len(mols), mols.__getitem__, None)


def rich_graphs_of_smiles(smiles: Sequence[str], max_atoms: Optional[int] = None) -> GraphResults:
    """:func:`rich_graphs` from SMILES alone, each parsed (:func:`~molssl.chem.data.smiles_text.parse_for_graph`),
    read and let go in turn; molecules over ``max_atoms`` heavy atoms are rejected unread."""
    pairs = ((parse_for_graph(text) if isinstance(text, str) else None, text) for text in smiles)
    return _rich_results(pairs, len(smiles), lambda i: parse_for_graph(smiles[i]), max_atoms)


def _table(mapping: dict, default: int, size: int) -> np.ndarray:
    """RDKit enum value (as int) -> field index, ``default`` for values the mapping does not name."""
    table = np.full(size, default, dtype=np.int64)
    for key, value in mapping.items():
        table[int(key)] = value
    return table


_ENUM_SIZE = 64  # larger than any RDKit enum value read here; a larger value is caught and read atom by atom
_HYBRIDIZATION_TABLE = _table(_HYBRIDIZATION, len(_HYBRIDIZATION), _ENUM_SIZE)
_CHIRALITY_TABLE = _table(_CHIRALITY, 3, _ENUM_SIZE)
_BOND_TYPE_TABLE = _table(_BOND_TYPE, -1, _ENUM_SIZE)  # -1: outside the vocabulary (the molecule is invalid)
_BOND_DIR_TABLE = _table(_BOND_DIR, 0, _ENUM_SIZE)
_STEREO_TABLE = _table(_STEREO, 0, _ENUM_SIZE)
_A, _B = Chem.Atom, Chem.Bond
# Without these SMILES symbols (quadruple, dative, any/zero bonds, CXSMILES coordinate bonds) and with only
# organic-subset elements (no metal for RDKit's organometallic clean-up to turn a bond dative), a bond is
# single, double, triple or aromatic, and its order as a number (1, 2, 3, 1.5) names its type.
_UNUSUAL_BOND_SYMBOLS = frozenset("$<>~|")
_ORGANIC = frozenset((1, 5, 6, 7, 8, 9, 15, 16, 17, 35, 53))


class _OrderToEnum(dict):
    def __missing__(self, order: float) -> int:
        return _ENUM_SIZE - 1  # no bond type: the molecule goes to rich_graph, which names the bond


_ORDER_TO_ENUM = _OrderToEnum({1.0: int(rdchem.BondType.SINGLE), 2.0: int(rdchem.BondType.DOUBLE),
                               3.0: int(rdchem.BondType.TRIPLE), 1.5: int(rdchem.BondType.AROMATIC)})


class _RawFields:
    """Raw RDKit values of many molecules in flat lists, turned into graph arrays once per chunk: the per-molecule
    work is one unbound-method ``map`` per field, with no per-atom Python function, tuple or array."""

    def __init__(self) -> None:
        self.atom_fields: list[list[int]] = [[] for _ in range(8)]  # Z, chirality, charge, H, hyb, aromatic, ring, isotope
        self.radicals: list[int] = []
        self.bond_fields: list[list[int]] = [[] for _ in range(7)]  # begin, end, type, dir, stereo, conjugated, ring
        self.n_atoms: list[int] = []
        self.n_bonds: list[int] = []

    def add(self, mol: Chem.Mol, text: Optional[str]) -> None:
        """Append one molecule; ``text`` is its SMILES (fields it rules out are not read) or None (read all)."""
        n, m = mol.GetNumAtoms(), mol.GetNumBonds()
        text = "[|$" if text is None else text  # symbols that make every field below be read
        atoms = list(map(mol.GetAtomWithIdx, range(n)))
        z, chirality, charge, hydrogens, hybridization, aromatic, ring, isotope = self.atom_fields
        z += map(_A.GetAtomicNum, atoms)
        charge += map(_A.GetFormalCharge, atoms)
        hydrogens += map(_A.GetTotalNumHs, atoms)
        hybridization += map(int, map(_A.GetHybridization, atoms))
        aromatic += map(_A.GetIsAromatic, atoms)
        ring += map(_A.IsInRing, atoms)
        if "[" in text or "|" in text:  # only bracket atoms (or CXSMILES fields) carry these three
            chirality += map(int, map(_A.GetChiralTag, atoms))
            isotope += map(_A.GetIsotope, atoms)
            self.radicals += map(_A.GetNumRadicalElectrons, atoms)
        else:
            zeros = [0] * n
            chirality += zeros
            isotope += zeros
            self.radicals += zeros
        # by index up to DENSE_MAX_ATOMS atoms; larger molecules through their atoms (linear in the bond count)
        bonds = bonds_in_order(mol) if n > DENSE_MAX_ATOMS else list(map(mol.GetBondWithIdx, range(m)))
        begin, end, kind, direction, stereo, conjugated, in_ring = self.bond_fields
        begin += map(_B.GetBeginAtomIdx, bonds)
        end += map(_B.GetEndAtomIdx, bonds)
        if _UNUSUAL_BOND_SYMBOLS.isdisjoint(text) and _ORGANIC.issuperset(z[len(z) - n:]):
            kind += map(_ORDER_TO_ENUM.__getitem__, map(_B.GetBondTypeAsDouble, bonds))  # 3x cheaper than enums
        else:
            kind += map(int, map(_B.GetBondType, bonds))
        if not _BOND_STEREO_SYMBOLS.isdisjoint(text):  # '|' is one of them: the None case reads them too
            direction += map(int, map(_B.GetBondDir, bonds))
            stereo += map(int, map(_B.GetStereo, bonds))
        else:
            direction += [0] * m
            stereo += [0] * m
        conjugated += map(_B.GetIsConjugated, bonds)
        in_ring += map(_B.IsInRing, bonds)
        self.n_atoms.append(n)
        self.n_bonds.append(m)

    def fields(self) -> AtomBondFields:
        """The values read, as arrays in the layout of :func:`~molssl.chem.data.rdkit_binary.read_binary_fields`."""
        z, chirality, charge, hydrogens, hybridization, aromatic, ring, isotope = (
            np.asarray(values, dtype=np.int64) for values in self.atom_fields)
        begin, end, kind, direction, stereo, conjugated, in_ring = (
            np.asarray(values, dtype=np.int64) for values in self.bond_fields)
        return AtomBondFields(
            readable=np.ones(len(self.n_atoms), dtype=bool), n_atoms=np.asarray(self.n_atoms, dtype=np.int64),
            n_bonds=np.asarray(self.n_bonds, dtype=np.int64), atomic_number=z, chirality=chirality,
            formal_charge=charge, total_hydrogens=hydrogens, hybridization=hybridization, aromatic=aromatic,
            atom_in_ring=ring, isotope=isotope, radicals=np.asarray(self.radicals, dtype=np.int64), begin=begin,
            end=end, bond_type=kind, bond_direction=direction, bond_stereo=stereo, conjugated=conjugated,
            bond_in_ring=in_ring)


def _graphs(fields: AtomBondFields) -> tuple[list[MolGraph], np.ndarray]:
    """The graphs of molecules read by either reader, and which of them are valid (no dummy atom, no bond type or
    enum value outside the tables): invalid ones are named by :func:`_why_invalid`."""
    z, chirality, hybridization = fields.atomic_number, fields.chirality, fields.hybridization
    begin, end, kind, direction, stereo = (fields.begin, fields.end, fields.bond_type, fields.bond_direction,
                                           fields.bond_stereo)
    n_atoms, n_bonds = fields.n_atoms, fields.n_bonds
    count = n_atoms.size
    atom_owner = np.repeat(np.arange(count), n_atoms)
    bond_owner = np.repeat(np.arange(count), n_bonds)
    atom_ptr = np.concatenate([[0], np.cumsum(n_atoms)])
    bond_ptr = np.concatenate([[0], np.cumsum(n_bonds)])
    enums_ok = ((hybridization < _ENUM_SIZE) & (chirality < _ENUM_SIZE) & (z > 0) & (z <= NUM_ATOM_TYPES - 1))
    bond_enums_ok = (kind < _ENUM_SIZE) & (direction < _ENUM_SIZE) & (stereo < _ENUM_SIZE)
    kinds = _BOND_TYPE_TABLE[np.where(bond_enums_ok, kind, 0)]
    bond_enums_ok &= kinds >= 0
    valid = np.bincount(atom_owner, weights=~enums_ok, minlength=count) == 0
    valid &= np.bincount(bond_owner, weights=~bond_enums_ok, minlength=count) == 0
    src, dst = atom_ptr[bond_owner] + begin, atom_ptr[bond_owner] + end  # global atom rows, for the degree
    degree = np.bincount(src, minlength=z.size) + np.bincount(dst, minlength=z.size)
    safe = lambda values: np.where(values < _ENUM_SIZE, values, 0)  # noqa: E731 - invalid rows are discarded
    charge = fields.formal_charge
    atoms = np.stack([z - 1, _CHIRALITY_TABLE[safe(chirality)],
                      np.where(np.abs(charge) <= CHARGE_RANGE, charge + CHARGE_RANGE, 2 * CHARGE_RANGE + 1),
                      np.minimum(fields.total_hydrogens, 5), np.minimum(degree, 6),
                      _HYBRIDIZATION_TABLE[safe(hybridization)], fields.aromatic, fields.atom_in_ring,
                      fields.isotope != 0, np.minimum(fields.radicals, 2)], axis=1).astype(np.uint8)
    bonds = np.stack([np.minimum(begin, end), np.maximum(begin, end), kinds, _BOND_DIR_TABLE[safe(direction)],
                      _STEREO_TABLE[safe(stereo)], fields.conjugated, fields.bond_in_ring], axis=1).astype(np.int32)
    graphs = [MolGraph(atoms[atom_ptr[k]:atom_ptr[k + 1]], bonds[bond_ptr[k]:bond_ptr[k + 1]]) for k in range(count)]
    return graphs, valid


def _rich_results(pairs: Iterable[tuple[Optional[Chem.Mol], str]], count: int, molecule: Callable[[int], Chem.Mol],
                  max_atoms: Optional[int]) -> GraphResults:
    """Results for ``count`` (molecule, SMILES) pairs. From :data:`BULK_MIN_MOLECULES` pairs on, each molecule
    is kept only as RDKit's binary form and read in bulk (:func:`~molssl.chem.data.rdkit_binary.read_binary_fields`);
    the rare one that form does not cover is fetched again with ``molecule(i)`` and read atom by atom
    (:class:`_RawFields`), as are all of a smaller batch (and all, where this RDKit's binary layout is not the one
    the bulk reader knows). A molecule the vocabulary rejects is fetched again so
    that its problem can be named."""
    results: GraphResults = [None] * count  # type: ignore[list-item]
    bulk = rdkit_binary.READABLE and count >= BULK_MIN_MOLECULES  # another layout: no bulk read, no second parse
    blobs, raw, texts, batched = [], _RawFields(), [], []
    for i, (mol, text) in enumerate(pairs):
        n = 0 if mol is None else mol.GetNumAtoms()
        if n == 0:
            results[i] = (None, try_smiles_to_graph(text)[1])  # names why: empty, or RDKit cannot parse it
        elif max_atoms is not None and n > max_atoms:
            results[i] = (None, too_many_atoms(n, max_atoms))
        else:
            texts.append(text.strip() if isinstance(text, str) else None)
            if bulk:
                blobs.append(binary_form(mol))
            else:
                raw.add(mol, texts[-1])
            batched.append(i)
    if not batched:
        return results
    fields = read_binary_fields(blobs) if bulk else raw.fields()
    graphs: list[Optional[MolGraph]] = [None] * len(batched)
    valid = np.zeros(len(batched), dtype=bool)
    read = np.flatnonzero(fields.readable)
    read_graphs, valid[read] = _graphs(fields)
    for k, graph in zip(read.tolist(), read_graphs):
        graphs[k] = graph
    unread = np.flatnonzero(~fields.readable).tolist()
    if unread:  # bulk reading only
        raw = _RawFields()
        for k in unread:
            raw.add(molecule(batched[k]), texts[k])
        unread_graphs, valid[unread] = _graphs(raw.fields())
        for k, graph in zip(unread, unread_graphs):
            graphs[k] = graph
    for i, graph, ok in zip(batched, graphs, valid):
        results[i] = (graph, None) if ok else (None, _why_invalid(molecule(i)))
    return results


RICH = Featurizer(
    name="rich", version=RICH_VERSION,
    atom_fields=("atomic_number", "chirality", "formal_charge", "total_h", "degree", "hybridization", "aromatic",
                 "in_ring", "isotope", "radical"),
    atom_vocab=ATOM_VOCAB, atom_mask=ATOM_MASK,
    bond_fields=("type", "direction", "stereo", "conjugated", "in_ring"), bond_vocab=BOND_VOCAB,
    self_loop=(SELF_LOOP_BOND, 0, 0, 0, 0), featurize=rich_graphs, featurize_smiles=rich_graphs_of_smiles,
)
