"""SMILES -> molecular graph arrays (hydrogens implicit); the featurizer registry and the MolCLR vocabulary.

A :class:`Featurizer` names the integer fields of atoms and bonds, their vocabulary sizes (mask
token included) and the values of a masked atom and of the self-loop bond the convolutions add.
Two are registered: ``molclr`` (below) and ``rich`` (:mod:`molssl.chem.data.featurize_rich`).

In the ``molclr`` vocabulary atoms carry two integer features: atomic-number index (Z - 1, 0..117; :data:`MASK_ATOM` = 118 is
the mask token) and chirality tag (0 unspecified, 1 CW, 2 CCW, 3 other). Bonds carry type
(0 single, 1 double, 2 triple, 3 aromatic; :data:`SELF_LOOP_BOND` = 4 is used inside the
convolutions) and direction (0 none, 1 end-up-right, 2 end-down-right). See Wang et al.,
"Molecular contrastive learning of representations via graph neural networks",
Nat. Mach. Intell. 4, 279 (2022), and its reference code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple, Optional, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdchem

from molssl.chem.data.smiles_text import PER_MOLECULE_SYMBOLS, SANITIZE_FOR_MOLCLR, atomic_numbers_in_smiles, parse_for_graph

FEATURIZER_VERSION = "molclr-v1"

NUM_ATOM_TYPES = 119  # Z = 1..118 plus the mask token
MASK_ATOM = 118
NUM_CHIRALITY_TAGS = 4
NUM_BOND_TYPES = 5  # 4 chemical types plus the self-loop type
SELF_LOOP_BOND = 4
NUM_BOND_DIRECTIONS = 3
# Molecules up to this size read their bonds from RDKit's dense adjacency matrix (one C++ call, fastest);
# larger ones bond by bond, so memory never grows with the square of a molecule's size.
DENSE_MAX_ATOMS = 128

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
    """One molecule: ``atoms`` (n, F) uint8 atom fields; ``bonds`` (m, 2 + G) int32 [src, dst, bond fields].

    In the MolCLR vocabulary F = G = 2: atoms [type, chirality], bonds [src, dst, type, dir]. Each
    chemical bond appears once, with src < dst; batches add the reverse direction.
    """

    atoms: np.ndarray
    bonds: np.ndarray


GraphResults = list[tuple[Optional[MolGraph], Optional[str]]]  # (graph, None) or (None, reason) per molecule


def parse_smiles(smiles: str) -> Chem.Mol:
    """RDKit molecule from SMILES, or :class:`InvalidMolecule` with the reason."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidMolecule("empty SMILES")
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise InvalidMolecule("RDKit cannot parse this SMILES")
    return mol


def mol_to_graph(mol: Chem.Mol, smiles_hint: Optional[str] = None) -> MolGraph:
    """Graph arrays for an RDKit molecule, or :class:`InvalidMolecule` if it falls outside the vocabulary.

    ``smiles_hint`` (the SMILES the molecule was parsed from) only speeds things up: chirality,
    bond directions and unusual bond types can only occur when their SMILES symbols do, so the
    per-atom and per-bond loops that read them are skipped when the symbols are absent.
    """
    n = mol.GetNumAtoms()
    if n == 0:
        raise InvalidMolecule("molecule has no heavy atoms")
    atom = mol.GetAtomWithIdx  # indexing directly skips RDKit's Python-level atom iterator
    atoms = np.zeros((n, 2), dtype=np.uint8)
    atoms[:, 0] = [atom(i).GetAtomicNum() for i in range(n)]
    if not atoms[:, 0].all():
        raise InvalidMolecule("dummy atom '*' is not in the atom vocabulary")
    atoms[:, 0] -= 1
    if smiles_hint is None or "@" in smiles_hint:
        atoms[:, 1] = [_CHIRALITY.get(atom(i).GetChiralTag(), 3) for i in range(n)]
    if smiles_hint is None or any(c in smiles_hint for c in "$<>~") or n > DENSE_MAX_ATOMS:
        bonds = _bonds_by_loop(mol)  # a bond list: memory grows with bonds, not atoms squared
    else:
        bonds = _bonds_from_adjacency(mol)
    if smiles_hint is None or "/" in smiles_hint or "\\" in smiles_hint:
        _set_bond_directions(mol, bonds)
    return MolGraph(atoms, bonds)


def bonds_in_order(mol: Chem.Mol) -> list[Chem.Bond]:
    """The molecule's bonds in index order, found through each atom's bonds: iterating ``mol.GetBonds()``
    takes time quadratic in the bond count in RDKit (5 s for a 50,000-atom chain), this is linear."""
    found = []
    for atom in mol.GetAtoms():
        i = atom.GetIdx()
        found += [(bond.GetIdx(), bond) for bond in atom.GetBonds() if bond.GetBeginAtomIdx() == i]
    found.sort(key=lambda item: item[0])
    return [bond for _, bond in found]


def _bonds_by_loop(mol: Chem.Mol) -> np.ndarray:
    """(m, 4) bond rows read bond by bond, rejecting types outside the vocabulary."""
    bonds = np.zeros((mol.GetNumBonds(), 4), dtype=np.int32)
    for j, bond in enumerate(bonds_in_order(mol)):
        kind = _BOND_TYPE.get(bond.GetBondType())
        if kind is None:
            raise InvalidMolecule(f"unsupported bond type {bond.GetBondType().name}")
        i, k = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        bonds[j, :3] = (min(i, k), max(i, k), kind)
    return bonds


# twice the bond order RDKit's adjacency matrix reports (1, 1.5, 2, 3) -> our bond type index; -1 other
_DOUBLED_ORDER_TO_TYPE = np.array([-1, -1, 0, 3, 1, -1, 2], dtype=np.int32)


def _bonds_from_adjacency(mol: Chem.Mol) -> np.ndarray:
    """(m, 4) bond rows from RDKit's bond-order adjacency matrix (one C++ call, no per-bond loop)."""
    order = Chem.GetAdjacencyMatrix(mol, useBO=True)
    src, dst = np.nonzero(order)
    upper = src < dst
    src, dst = src[upper], dst[upper]
    doubled = (order[src, dst] * 2).astype(np.intp)
    if src.size != mol.GetNumBonds() or doubled.max(initial=0) >= _DOUBLED_ORDER_TO_TYPE.size:
        return _bonds_by_loop(mol)  # an unusual bond: read bond by bond to name it
    kinds = _DOUBLED_ORDER_TO_TYPE[doubled]
    if (kinds < 0).any():
        return _bonds_by_loop(mol)
    bonds = np.zeros((src.size, 4), dtype=np.int32)
    bonds[:, 0], bonds[:, 1], bonds[:, 2] = src, dst, kinds
    return bonds


def _set_bond_directions(mol: Chem.Mol, bonds: np.ndarray) -> None:
    """Fill column 3 (direction) for the bonds RDKit marks end-up-right / end-down-right."""
    row = {(int(a), int(b)): r for r, (a, b) in enumerate(bonds[:, :2])}
    for bond in bonds_in_order(mol):
        direction = _BOND_DIR.get(bond.GetBondDir())
        if direction:
            i, k = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            bonds[row[(min(i, k), max(i, k))], 3] = direction


def smiles_to_graph(smiles: str) -> MolGraph:
    """Parse and featurize one SMILES (raises :class:`InvalidMolecule`)."""
    return mol_to_graph(parse_smiles(smiles), smiles_hint=smiles)


def try_smiles_to_graph(smiles: str) -> tuple[Optional[MolGraph], Optional[str]]:
    """``(graph, None)`` on success, ``(None, reason)`` when the SMILES is invalid."""
    try:
        return smiles_to_graph(smiles), None
    except InvalidMolecule as exc:
        return None, str(exc)


def parse_many(smiles: Sequence[str]) -> list[Optional[Chem.Mol]]:
    """RDKit molecules for many SMILES (stripped), ``None`` where RDKit cannot parse or the entry is not text."""
    parse = Chem.MolFromSmiles
    return [parse(text.strip()) if isinstance(text, str) else None for text in smiles]


def smiles_to_graphs(smiles: Sequence[str], max_atoms: Optional[int] = None) -> GraphResults:
    """:func:`try_smiles_to_graph` for many SMILES at once, with the same results, faster.

    Each molecule is parsed, read and let go before the next is parsed, so the allocator reuses the
    memory it just freed: about 10% less CPU time than parsing a chunk first and holding its molecules
    (:func:`mols_to_graphs`, for callers that need the molecules for more). Molecules with more than
    ``max_atoms`` heavy atoms are rejected before any per-atom work (:func:`too_many_atoms`).
    """
    def parsed(index: int) -> Optional[Chem.Mol]:
        return parse_many([smiles[index]])[0]

    pairs = ((parse_for_graph(text, SANITIZE_FOR_MOLCLR) if isinstance(text, str) else None, text) for text in smiles)
    return _graphs_of(pairs, len(smiles), parsed, max_atoms)


def too_many_atoms(n_atoms: int, max_atoms: int) -> str:
    """Why a molecule over the size limit is rejected."""
    return f"{n_atoms} heavy atoms, more than the limit of {max_atoms} (--max-atoms)"


def mols_to_graphs(mols: Sequence[Optional[Chem.Mol]], smiles: Sequence[str]) -> GraphResults:
    """``(graph, None)`` or ``(None, reason)`` for molecules from :func:`parse_many` and their SMILES."""
    return _graphs_of(zip(mols, smiles), len(mols), mols.__getitem__, None)


def _graphs_of(pairs: Iterable[tuple[Optional[Chem.Mol], str]], count: int, molecule: Callable[[int], Optional[Chem.Mol]],
               max_atoms: Optional[int]) -> GraphResults:
    """Results for ``count`` (molecule, SMILES) pairs; ``molecule(i)`` gives the i-th molecule again.

    The per-molecule work is only RDKit: atomic numbers and the bond-order adjacency matrix. Turning
    the matrices into bond rows, and every check, runs once for the whole batch on the concatenated
    arrays. Molecules whose SMILES need per-atom or per-bond reads (stereo, bond directions, unusual
    bonds) go through :func:`mol_to_graph`; unparsable and empty entries get their reason from
    :func:`try_smiles_to_graph`; the rare batched molecule that turns out invalid is fetched again with
    ``molecule(i)`` so that :func:`mol_to_graph` names the problem.
    """
    results: list = [None] * count
    adjacency = Chem.GetAdjacencyMatrix
    batched: list[int] = []
    texts: list[str] = []
    atomic_numbers: list[int] = []
    n_atoms: list[int] = []
    n_bonds: list[int] = []
    matrices: list[np.ndarray] = []
    for i, (mol, text) in enumerate(pairs):
        n = 0 if mol is None else mol.GetNumAtoms()
        if n == 0:
            results[i] = try_smiles_to_graph(text)  # names why: empty, or RDKit cannot parse it
        elif max_atoms is not None and n > max_atoms:
            results[i] = (None, too_many_atoms(n, max_atoms))
        elif n > DENSE_MAX_ATOMS or not PER_MOLECULE_SYMBOLS.isdisjoint(text):
            results[i] = _try_mol_to_graph(mol, text)
        else:
            numbers = atomic_numbers_in_smiles(text)
            if numbers is None or len(numbers) != n:  # e.g. explicit [H] atoms RDKit removed: read them
                atom = mol.GetAtomWithIdx
                numbers = [atom(j).GetAtomicNum() for j in range(n)]
            atomic_numbers += numbers
            matrices.append(adjacency(mol, useBO=True).ravel())
            n_atoms.append(n)
            n_bonds.append(mol.GetNumBonds())
            batched.append(i)
            texts.append(text)
    if batched:
        graphs, valid = _graphs_from_matrices(np.asarray(atomic_numbers, dtype=np.int64), np.asarray(n_atoms),
                                              np.asarray(n_bonds), matrices)
        for i, text, graph, ok in zip(batched, texts, graphs, valid):
            results[i] = (graph, None) if ok else _try_mol_to_graph(molecule(i), text)  # names the problem
    return results


def _try_mol_to_graph(mol: Chem.Mol, smiles: str) -> tuple[Optional[MolGraph], Optional[str]]:
    try:
        return mol_to_graph(mol, smiles_hint=smiles), None
    except InvalidMolecule as exc:
        return None, str(exc)


def _graphs_from_matrices(atomic_numbers: np.ndarray, n_atoms: np.ndarray, n_bonds: np.ndarray,
                          matrices: list[np.ndarray]) -> tuple[list[MolGraph], np.ndarray]:
    """Graphs from concatenated atomic numbers and flattened adjacency matrices, plus a validity mask.

    Invalid (dummy atom, a bond order outside the vocabulary, a bond count that disagrees with
    RDKit's) molecules get ``False``; their graphs are meaningless.
    """
    count = n_atoms.size
    atom_ptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(n_atoms, out=atom_ptr[1:])
    square_ptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(n_atoms * n_atoms, out=square_ptr[1:])
    flat = np.concatenate(matrices)
    position = np.flatnonzero(flat)
    owner = np.searchsorted(square_ptr, position, side="right") - 1
    src, dst = np.divmod(position - square_ptr[owner], n_atoms[owner])
    upper = src < dst  # row-major order, upper triangle: the order mol_to_graph produces
    src, dst, owner, position = src[upper], dst[upper], owner[upper], position[upper]
    doubled = np.minimum((flat[position] * 2).astype(np.intp), _DOUBLED_ORDER_TO_TYPE.size - 1)
    kinds = _DOUBLED_ORDER_TO_TYPE[doubled]
    bonds_found = np.bincount(owner, minlength=count)
    valid = (bonds_found == n_bonds) & (np.bincount(owner, weights=kinds < 0, minlength=count) == 0)
    valid &= np.bincount(np.repeat(np.arange(count), n_atoms), weights=atomic_numbers == 0, minlength=count) == 0

    atoms = np.zeros((atomic_numbers.size, 2), dtype=np.uint8)
    atoms[:, 0] = atomic_numbers - 1
    bonds = np.zeros((src.size, 4), dtype=np.int32)
    bonds[:, 0], bonds[:, 1], bonds[:, 2] = src, dst, kinds
    bond_ptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(bonds_found, out=bond_ptr[1:])
    graphs = [MolGraph(atoms[atom_ptr[k]:atom_ptr[k + 1]], bonds[bond_ptr[k]:bond_ptr[k + 1]]) for k in range(count)]
    return graphs, valid



@dataclass(frozen=True)
class Featurizer:
    """A graph vocabulary: field names, vocabulary sizes (mask token included), mask and self-loop values.

    ``featurize(mols, smiles)`` turns parsed molecules (``None`` where RDKit failed) into
    ``(graph, None)`` or ``(None, reason)`` per molecule. ``version`` enters the store key, so a
    change of rules rebuilds cached stores.
    """

    name: str
    version: str
    atom_fields: tuple[str, ...]
    atom_vocab: tuple[int, ...]
    atom_mask: tuple[int, ...]
    bond_fields: tuple[str, ...]
    bond_vocab: tuple[int, ...]
    self_loop: tuple[int, ...]
    featurize: Callable[[Sequence[Optional[Chem.Mol]], Sequence[str]], GraphResults]
    # the same from SMILES alone, parsing and dropping one molecule at a time (faster where nothing
    # else needs the molecules); its second argument is the size limit (:func:`too_many_atoms`)
    featurize_smiles: Optional[Callable[[Sequence[str], Optional[int]], GraphResults]] = None

    def graphs(self, smiles: Sequence[str], max_atoms: Optional[int] = None) -> GraphResults:
        """Parse and featurize SMILES (each parsed once); ``max_atoms`` rejects larger molecules unread."""
        if self.featurize_smiles is not None:
            return self.featurize_smiles(smiles, max_atoms)
        return self.graphs_of(parse_many(smiles), smiles, max_atoms)

    def graphs_of(self, mols: Sequence[Optional[Chem.Mol]], smiles: Sequence[str],
                  max_atoms: Optional[int] = None) -> GraphResults:
        """Featurize molecules already parsed (see :func:`parse_many`), rejecting those over ``max_atoms``."""
        if max_atoms is None:
            return self.featurize(mols, smiles)
        results: GraphResults = [None] * len(mols)  # type: ignore[list-item]
        fits = []
        for i, mol in enumerate(mols):
            if mol is not None and mol.GetNumAtoms() > max_atoms:
                results[i] = (None, too_many_atoms(mol.GetNumAtoms(), max_atoms))
            else:
                fits.append(i)
        for i, result in zip(fits, self.featurize([mols[i] for i in fits], [smiles[i] for i in fits])):
            results[i] = result
        return results


MOLCLR = Featurizer(
    name="molclr", version=FEATURIZER_VERSION,
    atom_fields=("atomic_number", "chirality"), atom_vocab=(NUM_ATOM_TYPES, NUM_CHIRALITY_TAGS),
    atom_mask=(MASK_ATOM, 0),  # MolCLR's reference masks the type and resets chirality to 0
    bond_fields=("type", "direction"), bond_vocab=(NUM_BOND_TYPES, NUM_BOND_DIRECTIONS),
    self_loop=(SELF_LOOP_BOND, 0), featurize=mols_to_graphs, featurize_smiles=smiles_to_graphs,
)
