"""Issue 21.6: a wheel built from a clean copy of the working tree installs into a fresh environment, carries the
shipped models as package data, and predicts from there (not from this checkout's editable install).

The copy holds git's tracked and untracked-but-not-ignored files (what a commit of the tree would hold). The
fresh venv has no pip and no network: the installed dependencies are reused through a path file, and the
wheel is installed by this interpreter's pip with --no-deps --no-index.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tree_files() -> list[str]:
    """Paths git would commit from the working tree (tracked or new, not ignored, not deleted)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in listed.stdout.decode().split("\0") if name and (REPO / name).is_file()]


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to list the tree")
def test_wheel_from_a_clean_copy_predicts_in_a_fresh_venv(tmp_path):
    source = tmp_path / "source"
    for name in tree_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    build = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index",
                 "-w", tmp_path / "dist", source])
    assert "BuildBackendWarning" not in build.stdout + build.stderr
    wheel, = (tmp_path / "dist").glob("molssl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"molssl/models/esol/weights.pt", "molssl/models/esol/card.json"} <= set(names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "installed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "--no-compile", wheel])

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MOLSSL_DEBUG")}
    env["OMP_NUM_THREADS"] = "1"
    where = run([python, "-c", "import molssl; print(molssl.__file__)"], cwd=tmp_path, env=env).stdout.strip()
    assert Path(where).is_relative_to(site), where
    predicted = run([venv / "bin" / "molssl", "predict", "-m", "esol", "--smiles", "CCO"], cwd=tmp_path, env=env)
    row = next(line for line in predicted.stdout.splitlines() if line.lstrip().startswith("CCO"))
    assert re.search(r"\bok\b", row) and re.search(r"\d\.\d", row), predicted.stdout  # a number, status ok
