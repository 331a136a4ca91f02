"""Issue 18.3 and 18.5: a damaged cached store is detected and rebuilt (one line on stderr, never used), and the
unfinished build folders of killed processes are removed.

Each damage below once gave silently wrong answers or a traceback: a store was reused whenever its
``meta.json`` existed, so values changed in ``atoms.bin`` (still valid atom types) changed predictions.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from molssl.chem.data.store import DamagedStore, MoleculeStore, build_store


def _edit_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


def _flip_atom_type(folder: Path) -> None:
    atoms = np.fromfile(folder / "atoms.bin", dtype=np.uint8)
    atoms[0] = 6 if atoms[0] != 6 else 7  # carbon <-> nitrogen: still a valid atom type
    atoms.tofile(folder / "atoms.bin")


def _truncate(folder: Path, name: str = "bonds.bin") -> None:
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[:-4])


def _randomize(folder: Path, name: str = "atom_ptr.bin") -> None:
    size = (folder / name).stat().st_size
    (folder / name).write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())


def _claim_no_molecules(folder: Path) -> None:
    _edit_meta(folder, lambda meta: meta.update(n_molecules=0))


def _claim_no_molecules_at_all(folder: Path) -> None:
    def empty(meta: dict) -> None:
        meta.update(n_molecules=0, n_rows=0, n_invalid=0)
        for spec in meta["arrays"].values():
            spec["shape"][0] = 0
            spec["bytes"] = 0
    _edit_meta(folder, empty)


def _replace_with_file(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.write_text("not a store")


DAMAGES = {
    "changed atom type": _flip_atom_type,
    "truncated bonds": _truncate,
    "random pointer file": _randomize,
    "random bond pointers": lambda folder: _randomize(folder, "bond_ptr.bin"),
    "deleted meta.json": lambda folder: (folder / "meta.json").unlink(),
    "garbled meta.json": lambda folder: (folder / "meta.json").write_text('{"format": 3, "arrays": {"ato'),
    "meta.json of another kind": lambda folder: (folder / "meta.json").write_text("[1, 2, 3]"),
    "meta.json with wrong types": lambda folder: _edit_meta(folder, lambda m: m["arrays"]["atoms"].update(shape="ab")),
    "store claiming 0 molecules": _claim_no_molecules,
    "store claiming 0 molecules, arrays described empty": _claim_no_molecules_at_all,
    "deleted invalid.csv": lambda folder: (folder / "invalid.csv").unlink(),
    "edited invalid.csv": lambda folder: (folder / "invalid.csv").write_text("row,line,smiles,reason\n0,2,x,bad\n"),
    "a file where the store was": _replace_with_file,
}


def contents(folder: Path) -> dict[str, bytes]:
    """The store's files and their bytes (the same input must give the same store, byte for byte)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def mixed_corpus(tmp_path) -> Path:
    path = tmp_path / "mixed.smi"
    path.write_text("CCO\nc1ccccc1\nnot_a_smiles\nCC(=O)Oc1ccccc1C(=O)O\nC1CCCCC1\nCCN(CC)CC\n")
    return path


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_store_is_rebuilt_with_one_line(tmp_path, capsys, mixed_corpus, damage):
    cache = tmp_path / "cache"
    folder = build_store(mixed_corpus, cache_dir=cache, workers=1, progress=False).folder
    reference = contents(folder)
    DAMAGES[damage](folder)
    capsys.readouterr()

    rebuilt = build_store(mixed_corpus, cache_dir=cache, workers=1, progress=False)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and "rebuilding" in lines[0] and "mixed.smi" in lines[0], lines
    assert rebuilt.folder == folder and contents(folder) == reference
    assert len(rebuilt) == 5 and rebuilt.n_invalid == 1


def test_opening_checks_every_time(tmp_path, corpus):
    store = build_store(corpus, cache_dir=tmp_path, workers=1, progress=False)
    MoleculeStore(store.folder)
    _flip_atom_type(store.folder)
    with pytest.raises(DamagedStore, match="atoms.bin does not match its checksum"):
        MoleculeStore(store.folder)


KILLED_BUILD = """
import os, signal, sys
from molssl.chem.data import store

def killed(results, folder, **kwargs):
    next(iter(results))
    (folder / "atoms.bin").write_bytes(b"half written")
    os.kill(os.getpid(), signal.SIGKILL)

store.write_store = killed
store.build_store(sys.argv[1], cache_dir=sys.argv[2], workers=1, progress=False)
"""


def test_build_folder_of_a_killed_process_is_removed(tmp_path, corpus):
    cache = tmp_path / "cache"
    run = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(corpus), str(cache)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == -signal.SIGKILL, run.stderr
    leftovers = [p for p in cache.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and (leftovers[0] / "atoms.bin").is_file()

    store = build_store(corpus, cache_dir=cache, workers=1, progress=False)
    assert [p.name for p in cache.iterdir()] == [store.folder.name]


def test_only_unfinished_builds_nobody_works_on_are_removed(tmp_path, corpus):
    cache = tmp_path / "cache"
    cache.mkdir()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())
    folders = {
        "dead process here": (cache / f".{'a' * 24}.{ended.pid}.x1", 0),
        "dead process here, host named": (cache / f".{'b' * 24}.{ended.pid}-{host}.x2", 0),
        "this process": (cache / f".{'c' * 24}.{os.getpid()}.x3", 0),
        "another machine, busy": (cache / f".{'d' * 24}.{ended.pid}-elsewhere.x4", 0),
        "another machine, idle for a day": (cache / f".{'e' * 24}.{ended.pid}-elsewhere.x5", 86400),
    }
    for folder, idle in folders.values():
        folder.mkdir()
        (folder / "atoms.bin").write_bytes(b"x")
        past = time.time() - idle
        for path in (folder / "atoms.bin", folder):
            os.utime(path, (past, past))

    build_store(corpus, cache_dir=cache, workers=1, progress=False)
    kept = {what for what, (folder, _) in folders.items() if folder.exists()}
    assert kept == {"this process", "another machine, busy"}
