"""Progress lines of batch jobs (stderr not a terminal): count, rate, status and time left, and the trainer's use."""
from __future__ import annotations

import io

import torch

import molssl.core.progress as progress
import molssl.core.trainer as trainer
from molssl.core.fit import FitConfig, fit
from molssl.core.progress import Progress, duration_text, rate_text


def fake_clock(monkeypatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    return now


def test_lines_give_the_rate_since_start_the_status_and_the_time_left(monkeypatch):
    now, stream = fake_clock(monkeypatch), io.StringIO()
    bar = Progress("training", total=100, unit="steps", every=5.0, stream=stream, initial=40)
    bar.note("loss 0.1234")
    now[0] += 4.0
    bar.update(10)  # under `every`: no line yet
    assert stream.getvalue() == ""
    now[0] += 6.0
    bar.update(10)  # 20 steps in 10 s since this run started (the 40 of an earlier run not counted): 2/s, 40 left
    assert stream.getvalue() == "training: 60/100 steps (2/s), loss 0.1234, 0:20 left ...\n"
    bar.update(40)
    now[0] += 10.0
    bar.close()
    assert stream.getvalue().splitlines()[-1] == "training: 100/100 steps (3/s), loss 0.1234 done"


def test_a_run_closed_short_of_its_total_says_stopped(monkeypatch):
    now, stream = fake_clock(monkeypatch), io.StringIO()
    bar = Progress("training", total=100, unit="steps", every=5.0, stream=stream)
    bar.update(30)
    now[0] += 10.0
    bar.close()  # interrupted, or early stopping
    assert stream.getvalue() == "training: 30/100 steps (3/s) stopped\n"


def test_disabled_progress_prints_nothing(monkeypatch):
    now, stream = fake_clock(monkeypatch), io.StringIO()
    with Progress("featurizing", enabled=False, every=0.0, stream=stream) as bar:
        now[0] += 60.0
        bar.update(5000)
    assert stream.getvalue() == ""


def test_rate_and_duration_texts():
    assert [rate_text(r) for r in (7171.4, 412.0, 41.26, 0.8234)] == ["7,171", "412", "41.3", "0.823"]
    assert [duration_text(s) for s in (5, 65.4, 3600, 5999)] == ["0:05", "1:05", "1:00:00", "1:39:59"]


class Line(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return ((self.w - batch) ** 2).mean()


class Ones:
    def __len__(self) -> int:
        return 3

    def batches(self, epoch: int, start: int = 0):
        for _ in range(start, 3):
            yield torch.ones(4)


def test_training_in_a_batch_job_logs_progress_lines(monkeypatch, tmp_path, capsys):
    """A job whose stderr is a file (not a terminal) sees its step, loss, rate and time left, not nothing until the
    end of an epoch."""
    monkeypatch.setattr(trainer, "PROGRESS_EVERY", 0.0)
    config = FitConfig(epochs=2, lr=0.1, schedule="constant", warmup_fraction=0.0, checkpoint_every=None,
                       progress=True, log_every=1)
    fit(Line(), Ones(), out_dir=tmp_path, device=torch.device("cpu"), config=config, log=lambda _msg: None)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("training: ")]
    assert lines[0].startswith("training: 1/6 steps (") and "loss " in lines[0] and lines[0].endswith("left ...")
    assert lines[-1].startswith("training: 6/6 steps (") and lines[-1].endswith(" done")
