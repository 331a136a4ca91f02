"""Issue 18.11, 18.14 and 18.17: bad options, outputs and inputs of pretrain, finetune, benchmark, convert, plot
and data stop with exit 2 and one sentence naming the option or file, before any work starts (no run folder is
created)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from safety_helpers import TINY_FINETUNE, TINY_PRETRAIN, refused

CSV_TASK = ["--targets", "y", "--task", "regression"]


@pytest.mark.parametrize("option, value, named", [
    ("--device", "foo", "--device 'foo'"), ("--checkpoint-every", "0", "--checkpoint-every"),
    ("--batch-size", "0", "--batch-size"), ("--batch-size", "1", "--batch-size"), ("--max-steps", "0", "--max-steps"),
    ("--epochs", "0", "--epochs"), ("--emb-dim", "0", "--emb-dim"), ("--temperature", "0", "--temperature"),
    ("--workers", "0", "--workers"), ("--max-atoms", "0", "--max-atoms"), ("--lr", "-1", "--lr"),
])
def test_pretrain_options(molssl, tmp_path, corpus, option, value, named):
    out = tmp_path / "run"
    refused(molssl("pretrain", "--smiles", corpus, "--out", out, *TINY_PRETRAIN, option, value), named)
    assert not out.exists()


@pytest.mark.parametrize("option, value, named", [
    ("--device", "foo", "--device 'foo'"), ("--threads", "0", "--threads"), ("--lr-head", "-1", "--lr-head"),
    ("--batch-size", "0", "--batch-size"), ("--epochs", "0", "--epochs"), ("--emb-dim", "0", "--emb-dim"),
    ("--feat-dim", "0", "--feat-dim"), ("--num-layers", "1", "--num-layers"), ("--num-layers", "65", "--num-layers"),
    ("--data-dir", "nowhere", "--data-dir"),
])
def test_finetune_options(molssl, tmp_path, labelled_csv, option, value, named):
    out = tmp_path / "run"
    refused(molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *TINY_FINETUNE, "--out", out, option, value), named)
    assert not out.exists()


@pytest.mark.parametrize("option, value, named", [
    ("--epochs", "0", "--epochs"), ("--batch-size", "0", "--batch-size"), ("--threads", "0", "--threads"),
    ("--device", "foo", "--device 'foo'"),
])
def test_benchmark_options(molssl, tmp_path, option, value, named):
    out = tmp_path / "bench"
    refused(molssl("benchmark", "--out", out, "--datasets", "bbbp", "--data-dir", tmp_path, "--variants",
                   "random-init", option, value), named)
    assert not out.exists()


def test_usage_errors_found_by_a_command_are_one_line_too(molssl, tmp_path, corpus):
    refused(molssl("convert", "chemprop", corpus, tmp_path / "converted"), "unknown format 'chemprop'")
    refused(molssl("plot", "map", corpus, "-o", tmp_path / "map.png"), "exactly one of --color-by")
    assert not (tmp_path / "converted").exists() and not (tmp_path / "map.png").exists()


@pytest.mark.parametrize("args, fragments", [
    (["predict", "--bogus"], ["No such option: --bogus", "see 'molssl predict -h'"]),
    (["--bogus"], ["No such option: --bogus", "see 'molssl -h'"]),
    (["predcit"], ["No such command 'predcit'", "Did you mean 'predict'?", "see 'molssl -h'"]),
    (["pretrain", "--epochs", "two"], ["Invalid value for '--epochs'", "valid integer", "see 'molssl pretrain -h'"]),
    (["pretrain", "--epochs", "1"], ["Missing option '--smiles'", "see 'molssl pretrain -h'"]),
    (["models", "check", "--bogus"], ["No such option: --bogus", "see 'molssl models check -h'"]),
    (["vision", "nosuch"], ["No such command 'nosuch'", "see 'molssl vision -h'"]),
])
def test_usage_errors_found_while_parsing_are_one_line(molssl, args, fragments):
    """click's own parse errors follow the same policy (they were typer's usage lines and a boxed panel)."""
    refused(molssl(*args), *fragments)


def test_a_bare_group_still_shows_its_help(molssl):
    outcome = molssl("vision")
    assert "Usage:" in outcome.stdout + outcome.stderr and "error:" not in outcome.stdout + outcome.stderr


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n")
    return path


def test_outputs_that_are_files(molssl, tmp_path, corpus, labelled_csv, a_file):
    refused(molssl("pretrain", "--smiles", corpus, "--out", a_file, *TINY_PRETRAIN), "--out", a_file, "is a file")
    refused(molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *TINY_FINETUNE, "--out", a_file), a_file, "is a file")
    refused(molssl("benchmark", "--out", a_file, "--datasets", "bbbp", "--data-dir", tmp_path), a_file, "is a file")
    refused(molssl("convert", "molclr", corpus, a_file), a_file, "is a file")
    refused(molssl("plot", "map", corpus, "--color-by", "y", "-o", tmp_path), "-o", "is a folder")
    assert a_file.read_text() == "not a folder\n"


def test_benchmark_refuses_a_folder_that_is_not_a_suite(molssl, tmp_path):
    folder = tmp_path / "mine"
    (folder / "bbbp" / "random-init").mkdir(parents=True)
    (folder / "bbbp" / "random-init" / "notes.md").write_text("my notes")
    refused(molssl("benchmark", "--out", folder, "--datasets", "bbbp", "--data-dir", tmp_path), folder,
            "not a molssl run")
    assert (folder / "bbbp" / "random-init" / "notes.md").read_text() == "my notes"


def test_read_only_outputs_and_caches(molssl, read_only_folder, corpus, labelled_csv):
    ro = read_only_folder
    refused(molssl("pretrain", "--smiles", corpus, "--out", ro / "run", *TINY_PRETRAIN), ro, "permission denied")
    refused(molssl("pretrain", "--smiles", corpus, "--out", ro.parent / "run", "--cache-dir", ro, *TINY_PRETRAIN),
            ro, "cache")
    refused(molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *TINY_FINETUNE, "--out", ro / "run"), ro,
            "permission denied")
    refused(molssl("finetune", "--csv", labelled_csv, *CSV_TASK, *TINY_FINETUNE, "--out", ro.parent / "run2",
                   "--cache-dir", ro), ro, "cache")
    refused(molssl("benchmark", "--out", ro / "bench", "--datasets", "bbbp", "--data-dir", ro.parent), ro,
            "permission denied")
    refused(molssl("convert", "molclr", corpus, ro / "converted"), ro, "permission denied")
    refused(molssl("plot", "map", corpus, "--color-by", "y", "-o", ro / "map.png"), ro, "permission denied")
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(os.path.isfile("/dev/stdin"), reason="stdin is a regular file here")
def test_folders_and_devices_as_inputs(molssl, tmp_path):
    for source in (tmp_path, Path("/dev/stdin")):
        reason = "it is a folder" if source.is_dir() else "not a regular file"
        refused(molssl("pretrain", "--smiles", source, "--out", tmp_path / "run", *TINY_PRETRAIN), source, reason)
        refused(molssl("finetune", "--csv", source, *CSV_TASK, *TINY_FINETUNE, "--out", tmp_path / "run"), source,
                reason)
        refused(molssl("convert", "molclr", source, tmp_path / "converted"), source, reason)
        refused(molssl("plot", "map", source, "--color-by", "y", "-o", tmp_path / "map.png"), source, reason)
    assert not (tmp_path / "run").exists() and not (tmp_path / "converted").exists()


@pytest.mark.parametrize("name, content, message", [
    ("empty.smi", "", "contains no SMILES"), ("blank.smi", "\n\n", "contains no SMILES"),
    ("header.csv", "smiles,y\n", "contains no SMILES"), ("empty.csv", "", "empty or not a readable CSV"),
])
def test_empty_inputs(molssl, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    refused(molssl("pretrain", "--smiles", path, "--out", tmp_path / "run", *TINY_PRETRAIN), path, message)
    if name.endswith(".csv"):
        refused(molssl("finetune", "--csv", path, *CSV_TASK, *TINY_FINETUNE, "--out", tmp_path / "ft"), path, message)


def test_data_commands(molssl, tmp_path):
    refused(molssl("data", "path", "nope"), "unknown data set 'nope'")
    refused(molssl("data", "fetch", "nope"), "unknown data set 'nope'")
    refused(molssl("data", "list", "--data-dir", tmp_path / "nowhere"), "--data-dir", "no such folder")
