"""Writing a store: featurized chunks appended to raw array files, sizes and checksums recorded in ``meta.json``."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from molssl.chem.data.batch import GraphArrays
from molssl.chem.data.extras import get_extra
from molssl.chem.data.featurizers import get_featurizer
from molssl.chem.data.parallel import ChunkResult
from molssl.core.progress import Progress
from molssl.errors import InputFileError

STORE_FORMAT = 3  # 3: invalid.csv checksummed too
META_FILE = "meta.json"
INVALID_FILE = "invalid.csv"


def file_checksum(path: Path) -> str:
    """blake2b of a file's bytes (fast: the whole store is checked each time it is opened)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> dict:
    """Size and checksum of a store file, as ``meta.json`` records them (checked each time the store is opened)."""
    return {"bytes": path.stat().st_size, "blake2b": file_checksum(path)}


class ArrayWriter:
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

    def pointer(self, name: str) -> "PtrWriter":
        return PtrWriter(self, name)

    def close(self) -> dict[str, dict]:
        """Close every file; each spec gains the file's size and checksum."""
        for handle in self.handles.values():
            handle.close()
        for name, spec in self.specs.items():
            spec.update(file_record(self.folder / f"{name}.bin"))
        return self.specs


class PtrWriter:
    """Turns per-item counts into an offsets array (starting at 0) written through an :class:`ArrayWriter`."""

    def __init__(self, writer: ArrayWriter, name: str) -> None:
        self.writer, self.name, self.total = writer, name, 0
        writer.append(name, np.zeros(1, dtype=np.int64))

    def extend(self, counts: np.ndarray) -> None:
        offsets = self.total + np.cumsum(counts, dtype=np.int64)
        self.writer.append(self.name, offsets)
        if offsets.size:
            self.total = int(offsets[-1])


class GraphWriter:
    """Graphs appended as atoms/bonds arrays with their offsets, under a name prefix."""

    def __init__(self, writer: ArrayWriter, prefix: str = "") -> None:
        self.writer, self.prefix = writer, prefix
        self.atom_ptr = writer.pointer(f"{prefix}atom_ptr")
        self.bond_ptr = writer.pointer(f"{prefix}bond_ptr")

    def append(self, graphs: GraphArrays) -> None:
        self.writer.append(f"{self.prefix}atoms", graphs.atoms)
        self.writer.append(f"{self.prefix}bonds", graphs.bonds)
        self.atom_ptr.extend(np.diff(graphs.atom_ptr))
        self.bond_ptr.extend(np.diff(graphs.bond_ptr))


def write_store(results: Iterable[ChunkResult], folder: Path, *, source: Path, key: str, smiles_column: Optional[str],
                featurizer: str, extras: Sequence[str], label_columns: Sequence[str], progress: Progress) -> None:
    """Write featurized chunks into ``folder`` (a fresh temporary folder) and finish with ``meta.json``."""
    writer = ArrayWriter(folder)
    graphs = GraphWriter(writer)
    smiles_ptr = writer.pointer("smiles_ptr")
    graph_extras = {name: (GraphWriter(writer, f"{name}_"), writer.pointer(f"{name}_ptr"))
                    for name in extras if get_extra(name).kind == "graphs"}
    n_rows = n_valid = n_invalid = 0
    with open(folder / INVALID_FILE, "w", newline="", encoding="utf-8") as invalid_file:
        rejected = csv.writer(invalid_file)
        rejected.writerow(["row", "line", "smiles", "reason"])
        for result in results:
            graphs.append(result.graphs)
            writer.append("rows", result.rows)
            writer.append("lines", result.lines)
            encoded = [s.encode("utf-8") for s in result.smiles]
            writer.append("smiles", np.frombuffer(b"".join(encoded), dtype=np.uint8))
            smiles_ptr.extend(np.asarray([len(e) for e in encoded], dtype=np.int64))
            if result.labels is not None:
                writer.append("labels", result.labels)
            for name, values in result.rows_extras.items():
                writer.append(name, values)
            for name, (items, counts) in result.graph_extras.items():
                graph_extras[name][0].append(items)
                graph_extras[name][1].extend(counts)
            rejected.writerows(result.rejected)
            n_valid += result.rows.size
            n_invalid += len(result.rejected)
            n_rows += result.rows.size + len(result.rejected)
            progress.update(result.rows.size + len(result.rejected))
    if n_rows == 0:
        raise InputFileError(f"{source} contains no SMILES")
    spec = get_featurizer(featurizer)
    meta = {
        "format": STORE_FORMAT,
        "key": key,
        "featurizer": spec.name,
        "featurizer_version": spec.version,
        "source": str(source.resolve()),
        "smiles_column": smiles_column,
        "label_columns": list(label_columns),
        "extras": list(extras),
        "n_rows": n_rows,
        "n_molecules": n_valid,
        "n_invalid": n_invalid,
        "arrays": writer.close(),
        "files": {INVALID_FILE: file_record(folder / INVALID_FILE)},
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=1))
