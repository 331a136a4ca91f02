"""The one training recipe (:func:`molssl.core.fit.fit` on :class:`molssl.core.trainer.Trainer`) on a problem small
enough to reason about: it learns, keeps the best epoch, stops on patience, resumes to the same weights as an
uninterrupted run, and refuses a resume whose settings changed."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from torch import nn

from molssl.core.fit import FitConfig, fit
from molssl.core.stopping import Terminated
from molssl.core.trainer import Selection, load_training_checkpoint
from molssl.errors import MolsslError
from cpu_helpers import spend_cpu

CPU = torch.device("cpu")


class Batches:
    """A fixed regression data set y = 3x - 1 (+ noise) in ``n_batches`` shuffled-per-epoch batches."""

    def __init__(self, n_batches: int = 4, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n_batches * size, 1, generator=g)
        self.y = 3 * self.x - 1 + 0.01 * torch.randn(self.x.shape, generator=g)
        self.n_batches, self.size = n_batches, size

    def __len__(self) -> int:
        return self.n_batches

    def batches(self, epoch: int, start: int = 0):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch))
        for b in range(start, self.n_batches):
            rows = order[b * self.size:(b + 1) * self.size]
            yield {"x": self.x[rows], "y": self.y[rows]}


class Regression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(1, 1)

    def forward(self, batch: dict) -> torch.Tensor:
        return ((self.linear(batch["x"]) - batch["y"]) ** 2).mean()


def config(**changes) -> FitConfig:
    base = dict(epochs=30, lr=0.1, schedule="constant", warmup_fraction=0.0, checkpoint_every=None, progress=False,
                log_every=1000)
    return FitConfig(**{**base, **changes})


def test_fit_learns_and_writes_its_run_files(tmp_path):
    module = Regression()
    trainer = fit(module, Batches(), out_dir=tmp_path, device=CPU, config=config(), run_config={"task": "line"},
                  log=lambda m: None)
    assert trainer.state.step == 30 * 4 and trainer.state.epoch == 30
    assert module.linear.weight.item() == pytest.approx(3.0, abs=0.05)
    assert module.linear.bias.item() == pytest.approx(-1.0, abs=0.05)
    assert (tmp_path / "checkpoint.pt").is_file()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert losses[-1] < losses[0] / 100


def test_selection_keeps_the_best_epoch_and_patience_stops(tmp_path):
    module = Regression()
    scores = iter([5.0, 4.0, 1.0, 2.0, 3.0, 4.0, 0.5])  # best at epoch 3 (index 2), then three worse epochs
    weights = []

    def score() -> float:
        weights.append(module.linear.weight.detach().clone())
        return next(scores)

    trainer = fit(module, Batches(), out_dir=tmp_path, device=CPU, config=config(patience=3),
                  selection=Selection("loss", score, higher_is_better=False), log=lambda m: None)
    assert trainer.state.stopped_early and trainer.state.epoch == 6  # epochs 4, 5, 6 without improvement
    assert trainer.state.best_epoch == 2 and trainer.state.best_score == 1.0
    assert torch.equal(module.linear.weight, weights[2])  # the module ends with the best epoch's weights


def test_resume_after_an_interruption_gives_the_uninterrupted_weights(tmp_path):
    straight = Regression()
    fit(straight, Batches(), out_dir=tmp_path / "a", device=CPU, config=config(epochs=6, checkpoint_every=5),
        run_config={"task": "line"}, log=lambda m: None)

    first = Regression()
    fit(first, Batches(), out_dir=tmp_path / "b", device=CPU, config=config(epochs=6, checkpoint_every=5, max_steps=10),
        run_config={"task": "line"}, log=lambda m: None)  # "killed" after step 10, mid-epoch 3
    resumed = Regression()
    trainer = fit(resumed, Batches(), out_dir=tmp_path / "b", device=CPU, config=config(epochs=6, checkpoint_every=5),
                  run_config={"task": "line"}, resume=True, resume_may_change=("max_steps",), log=lambda m: None)
    assert trainer.state.step == 24
    assert torch.equal(resumed.linear.weight, straight.linear.weight)
    assert torch.equal(resumed.linear.bias, straight.linear.bias)


class Busy(Batches):
    """Every batch costs ``cpu`` seconds of CPU time first, as a heavy step would."""

    def __init__(self, cpu: float) -> None:
        super().__init__()
        self.cpu = cpu

    def batches(self, epoch: int, start: int = 0):
        for batch in super().batches(epoch, start):
            spend_cpu(self.cpu)
            yield batch


def test_the_cost_of_a_resumed_run_counts_every_session(tmp_path):
    run = dict(out_dir=tmp_path, device=CPU, run_config={"task": "line"}, log=lambda m: None)
    first = fit(Regression(), Busy(0.05), config=config(epochs=2, max_steps=4), **run).state  # one epoch, 0.2 s
    assert first.cpu_seconds >= 0.2 and first.seconds > 0
    saved = load_training_checkpoint(tmp_path / "checkpoint.pt")["state"]
    assert (saved["seconds"], saved["cpu_seconds"]) == (first.seconds, first.cpu_seconds)
    trainer = fit(Regression(), Busy(0.05), config=config(epochs=2), resume=True, resume_may_change=("max_steps",),
                  **run)
    assert trainer.earlier == (first.seconds, first.cpu_seconds)
    assert trainer.state.step == 8 and trainer.state.cpu_seconds >= first.cpu_seconds + 0.2
    assert trainer.state.seconds >= first.seconds + 0.2


class TerminatedMidEpoch(Batches):
    """Sends this process SIGTERM (as a scheduler, ``timeout`` or ``kill`` would) before batch 2 of epoch 1."""

    def batches(self, epoch: int, start: int = 0):
        for index, batch in enumerate(super().batches(epoch, start), start):
            if epoch == 1 and index == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch


def test_sigterm_checkpoints_where_it_stopped_and_resume_finishes_the_run(tmp_path):
    straight = Regression()
    fit(straight, Batches(), out_dir=tmp_path / "a", device=CPU, config=config(epochs=3), run_config={"task": "line"},
        log=lambda m: None)
    handler = signal.getsignal(signal.SIGTERM)
    epoch_lines: list[str] = []
    notices: list[str] = []  # what a user sees with the per-epoch lines off (--no-progress)
    with pytest.raises(Terminated) as stopped:  # checkpoints only at epoch ends: the mid-epoch one is SIGTERM's
        fit(Regression(), TerminatedMidEpoch(), out_dir=tmp_path / "b", device=CPU, config=config(epochs=3),
            run_config={"task": "line"}, selection=Selection("score", lambda: 1.0, higher_is_better=True),
            log=epoch_lines.append, notice=notices.append)
    assert stopped.value.code == 128 + signal.SIGTERM and signal.getsignal(signal.SIGTERM) is handler
    assert notices == ["interrupted at step 6; checkpoint saved, continue with --resume"]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3"]
    resumed = Regression()
    trainer = fit(resumed, Batches(), out_dir=tmp_path / "b", device=CPU, config=config(epochs=3),
                  run_config={"task": "line"}, resume=True, log=lambda m: None, notice=notices.append)
    assert notices[-1] == "resumed from step 6"
    assert trainer.state.step == 12
    assert torch.equal(resumed.linear.weight, straight.linear.weight)


def test_resume_with_other_settings_is_refused_naming_them(tmp_path):
    fit(Regression(), Batches(), out_dir=tmp_path, device=CPU, config=config(epochs=2),
        run_config={"task": "line", "epochs": 2}, log=lambda m: None)
    with pytest.raises(MolsslError, match="epochs"):
        fit(Regression(), Batches(), out_dir=tmp_path, device=CPU, config=config(epochs=4),
            run_config={"task": "line", "epochs": 4}, resume=True, log=lambda m: None)


def test_an_empty_training_source_is_one_clear_error(tmp_path):
    with pytest.raises(MolsslError, match="no batch"):
        fit(Regression(), Batches(n_batches=0), out_dir=tmp_path, device=CPU, config=config(), log=lambda m: None)
