"""chemprop as a baseline: trained on exactly our split, stopped with molssl by SIGTERM, continued by ``--resume``
from its last finished epoch with the time already spent counted, its checkpoint read without running code."""
from __future__ import annotations

import csv
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rdkit import Chem

from molssl.chem.tasks import chemprop_baseline
from molssl.chem.tasks.chemprop_baseline import SPENT, chemprop_available

pytestmark = pytest.mark.skipif(not chemprop_available(), reason="the bench extra (chemprop) is not installed")


def _epochs(model_dir: Path) -> list[list[int]]:
    """The epochs each chemprop session logged (one Lightning log version per session), in order."""
    sessions = []
    for log in sorted(model_dir.glob("trainer_logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])):
        with open(log, newline="") as handle:
            sessions.append(sorted({int(row["epoch"]) for row in csv.DictReader(handle)}))
    return sessions


@pytest.fixture
def bbbp_csv(tmp_path, shared_data):
    """120 BBBP molecules: chemprop's 50 epochs on them take long enough to stop it part-way."""
    path = tmp_path / "bbbp.csv"
    with gzip.open(shared_data / "moleculenet" / "BBBP.csv.gz", "rt", newline="") as source, open(path, "w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["smiles", "p_np"])
        kept = 0
        for row in csv.DictReader(source):
            if kept < 120 and Chem.MolFromSmiles(row["smiles"]) is not None:
                writer.writerow([row["smiles"], row["p_np"]])
                kept += 1
    return path


def test_a_stopped_run_continues_from_its_last_epoch(tmp_path, bbbp_csv):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "molssl", "finetune", "--csv", str(bbbp_csv), "--targets", "p_np",
               "--task", "classification", "--method", "chemprop", "--split", "random", "--out", str(out),
               "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    work = out / "seed_0" / "chemprop"
    model_dir = work / "out" / "model_0"
    first = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not (model_dir / "checkpoints" / "last.ckpt").is_file():  # chemprop finished an epoch
        assert first.poll() is None, first.stdout.read().decode()
        assert time.monotonic() < deadline, "chemprop wrote no checkpoint in 4 minutes"
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 128 + signal.SIGTERM
    assert not (out / "seed_0" / "result.json").exists()  # stopped part-way, not finished
    log_size = (work / "chemprop.log").stat().st_size
    time.sleep(1.0)
    assert (work / "chemprop.log").stat().st_size == log_size  # chemprop stopped with molssl, not left running
    stopped_at = _epochs(model_dir)[-1][-1]
    assert stopped_at < 49
    spent = json.loads((work / SPENT).read_text())
    assert spent["cpu_seconds"] > 0 and spent["seconds"] > 0

    second = subprocess.run(command + ["--resume"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "molssl: continuing chemprop from" in (work / "chemprop.log").read_text()
    sessions = _epochs(model_dir)
    assert sessions[0][0] == 0 and sessions[-1][0] > 0  # the second session did not start over
    assert sessions[-1][0] <= stopped_at + 1
    shown = re.findall(r"bbbp/all seed 0: chemprop epoch (\d+)/50: val_loss \d", second.stdout + second.stderr)
    assert shown and int(shown[0]) == sessions[-1][0] + 1 and int(shown[-1]) == sessions[-1][-1] + 1  # progress
    result = json.loads((out / "seed_0" / "result.json").read_text())
    assert result["cpu_seconds"] > spent["cpu_seconds"]  # the stopped session's time counts
    split = json.loads((out / "seed_0" / "split.json").read_text())
    chemprop_split = json.loads((work / "splits.json").read_text())[0]
    assert [len(chemprop_split[k]) for k in ("train", "val", "test")] == [len(split[k]) for k in ("train", "valid", "test")]
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "chemprop" and 0.0 <= results["mean"] <= 1.0 and 0.0 <= results["valid_mean"] <= 1.0


def test_checkpoint_that_names_a_function_is_refused(tmp_path):
    from molssl.chem.tasks.chemprop_resumable import CheckpointRefused, allowed_classes

    path = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": {"hook": os.system}}, path)
    with pytest.raises(CheckpointRefused, match="system"):
        allowed_classes(path)
    from chemprop.nn.utils import get_activation_function  # inside chemprop.nn, but a function

    torch.save({"hyper_parameters": {"hook": get_activation_function}}, path)
    with pytest.raises(CheckpointRefused, match="not a class"):
        allowed_classes(path)


def test_checkpoint_of_chemprop_layers_is_allowed(tmp_path):
    from lightning.fabric.utilities.data import AttributeDict

    from molssl.chem.tasks.chemprop_resumable import allowed_classes

    path = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": AttributeDict(activation=torch.nn.ReLU())}, path)
    allowed = allowed_classes(path)
    assert torch.nn.ReLU in allowed and (dict, "lightning.fabric.utilities.data.AttributeDict") in allowed
    with torch.serialization.safe_globals(allowed):
        loaded = torch.load(path, weights_only=True)
    assert isinstance(loaded["hyper_parameters"]["activation"], torch.nn.ReLU)


def test_progress_lines_are_the_ones_the_baseline_relays():
    from molssl.chem.tasks import chemprop_resumable

    assert chemprop_resumable.EPOCH == chemprop_baseline.EPOCH  # two modules: lightning stays out of molssl's own
    assert (chemprop_resumable.REFUSED, chemprop_resumable.REFUSED_STATUS) == (chemprop_baseline.REFUSED,
                                                                               chemprop_baseline.REFUSED_STATUS)


def test_a_tampered_folder_is_refused_before_chemprop_reads_it(tmp_path):
    """chemprop loads its best checkpoint and best.pt with a full unpickler: every file is checked first."""
    from molssl.chem.tasks.chemprop_resumable import REFUSED, REFUSED_STATUS

    model_dir = tmp_path / "out" / "model_0"
    model_dir.mkdir(parents=True)
    torch.save({"hyper_parameters": {"hook": os.system}}, model_dir / "best.pt")
    done = subprocess.run([sys.executable, "-m", "molssl.chem.tasks.chemprop_resumable", "--output-dir",
                           str(tmp_path / "out"), "--data-path", "missing.csv"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == REFUSED_STATUS
    assert f"{REFUSED} {model_dir / 'best.pt'} names posix.system" in done.stdout


def test_an_attribute_path_through_an_allowed_module_is_refused(tmp_path, monkeypatch):
    """``torch.nn.modules.module.os.system`` starts like a torch.nn module but reaches os.system through it."""
    from molssl.chem.tasks.chemprop_resumable import CheckpointRefused, allowed_classes

    for name in ("torch.nn.modules.module.os.system", "torch.nn.modules.module.torch.load",
                 "torch.nn.modules.activation.Tensor"):  # a class, but defined elsewhere
        monkeypatch.setattr(torch.serialization, "get_unsafe_globals_in_checkpoint", lambda path, name=name: [name])
        with pytest.raises(CheckpointRefused, match="not"):
            allowed_classes(tmp_path / "last.ckpt")


def test_a_damaged_checkpoint_is_refused_not_a_traceback(tmp_path):
    from molssl.chem.tasks.chemprop_resumable import CheckpointRefused, check_folder

    good = tmp_path / "model_0" / "checkpoints" / "best.ckpt"
    good.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, good)
    check_folder(tmp_path)  # a plain checkpoint passes
    (good.parent / "last.ckpt").write_bytes(good.read_bytes()[:100])  # killed while saving
    with pytest.raises(CheckpointRefused, match="last.ckpt is not a readable checkpoint"):
        check_folder(tmp_path)


def test_a_finished_run_is_reused_not_trained_again(tmp_path, bbbp_csv):
    """chemprop's last.ckpt is its last *best* epoch: resuming a finished run from it would repeat the later epochs
    and change the model. A finished run with the same inputs is only checked, and gives the same predictions."""
    from molssl.chem.data.labelled import load_labelled
    from molssl.chem.data.splits import random_split

    data = load_labelled(csv=str(bbbp_csv), smiles_column="smiles", targets=["p_np"], task="classification",
                         cache_dir=str(tmp_path / "cache"), progress=False)
    split = random_split(len(data.rows), seed=0)
    first = chemprop_baseline.run_chemprop(data, [0], split, 0, tmp_path / "run", epochs=3, resume=True)
    log = tmp_path / "run" / "chemprop" / "chemprop.log"
    trained = log.read_text().count("molssl: chemprop epoch")
    again = chemprop_baseline.run_chemprop(data, [0], split, 0, tmp_path / "run", epochs=3, resume=True)
    assert trained == 3 and log.read_text().count("molssl: chemprop epoch") == trained  # no epoch trained again
    assert "molssl: continuing chemprop from" not in log.read_text()
    assert (again["test_predictions"] == first["test_predictions"]).all() and again["test"] == first["test"]
    assert again["earlier_cpu_seconds"] > 0  # the first session's time is still counted
