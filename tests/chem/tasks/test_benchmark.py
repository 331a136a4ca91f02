import json
import time
import warnings
from dataclasses import replace

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from molssl.chem.tasks.benchmark import BenchmarkConfig, run_benchmark
from molssl.chem.tasks.reports import benchmark_table
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.cli.main import app
from molssl.core.cputime import cpu_seconds
from molssl.core.trainer import Trainer, load_training_checkpoint
from molssl.chem.serve.loading import save_encoder
from molssl.errors import MolsslError
from cpu_helpers import spend_cpu

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def fake_moleculenet(tmp_path):
    """A stand-in BBBP.csv (BBBP's columns, 60 small molecules) in a data folder."""
    rings = ["c1ccccc1", "C1CCNCC1", "c1ccncc1", "C1CCOCC1"]
    chains = ["C", "CC", "CCC", "CO", "CN", "CCl", "CF", "CCO", "CCN", "CC(C)C", "CS", "CBr", "CC#N", "CC=O", "COC"]
    smiles = [chain + ring for ring in rings for chain in chains]
    labels = [int(("N" in s) != (i % 4 == 0)) for i, s in enumerate(smiles)]
    folder = tmp_path / "moleculenet"
    folder.mkdir()
    pd.DataFrame({"num": range(len(smiles)), "name": smiles, "p_np": labels, "smiles": smiles}).to_csv(
        folder / "BBBP.csv", index=False)
    return folder


def _config(tmp_path, data_dir, **changes) -> BenchmarkConfig:
    torch.manual_seed(0)
    save_encoder(MolecularEncoder(TINY), tmp_path / "encoder.pt")
    values = dict(out=str(tmp_path / "bench"), pretrained=str(tmp_path / "encoder.pt"), datasets=["bbbp"],
                  variants=["pretrained", "random-init", "rf-ecfp"],
                  seeds=[0], epochs=1, batch_size=16, split="random", data_dir=str(data_dir),
                  cache_dir=str(tmp_path / "cache"), threads=1)
    values.update(changes)
    return BenchmarkConfig(**values)


def test_suite_runs_all_variants_and_resumes(tmp_path, fake_moleculenet):
    config = _config(tmp_path, fake_moleculenet)
    messages: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stand-in file's checksum differs from the registry's
        rows = run_benchmark(config, log=messages.append)
        assert [r["dataset"] for r in rows] == ["bbbp"]
        for variant in ("pretrained", "random-init", "rf-ecfp"):
            saved = json.loads((tmp_path / "bench" / "bbbp" / variant / "results.json").read_text())
            assert saved["method"] == variant and saved["protocol"] == "molclr-per-target"
            assert rows[0][variant]["mean"] == pytest.approx(saved["mean"])
        # the random-init baseline has the pre-trained encoder's architecture
        random_init = json.loads((tmp_path / "bench" / "bbbp" / "random-init" / "results.json").read_text())
        assert random_init["encoder"]["emb_dim"] == TINY.emb_dim and random_init["config"]["pretrained"] is None
        assert messages[0].startswith("budget: 1 epochs") and any("[1/1] BBBP: rf-ecfp test" in m for m in messages)
        table = (tmp_path / "bench" / "benchmark.md").read_text()
        assert "| BBBP | ROC-AUC % |" in table and "| 73.6 | 72.2 |" in table and "budget:" in table

        stamp = (tmp_path / "bench" / "bbbp" / "pretrained" / "seed_0" / "model.pt").stat().st_mtime_ns
        messages.clear()
        again = run_benchmark(config, log=messages.append)
        assert again == rows and sum("already done" in m for m in messages) == 3
        assert (tmp_path / "bench" / "bbbp" / "pretrained" / "seed_0" / "model.pt").stat().st_mtime_ns == stamp

        # results written before a field existed (here probe_epochs) are still this configuration's
        saved_path = tmp_path / "bench" / "bbbp" / "pretrained" / "results.json"
        saved = json.loads(saved_path.read_text())
        del saved["config"]["probe_epochs"]
        saved_path.write_text(json.dumps(saved))
        messages.clear()
        assert run_benchmark(config, log=messages.append) == rows and sum("already done" in m for m in messages) == 3

        # how a run is carried out (threads, cache) is not a setting of its results
        messages.clear()
        assert run_benchmark(_config(tmp_path, fake_moleculenet, threads=2, cache_dir=str(tmp_path / "other")),
                             log=messages.append) == rows
        assert sum("already done" in m for m in messages) == 3

        with pytest.raises(MolsslError, match="other settings"):
            run_benchmark(_config(tmp_path, fake_moleculenet, epochs=2), log=messages.append)
        with pytest.raises(MolsslError, match="other settings"):
            run_benchmark(_config(tmp_path, fake_moleculenet, probe_epochs=1), log=messages.append)


def test_an_interrupted_variant_continues_where_it_stopped(tmp_path, fake_moleculenet, monkeypatch):
    config = _config(tmp_path, fake_moleculenet, variants=["random-init"], epochs=3)
    run_dir = tmp_path / "bench" / "bbbp" / "random-init"
    first_end_epoch, train_step = Trainer._end_epoch, Trainer.train_step
    steps: list[int] = []

    busy: list[float] = []  # CPU seconds each step of the interrupted session spends (its cost must be carried)

    def counted_step(self, batch):
        steps.append(1)
        if busy:
            spend_cpu(busy[0])
        return train_step(self, batch)

    def stop_after_the_epoch(self, valid):
        first_end_epoch(self, valid)
        raise KeyboardInterrupt  # as if the machine were stopped once the first epoch's checkpoint is written

    monkeypatch.setattr(Trainer, "train_step", counted_step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = run_benchmark(replace(config, out=str(tmp_path / "whole")), log=lambda m: None)
        steps_whole = len(steps)
        monkeypatch.setattr(Trainer, "_end_epoch", stop_after_the_epoch)
        busy.append(0.3)
        with pytest.raises(KeyboardInterrupt):
            run_benchmark(config, log=lambda m: None)
        busy.clear()
        monkeypatch.setattr(Trainer, "_end_epoch", first_end_epoch)
        assert (run_dir / "seed_0" / "checkpoint.pt").is_file() and not (run_dir / "results.json").exists()
        earlier = load_training_checkpoint(run_dir / "seed_0" / "checkpoint.pt")["state"]

        steps.clear()
        messages: list[str] = []
        wall, cpu = time.perf_counter(), cpu_seconds()
        rows = run_benchmark(config, log=messages.append)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    assert f"continuing the interrupted run in {run_dir}" in messages
    # the budget counts both sessions: the first one's busy steps (>= 0.3 s each) are more than this whole call's
    assert earlier["cpu_seconds"] >= 0.3 * steps_whole / 3 and earlier["seconds"] >= earlier["cpu_seconds"] - 0.05
    results = json.loads((run_dir / "results.json").read_text())
    assert results["cpu_hours"] * 3600 >= earlier["cpu_seconds"] and results["cpu_hours"] * 3600 > cpu
    assert results["seconds"] >= earlier["seconds"] and results["seconds"] > wall
    (model,) = results["seeds"][0]["models"].values()
    assert model["cpu_seconds"] >= earlier["cpu_seconds"] and model["seconds"] >= earlier["seconds"]
    assert len(steps) * 3 == steps_whole * 2  # the first epoch was not trained again
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "seed_0" / "metrics.jsonl").read_text().splitlines()
              if "valid_roc_auc" in line]
    assert epochs == [0, 1, 2]
    assert rows[0]["random-init"]["seeds"] == pytest.approx(whole[0]["random-init"]["seeds"])


def test_an_interrupted_variant_with_other_settings_starts_again(tmp_path, fake_moleculenet, monkeypatch):
    config = _config(tmp_path, fake_moleculenet, variants=["random-init"], epochs=3)
    first_end_epoch = Trainer._end_epoch

    def stop_after_the_epoch(self, valid):
        first_end_epoch(self, valid)
        raise KeyboardInterrupt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(Trainer, "_end_epoch", stop_after_the_epoch)
        with pytest.raises(KeyboardInterrupt):
            run_benchmark(config, log=lambda m: None)
        monkeypatch.undo()
        messages: list[str] = []
        run_benchmark(replace(config, epochs=2), log=messages.append)
    assert not [m for m in messages if m.startswith("continuing")]
    saved = json.loads((tmp_path / "bench" / "bbbp" / "random-init" / "results.json").read_text())
    assert saved["config"]["epochs"] == 2 and [m["epochs_run"] for m in saved["seeds"][0]["models"].values()] == [2]


def test_benchmark_cli_prints_the_table(tmp_path, fake_moleculenet):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(app, [
            "benchmark", "--datasets", "bbbp", "--variants", "random-init", "rf-ecfp", "--seeds", "0",
            "--epochs", "1", "--split", "random", "--data-dir", str(fake_moleculenet), "--threads", "1",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert ("| data set | metric | random init | RF-ECFP4 | MolCLR paper | MolCLR re-run (GEM) |"
            in result.output)
    assert "| 73.6 | 72.2 |" in result.output
    assert "bbbp/p_np seed 0: epoch 1/1: valid roc_auc" in result.output  # a line per epoch of each model
    assert not (tmp_path / "cli" / "bbbp" / "pretrained").exists()


def test_unknown_suite_and_dataset_are_clear_errors(tmp_path):
    with pytest.raises(MolsslError, match="unknown suite"):
        BenchmarkConfig(out=str(tmp_path), suite="everything")
    with pytest.raises(ValueError, match="unknown data set"):
        BenchmarkConfig(out=str(tmp_path), datasets=["bbbq"])


def test_table_adds_the_mean_over_classification_sets():
    def row(name, metric, paper, pretrained, random_init, rf=None):
        out = {"dataset": name, "title": name.upper(), "metric": metric, "molclr_paper": paper,
               "pretrained": {"mean": pretrained, "std": 0.01}, "random-init": {"mean": random_init, "std": 0.02}}
        if rf is not None:
            out["rf-ecfp"] = {"mean": rf, "std": 0.0}
        return out

    rows = [row("a", "roc_auc", 70.0, 0.70, 0.60, 0.80), row("b", "roc_auc", 80.0, 0.80, 0.64),
            row("c", "rmse", None, 1.5, 1.7, 1.1)]
    last = [line for line in benchmark_table(rows, "budget").splitlines() if line.startswith("| mean of")]
    # RF is missing on one classification set, so it gets no mean rather than a mean over a subset;
    # columns: ours, random init, RF-ECFP4, MolCLR paper, MolCLR re-run (unknown here)
    assert last == ["| mean of 2 classification sets | ROC-AUC % | 75.0 | 62.0 | - | 75.0 | - |"]
    assert not [line for line in benchmark_table(rows[:1], "b").splitlines() if line.startswith("| mean of")]


def test_scores_are_formatted_with_useful_precision():
    from molssl.chem.tasks.reports import format_score

    assert format_score("roc_auc", 0.7171, 0.0066) == "71.7 ± 0.7"
    assert format_score("rmse", 1.4502, 0.0241) == "1.450 ± 0.024"
    assert format_score("mae", 0.02062, 0.00084) == "0.0206 ± 0.0008"  # QM8-sized errors keep their digits
    assert format_score("mae", None) == "-"
