"""Many molecules' atom and bond fields read from RDKit's binary form with numpy, not atom by atom.

Why: reading ~20 atoms and bonds through RDKit's Python objects costs ~80 us a molecule, more than
parsing its SMILES, and almost all of it is Python creating objects. ``Mol.ToBinary()`` writes every
field the graph vocabularies need in C++ (~7 us), and numpy reads the records of all molecules of a
chunk in lock step: the k-th atom of every molecule at once. The values are RDKit's own (nothing is
re-derived). The layout is RDKit's private pickle format (``Code/GraphMol/MolPickler.cpp``: per atom
its atomic number, flags and a bit set of the fields that differ from their defaults; per bond its
ends, flags and the differing fields; then the ring finder's atom rings), so only the pickle version
it was checked against is read (:data:`PICKLE_VERSION`). A molecule with anything else (another
version, over 255 atoms, query features, atom-map numbers, dummy labels, residue information, a
record that does not end where the next section begins) is reported unreadable, and its caller reads
it atom by atom; ``tests/chem/data/test_rdkit_binary.py`` compares the two readers field by field.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from rdkit import Chem

PICKLE_VERSION = (16, 3)  # MolPickler versionMajor, versionMinor of the RDKit this layout was checked against
_HEADER_BYTES = 20  # endian id, VERSION tag, major, minor, patch (int32 each)
_BEGIN_BOND = 11  # MolPickler::Tags
_RING_TAGS = (20, 66, 67, 68)  # BEGINSSSR, BEGINSYMMSSSR, BEGINFASTFIND, BEGINFINDOTHERORUNKNOWN
_AFTER_RINGS = (18, 22, 23, 58, 59, 61, 62, 64)  # props, ENDMOL, conformers, atom/bond props, sgroups, stereo groups
_SP3 = 4  # the hybridization the format leaves out
_PICKLE_OPTIONS = Chem.PropertyPickleOptions.NoProps | Chem.PropertyPickleOptions.NoConformers
_NO_IMPLICIT = 1 << 5
_UNSUPPORTED_ATOM_FLAGS = 0x1E  # query, atom-map number, dummy label, monomer (residue) information
_UNSUPPORTED_BOND_FLAGS = 0x11  # query, mol-file bond end points


def _reference_header() -> bytes:
    return Chem.MolFromSmiles("C").ToBinary(_PICKLE_OPTIONS)[:_HEADER_BYTES]


_HEADER = np.frombuffer(_reference_header(), dtype=np.uint8)
READABLE = tuple(int(v) for v in np.frombuffer(_HEADER.tobytes()[8:16], dtype="<i4")) == PICKLE_VERSION


class AtomBondFields(NamedTuple):
    """RDKit's values for the ``readable`` molecules, concatenated (atoms, then bonds, in index order)."""

    readable: np.ndarray  # (count,) bool: the rows below cover exactly these molecules, in order
    n_atoms: np.ndarray
    n_bonds: np.ndarray
    atomic_number: np.ndarray
    chirality: np.ndarray  # RDKit ChiralType values
    formal_charge: np.ndarray
    total_hydrogens: np.ndarray  # Atom.GetTotalNumHs(): explicit plus implicit
    hybridization: np.ndarray  # RDKit HybridizationType values
    aromatic: np.ndarray
    atom_in_ring: np.ndarray
    isotope: np.ndarray
    radicals: np.ndarray
    begin: np.ndarray
    end: np.ndarray
    bond_type: np.ndarray  # RDKit BondType values
    bond_direction: np.ndarray  # RDKit BondDir values
    bond_stereo: np.ndarray  # RDKit BondStereo values
    conjugated: np.ndarray
    bond_in_ring: np.ndarray


def binary_form(mol: Chem.Mol) -> bytes:
    """What :func:`read_binary_fields` reads: the molecule's binary form, without properties or coordinates."""
    return mol.ToBinary(_PICKLE_OPTIONS) if READABLE else b""


def read_binary_fields(blobs: Sequence[bytes]) -> AtomBondFields:
    """The graph fields of sanitized, non-empty molecules from their :func:`binary_form`; see :class:`AtomBondFields`
    for which were readable (none where this RDKit writes another pickle version)."""
    count = len(blobs)
    if count == 0 or not READABLE:
        return _empty(count)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=count)
    start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    buf = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    header = np.take(buf, start[:, None] + np.arange(_HEADER_BYTES), mode="clip")
    header_ok = (header == _HEADER).all(axis=1) & (lengths > 31)
    n_atoms = np.where(header_ok, _int32(buf, start + 20), 0)
    n_bonds = np.where(header_ok, _int32(buf, start + 24), 0)
    ok = header_ok & (n_atoms > 0) & (n_atoms <= 255) & (n_bonds >= 0)
    ok &= (_byte(buf, start + 28) == 0x80) & (_byte(buf, start + 29) == 1)  # the molecule's flag byte, BEGINATOM
    n_atoms, n_bonds = np.where(ok, n_atoms, 0), np.where(ok, n_bonds, 0)
    pos = start + 30
    atoms = _read_atoms(buf, pos, n_atoms, ok)
    ok &= _byte(buf, pos) == _BEGIN_BOND
    pos += 1
    bonds = _read_bonds(buf, pos, n_bonds, ok)
    ok &= np.isin(_byte(buf, pos), _RING_TAGS)
    pos += 1
    atom_ptr = np.concatenate([[0], np.cumsum(n_atoms)])
    atom_in_ring, ring_edges = _read_rings(buf, pos, np.where(ok, _int32(buf, pos), 0), atom_ptr, ok)
    ok &= np.isin(_byte(buf, pos), _AFTER_RINGS) & (pos <= start + lengths - 1)
    owner_of_bond = np.repeat(np.arange(count), n_bonds)
    begin, end = bonds["begin"], bonds["end"]
    ok &= np.bincount(owner_of_bond, weights=(np.maximum(begin, end) >= n_atoms[owner_of_bond]) | (begin == end),
                      minlength=count) == 0
    global_begin, global_end = atom_ptr[owner_of_bond] + begin, atom_ptr[owner_of_bond] + end
    keys = np.minimum(global_begin, global_end) * atom_ptr[-1] + np.maximum(global_begin, global_end)
    bond_in_ring = _is_in(keys, np.sort(ring_edges))
    keep_atom = np.repeat(ok, n_atoms)
    keep_bond = np.repeat(ok, n_bonds)
    return AtomBondFields(
        readable=ok, n_atoms=n_atoms[ok], n_bonds=n_bonds[ok],
        **{name: values[keep_atom] for name, values in atoms.items()}, atom_in_ring=atom_in_ring[keep_atom],
        begin=begin[keep_bond], end=end[keep_bond], bond_type=bonds["type"][keep_bond],
        bond_direction=bonds["direction"][keep_bond], bond_stereo=bonds["stereo"][keep_bond],
        conjugated=bonds["conjugated"][keep_bond], bond_in_ring=bond_in_ring[keep_bond])


def _byte(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The byte at each offset; offsets past the end (only a record read wrongly gets there) read the last byte."""
    return np.take(buf, at, mode="clip").astype(np.int64)


def _int32(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Little-endian int32 at each offset (RDKit writes in the host order; x86 and ARM are little-endian)."""
    value = _byte(buf, at) | _byte(buf, at + 1) << 8 | _byte(buf, at + 2) << 16 | _byte(buf, at + 3) << 24
    return np.where(value >= 1 << 31, value - (1 << 32), value)


def _is_in(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Which ``keys`` are in ``sorted_keys`` (a binary search: faster than ``np.isin`` on keys this large)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    return sorted_keys[np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)] == keys


def _signed(values: np.ndarray) -> np.ndarray:
    """Bytes read as signed chars (formal charges)."""
    return np.where(values > 127, values - 256, values)


def _lock_step(counts: np.ndarray):
    """For k = 0..max(counts)-1: the molecules with more than k records and the row of their k-th record."""
    order = np.argsort(-counts, kind="stable")
    sorted_counts = counts[order]
    ptr = np.concatenate([[0], np.cumsum(counts)])
    for k in range(int(sorted_counts[0]) if counts.size else 0):
        active = order[:np.searchsorted(-sorted_counts, -k, side="left")]
        yield active, ptr[active] + k


def _read_atoms(buf: np.ndarray, pos: np.ndarray, n_atoms: np.ndarray, ok: np.ndarray) -> dict[str, np.ndarray]:
    """Atom records from ``pos`` (advanced past them); molecules with a record the layout does not cover lose ``ok``."""
    total = int(n_atoms.sum())
    out = {name: np.zeros(total, dtype=np.int64) for name in (
        "atomic_number", "chirality", "formal_charge", "total_hydrogens", "hybridization", "aromatic", "isotope",
        "radicals")}
    for active, row in _lock_step(n_atoms):
        p = pos[active]
        flags = _byte(buf, p + 1)
        fields = _int32(buf, p + 2)
        bad = (flags & _UNSUPPORTED_ATOM_FLAGS) | (fields & ~0x1FE)
        ok[active[bad != 0]] = False
        at = p + 6

        def optional(bit: int, default: int) -> np.ndarray:
            nonlocal at
            present = (fields >> bit) & 1
            value = np.where(present == 1, _byte(buf, at), default)
            at = at + present
            return value

        out["atomic_number"][row] = _byte(buf, p)
        out["aromatic"][row] = (flags >> 6) & 1
        out["formal_charge"][row] = _signed(optional(1, 0))
        out["chirality"][row] = optional(2, 0)
        out["hybridization"][row] = optional(3, _SP3)
        explicit_h = optional(4, 0)
        optional(5, 0)  # explicit valence
        implicit_h = optional(6, 0)
        out["total_hydrogens"][row] = explicit_h + np.where(flags & _NO_IMPLICIT, 0, implicit_h)
        out["radicals"][row] = optional(7, 0)
        has_isotope = (fields >> 8) & 1
        out["isotope"][row] = np.where(has_isotope == 1, _int32(buf, at), 0)
        pos[active] = at + 4 * has_isotope
    return out


def _read_bonds(buf: np.ndarray, pos: np.ndarray, n_bonds: np.ndarray, ok: np.ndarray) -> dict[str, np.ndarray]:
    """Bond records from ``pos`` (advanced past them), atom indices one byte each (molecules of <= 255 atoms)."""
    total = int(n_bonds.sum())
    out = {name: np.zeros(total, dtype=np.int64) for name in (
        "begin", "end", "type", "direction", "stereo", "conjugated")}
    for active, row in _lock_step(n_bonds):
        p = pos[active]
        flags = _byte(buf, p + 2)
        ok[active[(flags & _UNSUPPORTED_BOND_FLAGS) != 0]] = False
        out["begin"][row], out["end"][row] = _byte(buf, p), _byte(buf, p + 1)
        out["conjugated"][row] = (flags >> 5) & 1
        at = p + 3
        has_type, has_direction, has_stereo = (flags >> 3) & 1, (flags >> 2) & 1, (flags >> 1) & 1
        out["type"][row] = np.where(has_type == 1, _byte(buf, at), int(Chem.BondType.SINGLE))
        at = at + has_type
        out["direction"][row] = np.where(has_direction == 1, _byte(buf, at), 0)
        at = at + has_direction
        out["stereo"][row] = np.where(has_stereo == 1, _byte(buf, at), 0)
        at = at + has_stereo * (2 + _byte(buf, at + 1))  # stereo value, stereo-atom count, the stereo atoms
        pos[active] = at
    return out


def _read_rings(buf: np.ndarray, pos: np.ndarray, n_rings: np.ndarray, atom_ptr: np.ndarray,
                ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring membership of every atom, and every ring bond as a key ``low * total + high`` over global atom rows."""
    total = int(atom_ptr[-1])
    in_ring = np.zeros(total, dtype=np.int64)
    edges = []
    ok &= (n_rings >= 0) & (n_rings <= 4096)
    n_rings = np.where(ok, n_rings, 0)
    pos += 4
    for active, _ in _lock_step(n_rings):
        p = pos[active]
        size = _byte(buf, p)
        owner = np.repeat(active, size)
        first = np.repeat(np.cumsum(size) - size, size)
        index = np.arange(owner.size) - first  # place of each ring atom in its ring
        atom = _byte(buf, np.repeat(p + 1, size) + index)
        outside = atom >= (atom_ptr[owner + 1] - atom_ptr[owner])
        ok[owner[outside]] = False
        ring_atom = atom_ptr[owner] + np.where(outside, 0, atom)
        in_ring[ring_atom] = 1
        following = np.where(index + 1 < np.repeat(size, size), np.arange(owner.size) + 1, first)  # ring closes
        low, high = np.minimum(ring_atom, ring_atom[following]), np.maximum(ring_atom, ring_atom[following])
        edges.append(low * total + high)
        pos[active] = p + 1 + size
    return in_ring, (np.concatenate(edges) if edges else np.zeros(0, dtype=np.int64))


def _empty(count: int) -> AtomBondFields:
    none = np.zeros(0, dtype=np.int64)
    return AtomBondFields(np.zeros(count, dtype=bool), *([none] * 18))


__all__ = ["AtomBondFields", "PICKLE_VERSION", "READABLE", "read_binary_fields"]
