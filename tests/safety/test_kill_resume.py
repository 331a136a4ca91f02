"""Issue 18.9: after kill -9 and ``--resume``, records logged after the last checkpoint appear once, not twice.

The run is killed by SIGKILL from inside the training process, right after it logged a record that its last
checkpoint does not cover, so the point of death is exact and the test needs no timing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.chem.tasks.pretrain import PretrainConfig, pretrain

TINY = EncoderConfig(num_layers=2, emb_dim=8, feat_dim=8, proj_dim=4)

KILL_AFTER_RECORD = """
import json, os, signal, sys
from molssl.core.trainer import Trainer

kind, config, condition = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
write = Trainer._write_metrics

def write_then_die(self, record):
    write(self, record)
    if eval(condition, {"record": record}):
        os.kill(os.getpid(), signal.SIGKILL)

Trainer._write_metrics = write_then_die
if kind == "pretrain":
    from molssl.chem.tasks.pretrain import PretrainConfig, pretrain
    pretrain(PretrainConfig(**config), log=lambda message: None)
else:
    from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
    run_finetune(FinetuneConfig(**config), log=lambda message: None)
"""


def run_until_killed(kind: str, config: dict, condition: str) -> None:
    run = subprocess.run([sys.executable, "-c", KILL_AFTER_RECORD, kind, json.dumps(config), condition],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]


def records(path: Path) -> list[tuple[int, int, str]]:
    """(step, epoch, kind) of every metrics record; kind is "train" or "epoch end"."""
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        out.append((record["step"], record["epoch"], "train" if "loss" in record else "epoch end"))
    return out


def test_pretrain_resumed_after_kill_logs_each_step_once(tmp_path, corpus):
    config = dict(smiles=str(corpus), out=str(tmp_path / "run"), encoder=TINY.to_dict(), batch_size=4, epochs=20,
                  max_steps=8, checkpoint_every=3, log_every=1, valid_fraction=0.2, workers=1, precision="fp32",
                  device="cpu", progress=False, cache_dir=str(tmp_path / "cache"))
    run_until_killed("pretrain", config, "record['step'] == 5 and 'loss' in record")
    assert [step for step, _, kind in records(tmp_path / "run" / "metrics.jsonl") if kind == "train"][-1] == 5

    pretrain(PretrainConfig(**{**config, "resume": True}), log=lambda message: None)
    logged = records(tmp_path / "run" / "metrics.jsonl")
    assert not [r for r, n in Counter(logged).items() if n > 1]
    assert [step for step, _, kind in logged if kind == "train"] == list(range(1, 9))


def test_finetune_resumed_after_kill_logs_each_epoch_once(tmp_path, labelled_csv):
    config = dict(out=str(tmp_path / "run"), csv=str(labelled_csv), targets=["y"], task="regression",
                  pretrained="none", encoder=TINY.to_dict(), epochs=4, batch_size=16, threads=1, device="cpu",
                  progress=False, cache_dir=str(tmp_path / "cache"))
    run_until_killed("finetune", config, "record['epoch'] == 2 and 'loss' in record")  # epoch 3: not checkpointed

    run_finetune(FinetuneConfig(**{**config, "resume": True}), log=lambda message: None)
    logged = records(tmp_path / "run" / "seed_0" / "metrics.jsonl")
    assert not [r for r, n in Counter(logged).items() if n > 1]
    assert [(epoch, kind) for _, epoch, kind in logged] == [(e, k) for e in range(4) for k in ("train", "epoch end")]
