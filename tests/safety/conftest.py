"""Fixtures of the safety tests: the CLI run in-process, a small corpus and labelled CSV, folders that cannot be
written even by root."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from safety_helpers import SMILES, TINY_PRETRAIN, Outcome


@pytest.fixture
def molssl(monkeypatch):
    """Run ``molssl ARGS`` in this process (the CLI's own error handling, none of pytest's)."""
    from typer.testing import CliRunner

    from molssl.cli.main import app

    monkeypatch.delenv("MOLSSL_DEBUG", raising=False)
    runner = CliRunner()

    def run(*args) -> Outcome:
        result = runner.invoke(app, [str(a) for a in args])
        exception = None if isinstance(result.exception, SystemExit) else result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr, exception)

    return run


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.smi"
    path.write_text("\n".join(SMILES * 2) + "\n")
    return path


@pytest.fixture
def labelled_csv(tmp_path) -> Path:
    """60 molecules on several scaffolds with a regression label ``y`` and a class label ``active``."""
    cores = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1", "C1CCNCC1"]
    tails = ["C", "CC", "CCC", "OC", "NC", "ClC", "FC", "OCC", "NCC", "CC(C)C"]
    rows = [(tail + core, 0.1 * i, i % 2) for i, (core, tail) in enumerate((c, t) for c in cores for t in tails)]
    path = tmp_path / "labelled.csv"
    path.write_text("smiles,y,active\n" + "".join(f"{s},{y:.2f},{a}\n" for s, y, a in rows))
    return path


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can create files in: mode 0555, and for root (who ignores modes) the immutable flag."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None and \
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        (folder / ".probe").touch()
    except OSError:
        pass
    else:
        (folder / ".probe").unlink()
        pytest.skip("cannot make a read-only folder here (root without chattr)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.fixture
def pretrain_run(molssl, tmp_path, corpus) -> Path:
    """A finished two-step pre-training run of a tiny encoder."""
    out = tmp_path / "run"
    result = molssl("pretrain", "--smiles", corpus, "--out", out, "--max-steps", "2", *TINY_PRETRAIN)
    assert result.exit_code == 0, result.describe()
    return out
