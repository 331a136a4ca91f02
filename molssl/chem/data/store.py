"""The on-disk molecule store: featurize once (in parallel), then slice batches from memory-mapped arrays.

Layout of a store directory (raw little-endian arrays; dtype, shape, size and blake2b in ``meta.json``):

    atoms.bin (A, F) uint8    atom_ptr.bin (n+1,) int64   atom fields; offsets of each molecule
    bonds.bin (B, 2+G) int16  bond_ptr.bin (n+1,) int64   [src, dst, bond fields], src/dst local
    rows.bin, lines.bin (n,)  0-based data row and 1-based line of each molecule in the input file
    smiles.bin, smiles_ptr    the input SMILES text of each molecule (UTF-8)
    labels.bin (n, T) f64     label columns, NaN where missing (only when label columns were asked for)
    <extra>.bin (n, k)        row extras (ECFP bits, RDKit 2D descriptors, scaffold keys)
    fragments_*.bin           graph extras (BRICS fragments), fragments of molecule i at fragments_ptr[i:i+2]
    invalid.csv               line, smiles, reason of every row that could not be featurized

A store is keyed by a hash of the input file's bytes, the SMILES and label columns, the featurizer
and the extras with their versions, so it is reused across runs and rebuilt whenever any of them
changes. It is written into a temporary folder and renamed into place; unfinished folders of killed
builds are removed by the next build. Opening it checks every file's size and blake2b checksum
against ``meta.json``, and the offsets and counts against each other; a damaged store (changed
bytes, truncated files, garbled or missing ``meta.json``, a stray file in its place) is rebuilt with
one line saying so, never used. The check reads the store once: see benchmarks/results/store_integrity.md.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import rdkit
import torch

from molssl.chem.data.batch import GraphArrays, GraphBatch
from molssl.chem.data.extras import get_extra
from molssl.chem.data.featurizers import get_featurizer
from molssl.chem.data.inputs import iter_smiles, resolve_smiles_column
from molssl.chem.data.parallel import MAX_ATOMS, parallel_featurize
from molssl.chem.data.store_writer import INVALID_FILE, META_FILE, STORE_FORMAT, file_checksum, write_store
from molssl.core.checkpoint import current_umask
from molssl.core.progress import Progress
from molssl.errors import InputFileError, InvalidSmilesError, MolsslError, require_input_file

# Rows per featurization chunk: 2048 rather than 4096 leaves half the single-worker tail at the end of a
# build (20k SMILES, 2 workers: 11-17% faster, benchmarks/results/pretrain_throughput.md, twelfth session);
# smaller chunks cost more per chunk than they save.
STORE_CHUNK_ROWS = 2048
STALE_TEMP_SECONDS = 6 * 3600  # an unfinished build folder idle this long is removed even if its process id is in use


class DamagedStore(MolsslError):
    """A store whose files do not match its ``meta.json`` (or that has none)."""


def default_cache_dir() -> Path:
    """``$MOLSSL_CACHE`` or ``~/.cache/molssl``."""
    return Path(os.environ.get("MOLSSL_CACHE", Path.home() / ".cache" / "molssl"))


class MoleculeStore:
    """A featurized corpus on disk, opened memory-mapped after its files are checked against ``meta.json``."""

    def __init__(self, folder: str | Path, verify: bool = True) -> None:
        self.folder = Path(folder)
        try:
            self._open(verify)
        except DamagedStore:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OSError) as exc:
            raise DamagedStore(f"its files do not fit its meta.json ({type(exc).__name__}: {exc})") from None

    def _open(self, verify: bool) -> None:
        self.meta = _read_meta(self.folder)
        if verify:
            for name, spec in self.meta["files"].items():
                _check_file(self.folder / name, int(spec["bytes"]), spec["blake2b"])
        arrays = {name: self._map(name, spec, verify) for name, spec in self.meta["arrays"].items()}
        self.arrays = arrays
        self.graphs = GraphArrays(arrays["atoms"], arrays["atom_ptr"], arrays["bonds"], arrays["bond_ptr"])
        self.rows = arrays["rows"]
        self.lines = arrays["lines"]
        self.labels = arrays.get("labels")
        self.featurizer = get_featurizer(self.meta["featurizer"])
        self.graph_extras = {name: (GraphArrays(arrays[f"{name}_atoms"], arrays[f"{name}_atom_ptr"],
                                                arrays[f"{name}_bonds"], arrays[f"{name}_bond_ptr"]),
                                    arrays[f"{name}_ptr"])
                             for name in self.meta["extras"] if get_extra(name).kind == "graphs"}
        if verify:
            self._check_structure()

    def _map(self, name: str, spec: dict, verify: bool) -> np.ndarray:
        path = self.folder / f"{name}.bin"
        shape = tuple(int(n) for n in spec["shape"])
        dtype = np.dtype(spec["dtype"])
        expected = int(np.prod(shape)) * dtype.itemsize
        if verify:
            if spec.get("bytes") != expected:
                raise DamagedStore(f"{path.name} is described with inconsistent sizes")
            _check_file(path, expected, spec.get("blake2b"))
        if expected == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)

    def _check_structure(self) -> None:
        n = len(self)
        meta = self.meta
        if n != meta.get("n_molecules") or self.rows.shape[0] != n or self.lines.shape[0] != n:
            raise DamagedStore("its molecule count is inconsistent")
        if meta.get("n_rows") != n + meta.get("n_invalid", -1) or meta.get("key") != self.folder.name:
            raise DamagedStore("its meta.json does not describe this store")
        for ptr, size in ((self.graphs.atom_ptr, self.graphs.atoms.shape[0]),
                          (self.graphs.bond_ptr, self.graphs.bonds.shape[0]),
                          (self.arrays["smiles_ptr"], self.arrays["smiles"].shape[0])):
            if ptr.shape[0] != n + 1 or ptr[0] != 0 or ptr[-1] != size or (np.diff(ptr) < 0).any():
                raise DamagedStore("its offsets do not fit its arrays")

    def __len__(self) -> int:
        return len(self.graphs)

    @property
    def extras(self) -> list[str]:
        return list(self.meta.get("extras", []))

    @property
    def label_columns(self) -> list[str]:
        return list(self.meta.get("label_columns", []))

    @property
    def n_invalid(self) -> int:
        return int(self.meta["n_invalid"])

    def extra(self, name: str) -> np.ndarray:
        """The (n, k) array of row extra ``name``."""
        if name not in self.arrays:
            raise ValueError(f"this store has no {name!r} extra (it has: {', '.join(self.extras) or 'none'})")
        return self.arrays[name]

    def smiles(self, index: Optional[Sequence[int] | np.ndarray] = None) -> list[str]:
        """Input SMILES text of the molecules at store positions ``index`` (all by default)."""
        ptr, data = self.arrays["smiles_ptr"], self.arrays["smiles"]
        index = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        return [data[ptr[i]:ptr[i + 1]].tobytes().decode("utf-8") for i in index]

    def rejected(self, limit: Optional[int] = None) -> list[tuple[int, str, str]]:
        """The rows that could not be featurized: (line, smiles, reason)."""
        out: list[tuple[int, str, str]] = []
        with open(self.folder / INVALID_FILE, newline="", encoding="utf-8") as handle:
            for record in csv.DictReader(handle):
                out.append((int(record["line"]), record["smiles"], record["reason"]))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def rejected_rows(self) -> list[tuple[int, str]]:
        """(0-based data row, reason) of every row that could not be featurized."""
        with open(self.folder / INVALID_FILE, newline="", encoding="utf-8") as handle:
            return [(int(record["row"]), record["reason"]) for record in csv.DictReader(handle)]

    def gather(self, index: np.ndarray, features: Sequence[str] = ()) -> GraphBatch:
        """Batch of the molecules at store positions ``index`` (with fingerprints and fragments when stored,
        and the row extras named in ``features`` as ``batch.features``)."""
        index = np.asarray(index, dtype=np.int64)
        batch = self.graphs.gather(index)
        if features:
            batch.features = {name: torch.from_numpy(np.ascontiguousarray(self.extra(name)[index]))
                              for name in features}
        if "ecfp" in self.arrays:
            batch.ecfp = torch.from_numpy(np.ascontiguousarray(self.arrays["ecfp"][index]))
        if "fragments" in self.graph_extras:
            fragments, ptr = self.graph_extras["fragments"]
            start = ptr[index]
            counts = ptr[index + 1] - start
            offsets = np.concatenate([[0], np.cumsum(counts)])
            frag_index = np.repeat(start - offsets[:-1], counts) + np.arange(offsets[-1])
            batch.fragments = fragments.gather(frag_index)
            batch.fragment_owner = torch.from_numpy(np.repeat(np.arange(index.size, dtype=np.int64), counts))
        return batch


def _check_file(path: Path, size: int, checksum: Optional[str]) -> None:
    """Raise :class:`DamagedStore` unless ``path`` has the recorded size and checksum."""
    if not path.is_file() or path.stat().st_size != size:
        raise DamagedStore(f"{path.name} is missing or has the wrong size")
    if file_checksum(path) != checksum:
        raise DamagedStore(f"{path.name} does not match its checksum")


def _read_meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedStore("it has no meta.json") from None
    except (OSError, ValueError) as exc:
        raise DamagedStore(f"its meta.json is unreadable ({exc})") from None
    if (not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT or not isinstance(meta.get("arrays"), dict)
            or not isinstance(meta.get("files"), dict)):
        raise DamagedStore("its meta.json is not a store description of this molssl version")
    needed = {"atoms", "bonds", "atom_ptr", "bond_ptr", "rows", "lines", "smiles", "smiles_ptr"}
    if not needed <= set(meta["arrays"]) or INVALID_FILE not in meta["files"]:
        raise DamagedStore("it lacks some of its files")
    return meta


def _input_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def store_key(path: Path, smiles_column: Optional[str], extras: Sequence[str], featurizer: str = "molclr",
              label_columns: Sequence[str] = (), max_atoms: int = MAX_ATOMS) -> str:
    spec = get_featurizer(featurizer)
    versions = ",".join(f"{name}={get_extra(name).version}" for name in sorted(extras))
    parts = [_input_digest(path), str(smiles_column), spec.version, str(STORE_FORMAT), versions,
             json.dumps(list(label_columns)), str(max_atoms), rdkit.__version__]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _build_prefix(key: str) -> str:
    """Name prefix of an unfinished build folder: ``.<key>.<pid>-<host>.`` (the host: caches on shared disks)."""
    return f".{key}.{os.getpid()}-{_host()}."


def _host() -> str:
    return "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:40] or "host"


def _remove_stale_builds(root: Path) -> None:
    """Delete unfinished build folders (``.<key>.<pid>-<host>.*``) left by killed processes.

    A folder of this machine whose process is gone goes at once; any other (another machine's, or a
    process id reused since) only when nothing in it changed for :data:`STALE_TEMP_SECONDS`.
    """
    host = _host()
    for folder in root.glob(".*.*"):
        parts = folder.name.split(".")
        if len(parts) < 4 or not folder.is_dir():
            continue
        pid_text, _, folder_host = parts[2].partition("-")
        local = pid_text.isdigit() and folder_host in ("", host)
        if (local and not _pid_alive(int(pid_text))) or _idle_seconds(folder) > STALE_TEMP_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)


def _idle_seconds(folder: Path) -> float:
    """Seconds since anything in ``folder`` (a build folder: flat) was last written."""
    try:
        newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
    except OSError:
        return 0.0
    return time.time() - newest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _discard(folder: Path) -> None:
    """Remove a damaged store, or whatever else sits where a store should be (a stray file)."""
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    else:
        folder.unlink(missing_ok=True)


def build_store(
    path: str | Path,
    *,
    smiles_column: Optional[str] = None,
    extras: Sequence[str] = (),
    featurizer: str = "molclr",
    label_columns: Sequence[str] = (),
    cache_dir: Optional[str | Path] = None,
    workers: Optional[int] = None,
    chunk_size: int = STORE_CHUNK_ROWS,
    max_atoms: int = MAX_ATOMS,
    progress: bool = True,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> MoleculeStore:
    """Featurize ``path`` into a store (or open the cached one). Invalid rows are recorded, not raised."""
    path = Path(path)
    require_input_file(path)
    extras = tuple(sorted(set(extras)))
    for name in extras:
        get_extra(name)
    get_featurizer(featurizer)
    if max_atoms < 1:
        raise MolsslError(f"--max-atoms must be at least 1, got {max_atoms}")
    try:
        column = resolve_smiles_column(path, smiles_column)
    except DAMAGED_INPUT as exc:
        raise _damaged(path, exc) from None
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "stores"
    key = store_key(path, column, extras, featurizer, label_columns, max_atoms)
    folder = root / key
    if folder.exists() or folder.is_symlink():
        try:
            return MoleculeStore(folder)
        except DamagedStore as exc:
            log(f"the cached store of {path.name} in {root} is damaged ({exc}); rebuilding it")
            _discard(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(root)
        tmp = Path(tempfile.mkdtemp(prefix=_build_prefix(key), dir=root))
    except OSError as exc:
        raise InputFileError(f"cannot write the featurization cache in {root} ({exc.strerror or exc}); "
                             "point --cache-dir or MOLSSL_CACHE at a writable folder") from None
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the cache from the user's group
        chunks = iter_smiles(path, column, chunk_size, columns=label_columns)
        results = parallel_featurize(chunks, extras, workers or os.cpu_count() or 1, featurizer, label_columns,
                                     max_atoms)
        with Progress(f"featurizing {path.name}", enabled=progress) as bar:
            write_store(results, tmp, source=path, key=key, smiles_column=column, featurizer=featurizer,
                        extras=extras, label_columns=label_columns, progress=bar)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished the same store first
            if not (folder / META_FILE).is_file():
                raise
    except InputFileError as exc:
        if str(path) not in str(exc):
            raise InputFileError(f"{path}: {exc}") from None
        raise
    except DAMAGED_INPUT as exc:
        raise _damaged(path, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return MoleculeStore(folder)


DAMAGED_INPUT = (EOFError, zlib.error)  # what a cut-short or corrupted gzip raises past the readers


def _damaged(path: Path, exc: BaseException) -> InputFileError:
    return InputFileError(f"cannot read {path}: it is truncated or damaged ({exc})")


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
        shutil.copyfile(store.folder / INVALID_FILE, rejected_out)
    if len(store) == 0:
        raise InputFileError(f"{path} contains no valid SMILES")
    return store
