"""Run directories: which folders count as runs, the lock, the resume comparison, and the metrics log after a kill."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from molssl.core.rundir import (RunDirectoryError, check_output_dir, config_differences, is_run_dir, locked_run_dir,
                                refuse_changed_resume)
from molssl.core.trainer import Trainer, TrainerConfig


def test_only_molssl_files_mark_a_run(tmp_path):
    for name in ("metrics.jsonl", "results.json", "summary.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "config.json").write_text('{"lr": 1}')
    assert not is_run_dir(tmp_path)
    (tmp_path / "config.json").write_text('{"molssl_version": "0.1.0"}')
    assert is_run_dir(tmp_path)


def test_check_output_dir_cases(tmp_path):
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="is a file"):
        check_output_dir(tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    with pytest.raises(RunDirectoryError, match="not a molssl run"):
        check_output_dir(tmp_path / "mine")
    with pytest.raises(RunDirectoryError, match="nothing to resume"):
        check_output_dir(tmp_path / "mine", resume=True)
    (tmp_path / "mine" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        check_output_dir(tmp_path / "mine")
    assert check_output_dir(tmp_path / "mine", resume=True) == tmp_path / "mine"


def test_second_holder_of_the_lock_is_refused(tmp_path):
    with locked_run_dir(tmp_path / "run"):
        with pytest.raises(RunDirectoryError, match="in use by another molssl process"):
            with locked_run_dir(tmp_path / "run"):
                pass
    with locked_run_dir(tmp_path / "run"):  # released when the first run ends
        pass


def test_resume_differences_are_named():
    saved = {"smiles": "a.smi", "encoder": {"emb_dim": 300}, "resume": False}
    current = {"smiles": "b.smi", "encoder": {"emb_dim": 64}, "resume": True}
    assert config_differences(saved, current, ignore=("resume",)) == ["encoder.emb_dim: 300 -> 64",
                                                                      "smiles: 'a.smi' -> 'b.smi'"]
    with pytest.raises(RunDirectoryError, match="encoder.emb_dim: 300 -> 64; smiles"):
        refuse_changed_resume(Path("run"), saved, current, ignore=("resume",))


class SquaredOutput(torch.nn.Linear):
    """A training module: its forward returns the loss."""

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return (super().forward(batch) ** 2).mean()


class Steps:
    """Two batches per epoch of a constant input."""

    def __len__(self) -> int:
        return 2

    def batches(self, epoch: int, start: int = 0):
        for _ in range(start, 2):
            yield torch.ones(4, 3)


def test_fresh_run_drops_records_a_killed_attempt_logged(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "epoch": 0, "loss": 9.0}) + "\n{\"step\": 2,")
    module = SquaredOutput(3, 1)
    trainer = Trainer(module, torch.optim.SGD(module.parameters(), lr=0.1), out_dir=tmp_path,
                      device=torch.device("cpu"), config=TrainerConfig(epochs=1, log_every=1, progress=False),
                      log=lambda message: None)
    trainer.fit(Steps())
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
