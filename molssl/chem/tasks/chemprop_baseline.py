"""chemprop v2 (its own defaults) as a baseline on exactly the molecules and split of a molssl run.

The training, validation and test molecules are written to one CSV in that order with a chemprop
``--splits-file`` naming the three index ranges, ``chemprop train`` runs with its defaults (D-MPNN,
50 epochs, its own early checkpoint selection on the validation loss) and seeds from ours, and the
test predictions it writes (plus validation predictions from ``chemprop predict``) are scored with
molssl's metric code. chemprop is the optional ``bench`` extra (``pip install 'molssl[bench]'``);
it runs in a subprocess, so its imports (lightning) never load into molssl.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from molssl.chem.data.labelled import LabelledData
from molssl.chem.data.splits import Split
from molssl.chem.tasks.metrics import score
from molssl.errors import MolsslError


def chemprop_available() -> bool:
    return importlib.util.find_spec("chemprop") is not None


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("chemprop")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("chemprop")
    if found is None:
        raise MolsslError("chemprop is not installed; install the benchmark extra: pip install 'molssl[bench]'")
    return [found]


def _write_csv(path: Path, smiles: Sequence[str], labels: np.ndarray, tasks: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", *tasks])
        for text, row in zip(smiles, labels):
            writer.writerow([text, *("" if np.isnan(v) else repr(float(v)) for v in row)])


def _read_predictions(path: Path, tasks: Sequence[str], n: int) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != n:
        raise MolsslError(f"chemprop wrote {len(rows)} predictions to {path}, expected {n}")
    return np.array([[float(r[t]) for t in tasks] for r in rows], dtype=np.float64)


def _run(args: list[str], log_path: Path, threads: Optional[int]) -> None:
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log_path, "a", encoding="utf-8") as log:
        done = subprocess.run(_command() + args, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise MolsslError(f"chemprop failed (exit {done.returncode}); see {log_path}: {' | '.join(tail)}")


def run_chemprop(data: LabelledData, task_index: list[int], split: Split, seed: int, out_dir: Path,
                 epochs: Optional[int] = None, threads: Optional[int] = 1) -> dict:
    """Train chemprop on ``split`` of ``data`` (targets ``task_index``): valid/test scores, test predictions
    and the trained model's path (``model_path``, for :func:`chemprop_predict`).

    ``epochs`` None keeps chemprop's default (50). Work files and chemprop's log go to ``out_dir/chemprop``.
    """
    work = Path(out_dir) / "chemprop"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tasks = [data.tasks[j] for j in task_index]
    order = np.concatenate([split.train, split.valid, split.test])
    labels = data.labels[np.ix_(order, task_index)]
    smiles = data.store.smiles(order)
    _write_csv(work / "data.csv", smiles, labels, tasks)
    a, b = split.train.size, split.train.size + split.valid.size
    (work / "splits.json").write_text(json.dumps([{"train": list(range(a)), "val": list(range(a, b)),
                                                   "test": list(range(b, len(order)))}]))
    task_type = "classification" if data.task_type == "classification" else "regression"
    args = ["train", "--data-path", str(work / "data.csv"), "-s", "smiles", "--target-columns", *tasks,
            "--task-type", task_type, "--splits-file", str(work / "splits.json"), "--output-dir", str(work / "out"),
            "--data-seed", str(seed), "--pytorch-seed", str(seed), "-n", "0", "--accelerator", "cpu", "--devices", "1"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    _run(args, work / "chemprop.log", threads)
    model_dir = work / "out" / "model_0"
    test = _read_predictions(model_dir / "test_predictions.csv", tasks, len(split.test))
    valid = chemprop_predict(model_dir / "best.pt", smiles[a:b], tasks, work, "valid", threads)
    return {"valid": score(data.metric, labels[a:b], valid), "test": score(data.metric, labels[b:], test),
            "test_predictions": test, "model_path": str(model_dir / "best.pt")}


def chemprop_predict(model_path: Path, smiles: Sequence[str], tasks: Sequence[str], work: Path, name: str,
                     threads: Optional[int] = 1) -> np.ndarray:
    """(n, tasks) predictions of a trained chemprop model for ``smiles`` (work files ``work/<name>*.csv``);
    ``tasks`` are the target names it was trained on (chemprop names its output columns after them)."""
    _write_csv(work / f"{name}.csv", smiles, np.empty((len(smiles), 0)), [])
    _run(["predict", "-i", str(work / f"{name}.csv"), "--model-paths", str(model_path),
          "-o", str(work / f"{name}_predictions.csv"), "-n", "0", "--accelerator", "cpu", "--devices", "1"],
         work / "chemprop.log", threads)
    return _read_predictions(work / f"{name}_predictions.csv", tasks, len(smiles))
