"""The on-disk molecule store: featurize once (in parallel), then slice batches from memory-mapped arrays.

Layout of a store directory (all arrays raw little-endian, shapes in ``meta.json``):

    atoms.bin (A, 2) uint8   atom_ptr.bin (n+1,) int64   atom offsets of each molecule
    bonds.bin (B, 4) int16   bond_ptr.bin (n+1,) int64   [src, dst, type, dir], src/dst local to the molecule
    rows.bin (n,) int64      0-based data row of each molecule in the input file
    invalid.csv              line, smiles, reason of every row that could not be featurized
    ecfp.bin (n, k) uint8    packed ECFP bits (optional extra "ecfp")
    frag_*.bin               BRICS fragment graphs, fragments of molecule i at frag_ptr[i]:frag_ptr[i+1]
                             (optional extra "fragments")

A store is keyed by a hash of the input file's bytes, the SMILES column, the featurizer version and
the extras, so it is reused across runs and rebuilt whenever any of them changes. It is written into
a temporary directory and renamed into place, so a killed build never leaves a half store behind.
"""
from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from importlib import import_module
from itertools import chain, islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.featurize import FEATURIZER_VERSION, InvalidMolecule, MolGraph, mols_to_graphs, parse_many
from molssl.chem.data.inputs import SmilesChunk, iter_smiles, resolve_smiles_column
from molssl.errors import InputFileError, InvalidSmilesError

STORE_FORMAT = 1
ECFP_BITS = 1024

# Optional per-molecule features computed in the same pass as the graph (one RDKit parse per molecule):
# name -> (function, version). Bump a version when its rules change, so cached stores are rebuilt.
EXTRAS: dict[str, tuple[str, str]] = {
    "ecfp": ("molssl.chem.nn.similarity:ecfp_bits", f"ecfp4-{ECFP_BITS}-v1"),
    "fragments": ("molssl.chem.data.fragments:brics_fragment_graphs", "brics-over3-v1"),
}


def default_cache_dir() -> Path:
    """``$MOLSSL_CACHE`` or ``~/.cache/molssl``."""
    return Path(os.environ.get("MOLSSL_CACHE", Path.home() / ".cache" / "molssl"))


def _resolve_extra(name: str) -> Callable:
    if name not in EXTRAS:
        raise ValueError(f"unknown store extra {name!r}; choose from {sorted(EXTRAS)}")
    module, attr = EXTRAS[name][0].split(":")
    return getattr(import_module(module), attr)


# --------------------------------------------------------------------------- graph arrays
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
        edge_attr = np.repeat(bonds[:, 2:4], 2, axis=0)
        return GraphBatch(
            x=torch.from_numpy(x),
            edge_index=torch.from_numpy(edge_index),
            edge_attr=torch.from_numpy(edge_attr),
            batch=torch.from_numpy(np.repeat(np.arange(index.size, dtype=np.int64), n_atoms)),
            ptr=torch.from_numpy(ptr),
            index=torch.from_numpy(index.copy()),
        )


def graphs_to_arrays(graphs: Sequence[MolGraph]) -> GraphArrays:
    """Pack a list of graphs (e.g. built in memory for prediction) into :class:`GraphArrays`."""
    atom_ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    bond_ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum([g.atoms.shape[0] for g in graphs], out=atom_ptr[1:])
    np.cumsum([g.bonds.shape[0] for g in graphs], out=bond_ptr[1:])
    atoms = np.concatenate([g.atoms for g in graphs]) if graphs else np.zeros((0, 2), np.uint8)
    bonds = np.concatenate([g.bonds for g in graphs]).astype(np.int16) if graphs else np.zeros((0, 4), np.int16)
    return GraphArrays(atoms.astype(np.uint8), atom_ptr, bonds.reshape(-1, 4), bond_ptr)


# --------------------------------------------------------------------------- featurization worker
@dataclass
class ChunkResult:
    rows: np.ndarray  # data rows of the valid molecules
    graphs: GraphArrays
    rejected: list[tuple[int, str, str]]  # (line, smiles, reason)
    ecfp: Optional[np.ndarray] = None
    fragments: Optional[GraphArrays] = None
    fragment_counts: Optional[np.ndarray] = None


def featurize_chunk(chunk: SmilesChunk, extras: tuple[str, ...] = ()) -> ChunkResult:
    """Parse and featurize one chunk; runs in worker processes."""
    extra_fns = {name: _resolve_extra(name) for name in extras}
    graphs: list[MolGraph] = []
    rows: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    ecfp: list[np.ndarray] = []
    fragments: list[MolGraph] = []
    fragment_counts: list[int] = []
    mols = parse_many(chunk.smiles)
    for row, line, smiles, mol, (graph, reason) in zip(chunk.rows, chunk.lines, chunk.smiles, mols,
                                                       mols_to_graphs(mols, chunk.smiles)):
        if graph is not None and extra_fns:
            try:
                if "ecfp" in extra_fns:
                    fingerprint = extra_fns["ecfp"](mol, n_bits=ECFP_BITS)
                if "fragments" in extra_fns:
                    frags = extra_fns["fragments"](mol, graph=graph)
            except InvalidMolecule as exc:
                graph, reason = None, str(exc)
        if graph is None:
            rejected.append((line, smiles, reason))
            continue
        graphs.append(graph)
        rows.append(row)
        if "ecfp" in extra_fns:
            ecfp.append(fingerprint)
        if "fragments" in extra_fns:
            fragments.extend(frags)
            fragment_counts.append(len(frags))
    return ChunkResult(
        rows=np.asarray(rows, dtype=np.int64),
        graphs=graphs_to_arrays(graphs),
        rejected=rejected,
        ecfp=np.stack(ecfp) if ecfp else (np.zeros((0, ECFP_BITS // 8), np.uint8) if "ecfp" in extras else None),
        fragments=graphs_to_arrays(fragments) if "fragments" in extras else None,
        fragment_counts=np.asarray(fragment_counts, dtype=np.int64) if "fragments" in extras else None,
    )


def _featurize_chunk_star(args: tuple) -> ChunkResult:
    return featurize_chunk(*args)


def parallel_featurize(chunks: Iterable[SmilesChunk], extras: tuple[str, ...], workers: int) -> Iterator[ChunkResult]:
    """Featurize chunks in ``workers`` processes, in order, with a bounded number of chunks in flight.

    An input of a single chunk is featurized in this process (starting workers would cost more).
    """
    chunks = iter(chunks)
    head = list(islice(chunks, 2))
    if workers <= 1 or len(head) < 2:
        for chunk in chain(head, chunks):
            yield featurize_chunk(chunk, extras)
        return
    # fork: workers need no re-import of the caller's __main__ (scripts, notebooks, stdin all work);
    # they run RDKit and NumPy only, never torch.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for chunk in chain(head, chunks):
            pending.append(pool.apply_async(_featurize_chunk_star, ((chunk, extras),)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# --------------------------------------------------------------------------- writing
class _ArrayWriter:
    """Appends arrays to raw files and remembers dtype and shape."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.specs: dict[str, dict] = {}
        self.handles: dict[str, object] = {}

    def append(self, name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if name not in self.handles:
            self.handles[name] = open(self.folder / f"{name}.bin", "wb")
            self.specs[name] = {"dtype": array.dtype.str, "shape": [0, *array.shape[1:]]}
        self.handles[name].write(array.tobytes())
        self.specs[name]["shape"][0] += array.shape[0]

    def close(self) -> dict[str, dict]:
        for handle in self.handles.values():
            handle.close()
        return self.specs


class _PtrWriter:
    """Turns per-item counts into an offsets array (starting at 0) written through an :class:`_ArrayWriter`."""

    def __init__(self, writer: _ArrayWriter, name: str) -> None:
        self.writer, self.name, self.total = writer, name, 0
        writer.append(name, np.zeros(1, dtype=np.int64))

    def extend(self, counts: np.ndarray) -> None:
        offsets = self.total + np.cumsum(counts, dtype=np.int64)
        self.writer.append(self.name, offsets)
        if offsets.size:
            self.total = int(offsets[-1])


def _append_graphs(writer: _ArrayWriter, ptrs: dict[str, _PtrWriter], prefix: str, graphs: GraphArrays) -> None:
    writer.append(f"{prefix}atoms", graphs.atoms)
    writer.append(f"{prefix}bonds", graphs.bonds)
    ptrs[f"{prefix}atom_ptr"].extend(np.diff(graphs.atom_ptr))
    ptrs[f"{prefix}bond_ptr"].extend(np.diff(graphs.bond_ptr))


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_key(path: Path, smiles_column: Optional[str], extras: Sequence[str]) -> str:
    versions = ",".join(f"{name}={EXTRAS[name][1]}" for name in sorted(extras))
    parts = [_file_digest(path), str(smiles_column), FEATURIZER_VERSION, str(STORE_FORMAT), versions]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


# --------------------------------------------------------------------------- the store
class MoleculeStore:
    """A featurized corpus on disk, opened memory-mapped."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise InputFileError(f"{self.folder} is not a molssl store (no meta.json)")
        self.meta = json.loads(meta_path.read_text())
        arrays = {name: self._map(name, spec) for name, spec in self.meta["arrays"].items()}
        self.graphs = GraphArrays(arrays["atoms"], arrays["atom_ptr"], arrays["bonds"], arrays["bond_ptr"])
        self.rows = arrays["rows"]
        self.ecfp = arrays.get("ecfp")
        self.fragments = (
            GraphArrays(arrays["frag_atoms"], arrays["frag_atom_ptr"], arrays["frag_bonds"], arrays["frag_bond_ptr"])
            if "frag_ptr" in arrays else None
        )
        self.fragment_ptr = arrays.get("frag_ptr")

    def _map(self, name: str, spec: dict) -> np.ndarray:
        shape = tuple(spec["shape"])
        if shape[0] == 0:
            return np.zeros(shape, dtype=np.dtype(spec["dtype"]))
        return np.memmap(self.folder / f"{name}.bin", dtype=np.dtype(spec["dtype"]), mode="r", shape=shape)

    def __len__(self) -> int:
        return len(self.graphs)

    @property
    def extras(self) -> list[str]:
        return list(self.meta.get("extras", []))

    @property
    def n_invalid(self) -> int:
        return int(self.meta["n_invalid"])

    def rejected(self, limit: Optional[int] = None) -> list[tuple[int, str, str]]:
        """The rows that could not be featurized: (line, smiles, reason)."""
        out: list[tuple[int, str, str]] = []
        with open(self.folder / "invalid.csv", newline="", encoding="utf-8") as handle:
            for record in csv.DictReader(handle):
                out.append((int(record["line"]), record["smiles"], record["reason"]))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def gather(self, index: np.ndarray) -> GraphBatch:
        """Batch of the molecules at store positions ``index`` (with their extras)."""
        index = np.asarray(index, dtype=np.int64)
        batch = self.graphs.gather(index)
        if self.ecfp is not None:
            batch.ecfp = torch.from_numpy(np.ascontiguousarray(self.ecfp[index]))
        if self.fragments is not None:
            start = self.fragment_ptr[index]
            counts = self.fragment_ptr[index + 1] - start
            offsets = np.concatenate([[0], np.cumsum(counts)])
            frag_index = np.repeat(start - offsets[:-1], counts) + np.arange(offsets[-1])
            batch.fragments = self.fragments.gather(frag_index)
            batch.fragment_owner = torch.from_numpy(np.repeat(np.arange(index.size, dtype=np.int64), counts))
        return batch


def build_store(
    path: str | Path,
    *,
    smiles_column: Optional[str] = None,
    extras: Sequence[str] = (),
    cache_dir: Optional[str | Path] = None,
    workers: Optional[int] = None,
    chunk_size: int = 4096,
    progress: bool = True,
) -> MoleculeStore:
    """Featurize ``path`` into a store (or open the cached one). Invalid rows are recorded, not raised."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"cannot read {path}: no such file")
    extras = tuple(sorted(set(extras)))
    for name in extras:
        _resolve_extra(name)
    column = resolve_smiles_column(path, smiles_column)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "stores"
    folder = root / store_key(path, column, extras)
    if (folder / "meta.json").is_file():
        return MoleculeStore(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        _write_store(path, column, extras, tmp, workers or os.cpu_count() or 1, chunk_size, progress)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished the same store first
            if not (folder / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return MoleculeStore(folder)


def _write_store(path: Path, column: Optional[str], extras: tuple[str, ...], folder: Path, workers: int,
                 chunk_size: int, progress: bool) -> None:
    writer = _ArrayWriter(folder)
    ptr_names = ["atom_ptr", "bond_ptr"] + (["frag_atom_ptr", "frag_bond_ptr", "frag_ptr"] if "fragments" in extras else [])
    ptrs = {name: _PtrWriter(writer, name) for name in ptr_names}
    n_rows = n_valid = n_invalid = 0
    bar = tqdm(desc=f"featurizing {path.name}", unit=" mol", disable=not progress or None, dynamic_ncols=True)
    chunks = iter_smiles(path, column, chunk_size)
    with open(folder / "invalid.csv", "w", newline="", encoding="utf-8") as invalid_file:
        rejected_writer = csv.writer(invalid_file)
        rejected_writer.writerow(["line", "smiles", "reason"])
        for result in parallel_featurize(chunks, extras, workers):
            _append_graphs(writer, ptrs, "", result.graphs)
            writer.append("rows", result.rows)
            if result.ecfp is not None:
                writer.append("ecfp", result.ecfp)
            if result.fragments is not None:
                _append_graphs(writer, ptrs, "frag_", result.fragments)
                ptrs["frag_ptr"].extend(result.fragment_counts)
            rejected_writer.writerows(result.rejected)
            n_valid += result.rows.size
            n_invalid += len(result.rejected)
            n_rows += result.rows.size + len(result.rejected)
            bar.update(result.rows.size + len(result.rejected))
    bar.close()
    if n_rows == 0:
        raise InputFileError(f"{path} contains no SMILES")
    specs = writer.close()
    meta = {
        "format": STORE_FORMAT,
        "featurizer": FEATURIZER_VERSION,
        "source": str(path.resolve()),
        "smiles_column": column,
        "extras": list(extras),
        "n_rows": n_rows,
        "n_molecules": n_valid,
        "n_invalid": n_invalid,
        "arrays": specs,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def open_corpus(
    path: str | Path,
    *,
    smiles_column: Optional[str] = None,
    extras: Sequence[str] = (),
    skip_invalid: bool = False,
    rejected_out: Optional[str | Path] = None,
    **kwargs,
) -> MoleculeStore:
    """Build or reuse the store of ``path``; stop on invalid SMILES unless ``skip_invalid``.

    With ``skip_invalid`` the rejected rows (line, smiles, reason) are copied to ``rejected_out``.
    """
    store = build_store(path, smiles_column=smiles_column, extras=extras, **kwargs)
    if store.n_invalid and not skip_invalid:
        raise InvalidSmilesError(str(path), store.rejected(limit=5), store.n_invalid,
                                 hint="Fix them, or pass --skip-invalid to leave them out (they are then listed in the run directory).")
    if store.n_invalid and rejected_out is not None:
        Path(rejected_out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.folder / "invalid.csv", rejected_out)
    if len(store) == 0:
        raise InputFileError(f"{path} contains no valid SMILES")
    return store
