"""Issue 18.7, 18.8 and 18.10: one writer per run directory, never a stranger's folder, resume only into the same
run. Refusals are one sentence, exit 2, and leave the folder as it was."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from molssl.core.rundir import locked_run_dir
from safety_helpers import TINY_FINETUNE, TINY_PRETRAIN, refused

FINETUNE_CSV = ["--targets", "y", "--task", "regression"]


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its bytes (to show a refusal changed nothing)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_second_pretrain_into_a_busy_folder_is_refused(molssl, tmp_path, corpus):
    out = tmp_path / "run"
    # enough steps that the first run cannot finish between writing config.json and being stopped (with 4 it
    # sometimes did, and the second run then met a finished run instead of a busy one)
    first = subprocess.Popen([sys.executable, "-m", "molssl", "pretrain", "--smiles", str(corpus), "--out", str(out),
                              "--max-steps", "60", "--epochs", "60", *TINY_PRETRAIN], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "config.json").is_file() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # the first run holds the folder, mid-run
        assert (out / "config.json").is_file(), first.communicate()
        second = molssl("pretrain", "--smiles", corpus, "--out", out, "--max-steps", "4", *TINY_PRETRAIN)
        refused(second, out, "in use by another molssl process", str(first.pid))
    finally:
        first.send_signal(signal.SIGCONT)
        _stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and "loss" in (out / "metrics.jsonl").read_text()


def test_second_finetune_into_a_busy_folder_is_refused(molssl, tmp_path, labelled_csv):
    out = tmp_path / "run"
    with locked_run_dir(out):  # what a running `molssl finetune` holds
        refused(molssl("finetune", "--csv", labelled_csv, *FINETUNE_CSV, *TINY_FINETUNE, "--out", out),
                out, "in use by another molssl process")
    assert not (out / "config.json").exists()


@pytest.fixture
def users_folder(tmp_path) -> Path:
    folder = tmp_path / "my_project"
    folder.mkdir()
    (folder / "config.json").write_text('{"learning_rate": 0.1, "note": "mine"}\n')
    (folder / "metrics.jsonl").write_text('{"epoch": 1, "accuracy": 0.9}\n')
    (folder / "results.json").write_text('{"best": 0.9}\n')
    return folder


def test_pretrain_refuses_a_folder_that_is_not_a_run(molssl, users_folder, corpus):
    before = snapshot(users_folder)
    refused(molssl("pretrain", "--smiles", corpus, "--out", users_folder, "--max-steps", "1", *TINY_PRETRAIN),
            users_folder, "not a molssl run")
    assert snapshot(users_folder) == before and sorted(p.name for p in users_folder.iterdir()) == \
        ["config.json", "metrics.jsonl", "results.json"]


def test_finetune_refuses_a_folder_that_is_not_a_run(molssl, users_folder, labelled_csv):
    (users_folder / "results.json").unlink()  # fine-tuning takes any results.json for a finished run of its own
    before = snapshot(users_folder)
    refused(molssl("finetune", "--csv", labelled_csv, *FINETUNE_CSV, *TINY_FINETUNE, "--out", users_folder),
            users_folder, "not a molssl run")
    assert snapshot(users_folder) == before and len(list(users_folder.iterdir())) == 2


def test_resume_with_another_corpus_is_refused_before_writing(molssl, tmp_path, pretrain_run, corpus):
    other = tmp_path / "other.smi"
    other.write_text(corpus.read_text() + "CCCCCC\n")
    before = snapshot(pretrain_run)
    line = refused(molssl("pretrain", "--smiles", other, "--out", pretrain_run, "--max-steps", "2", "--resume",
                          *TINY_PRETRAIN), pretrain_run, "input_sha256")  # compared by content: a moved file may resume
    assert "another molssl version" not in line
    assert snapshot(pretrain_run) == before


def test_resume_with_another_emb_dim_is_refused_before_writing(molssl, pretrain_run, corpus):
    before = snapshot(pretrain_run)
    args = [a if a != "8" else "16" for a in TINY_PRETRAIN]  # --emb-dim and --feat-dim 16
    line = refused(molssl("pretrain", "--smiles", corpus, "--out", pretrain_run, "--max-steps", "2", "--resume",
                          *args), pretrain_run, "encoder.emb_dim: 8 -> 16")
    assert "another molssl version" not in line
    assert snapshot(pretrain_run) == before


def test_finetune_resume_with_another_emb_dim_is_refused_before_writing(molssl, tmp_path, labelled_csv):
    out = tmp_path / "run"
    result = molssl("finetune", "--csv", labelled_csv, *FINETUNE_CSV, *TINY_FINETUNE, "--out", out)
    assert result.exit_code == 0, result.describe()
    for name in ("results.json", "results.md", "seed_0/result.json"):  # as if it had been interrupted
        (out / name).unlink()
    before = snapshot(out)
    refused(molssl("finetune", "--csv", labelled_csv, *FINETUNE_CSV, *TINY_FINETUNE, "--emb-dim", "16", "--out", out,
                   "--resume"), out, "encoder.emb_dim: 8 -> 16")
    assert snapshot(out) == before
