"""Issue 18.2: files and folders molssl writes get the modes the user's umask gives (0644/0755 under umask 022),
not the private 0600/0700 of temporary files, so colleagues can read shared runs and caches."""
from __future__ import annotations

import os
import stat

import pytest

from molssl.chem.data.store import build_store
from molssl.core.checkpoint import atomic_save, atomic_write_text
from safety_helpers import TINY_PRETRAIN


@pytest.fixture
def umask():
    """``umask(mask)`` sets the process umask for the test; the old one comes back afterwards."""
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, file_mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, file_mode):
    umask(mask)
    assert mode(atomic_save({"step": 1}, tmp_path / "checkpoint.pt")) == file_mode
    assert mode(atomic_write_text(tmp_path / "config.json", "{}")) == file_mode


def test_store_folder_and_files_follow_the_umask(tmp_path, umask, corpus):
    umask(0o022)
    store = build_store(corpus, cache_dir=tmp_path / "cache", workers=1, progress=False)
    assert mode(store.folder) == 0o755
    assert {mode(p) for p in store.folder.iterdir()} == {0o644}


def test_pretrain_run_and_its_cache_follow_the_umask(molssl, tmp_path, umask, corpus):
    umask(0o022)
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = molssl("pretrain", "--smiles", corpus, "--out", out, "--cache-dir", cache, "--max-steps", "2",
                    *TINY_PRETRAIN)
    assert result.exit_code == 0, result.describe()
    written = [p for p in out.rglob("*")] + [p for p in cache.rglob("*")]
    assert {p.name for p in out.iterdir()} >= {"checkpoint.pt", "encoder.pt", "config.json", "metrics.jsonl"}
    assert {(p.name, mode(p)) for p in written if p.is_file() and mode(p) != 0o644} == set()
    assert {(p.name, mode(p)) for p in written if p.is_dir() and mode(p) != 0o755} == set()


def test_modality_run_record_follows_the_umask(tmp_path, umask):
    """The vision/video/audio/RL runs write config.json through core.runs.write_record."""
    from molssl.core.runs import write_record

    umask(0o022)
    write_record(tmp_path, {"method": "simclr"})
    assert mode(tmp_path / "config.json") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left behind
