"""chemprop v2 (its own defaults) as a baseline on exactly the molecules and split of a molssl run.

The training, validation and test molecules are written to one CSV in that order with a chemprop
``--splits-file`` naming the three index ranges, ``chemprop train`` runs with its defaults (D-MPNN,
50 epochs, its own early checkpoint selection on the validation loss) and seeds from ours, and the
test predictions it writes (plus validation predictions from ``chemprop predict``) are scored with
molssl's metric code. chemprop is the optional ``bench`` extra (``pip install 'molssl[bench]'``);
it runs in a subprocess, so its imports (lightning) never load into molssl.

With ``resume``, a run stopped part-way (SIGTERM or Ctrl-C stop chemprop with it) continues from chemprop's
last finished epoch (:mod:`molssl.chem.tasks.chemprop_resumable`) when its input files are the same, and its
wall and CPU time are summed over the sessions (``spent.json``).
"""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from molssl.chem.data.labelled import LabelledData
from molssl.chem.data.splits import Split
from molssl.chem.tasks.metrics import score
from molssl.core.cputime import cpu_seconds
from molssl.core.stopping import stop_on_sigterm
from molssl.errors import MolsslError

SPENT = "spent.json"  # wall and CPU seconds of the run's sessions so far
# what molssl.chem.tasks.chemprop_resumable prints (it is not imported here: it loads lightning)
EPOCH = "molssl: chemprop epoch"  # a progress line
REFUSED, REFUSED_STATUS = "molssl: refused", 3  # a file of an earlier session refused, and the exit status
RELAY_SECONDS = 2.0  # how often chemprop's log is read for them


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


def _csv_text(smiles: Sequence[str], labels: np.ndarray, tasks: Sequence[str]) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["smiles", *tasks])
    for smi, row in zip(smiles, labels):
        writer.writerow([smi, *("" if np.isnan(v) else repr(float(v)) for v in row)])
    return text.getvalue()


def _read_predictions(path: Path, tasks: Sequence[str], n: int) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != n:
        raise MolsslError(f"chemprop wrote {len(rows)} predictions to {path}, expected {n}")
    return np.array([[float(r[t]) for t in tasks] for r in rows], dtype=np.float64)


def _spent(work: Path) -> tuple[float, float]:
    try:
        record = json.loads((work / SPENT).read_text())
        return float(record["seconds"]), float(record["cpu_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0, 0.0


def _relay(log_path: Path, offset: int, progress: Optional[Callable[[str], None]]) -> int:
    """Pass the epoch lines chemprop added to its log since ``offset`` to ``progress``; the new offset."""
    with open(log_path, "rb") as handle:
        handle.seek(offset)
        text = handle.read()
    complete = text[: text.rfind(b"\n") + 1]  # a line still being written waits for the next look
    for line in complete.decode("utf-8", errors="replace").splitlines():  # also at the progress bar's \r
        at = line.find(EPOCH)  # after a progress bar left unfinished on the same line, too
        if progress is not None and at >= 0:
            progress(line[at + len("molssl: "):])
    return offset + len(complete)


def _run(command: list[str], log_path: Path, threads: Optional[int],
         progress: Optional[Callable[[str], None]] = None) -> None:
    """Run ``command`` (chemprop) with its output in ``log_path`` and its epoch lines passed to ``progress``, adding
    its wall and CPU time to ``spent.json`` beside the log even when it is stopped; SIGTERM or Ctrl-C stop it too
    (it is never left running on its own)."""
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started, cpu_started = time.perf_counter(), cpu_seconds()
    offset = log_path.stat().st_size if log_path.is_file() else 0
    try:
        with open(log_path, "a", encoding="utf-8") as log, stop_on_sigterm():
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
            try:
                while process.poll() is None:
                    try:
                        process.wait(timeout=RELAY_SECONDS)
                    except subprocess.TimeoutExpired:
                        pass
                    offset = _relay(log_path, offset, progress)
            except BaseException:
                process.kill()
                raise
            finally:
                process.wait()
    finally:
        seconds, cpu = _spent(log_path.parent)
        (log_path.parent / SPENT).write_text(json.dumps({
            "seconds": seconds + time.perf_counter() - started, "cpu_seconds": cpu + cpu_seconds() - cpu_started}))
    if process.returncode == REFUSED_STATUS:
        reason = log_path.read_text(encoding="utf-8", errors="replace").rpartition(REFUSED)[2].strip()
        raise MolsslError(f"chemprop was not resumed: {reason}; delete {log_path.parent} to train it again")
    if process.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise MolsslError(f"chemprop failed (exit {process.returncode}); see {log_path}: {' | '.join(tail)}")


def _same_inputs(work: Path, inputs: dict[str, str]) -> bool:
    try:
        return all((work / name).read_bytes() == text.encode("utf-8") for name, text in inputs.items())
    except OSError:
        return False


def run_chemprop(data: LabelledData, task_index: list[int], split: Split, seed: int, out_dir: Path,
                 epochs: Optional[int] = None, threads: Optional[int] = 1, resume: bool = False,
                 progress: Optional[Callable[[str], None]] = None) -> dict:
    """Train chemprop on ``split`` of ``data`` (targets ``task_index``): valid/test scores, test predictions,
    the trained model's path (``model_path``, for :func:`chemprop_predict`) and the wall and CPU seconds spent
    in earlier sessions (``earlier_seconds``, ``earlier_cpu_seconds``; 0 unless ``resume`` continued a run).

    ``epochs`` None keeps chemprop's default (50). Work files and chemprop's log go to ``out_dir/chemprop``;
    ``resume`` continues the run found there when it was started on the same molecules, split and settings (a
    finished one is reused as it is);
    ``progress`` gets a line per finished epoch (``chemprop epoch 3/50: val_loss 0.4312``).
    """
    work = Path(out_dir) / "chemprop"
    tasks = [data.tasks[j] for j in task_index]
    order = np.concatenate([split.train, split.valid, split.test])
    labels = data.labels[np.ix_(order, task_index)]
    smiles = data.store.smiles(order)
    a, b = split.train.size, split.train.size + split.valid.size
    task_type = "classification" if data.task_type == "classification" else "regression"
    args = ["--data-path", str(work / "data.csv"), "-s", "smiles", "--target-columns", *tasks,
            "--task-type", task_type, "--splits-file", str(work / "splits.json"), "--output-dir", str(work / "out"),
            "--data-seed", str(seed), "--pytorch-seed", str(seed), "-n", "0", "--accelerator", "cpu", "--devices", "1"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    inputs = {"data.csv": _csv_text(smiles, labels, tasks), "args.json": json.dumps(args),
              "splits.json": json.dumps([{"train": list(range(a)), "val": list(range(a, b)),
                                          "test": list(range(b, len(order)))}])}
    model_dir = work / "out" / "model_0"
    finished = False
    if resume and _same_inputs(work, inputs):
        earlier = _spent(work)
        finished = all((model_dir / name).is_file() for name in ("test_predictions.csv", "best.pt"))
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        for name, text in inputs.items():
            (work / name).write_text(text, encoding="utf-8", newline="")
        earlier = (0.0, 0.0)
    # a finished run is not trained again (its last.ckpt is its last best epoch, so resuming would repeat the epochs
    # after it and change the model): the earlier session's files are only checked before chemprop reads best.pt
    check = ["--check-only"] if finished else []
    _run([sys.executable, "-m", "molssl.chem.tasks.chemprop_resumable", *check, *args], work / "chemprop.log", threads,
         progress)
    test = _read_predictions(model_dir / "test_predictions.csv", tasks, len(split.test))
    valid = chemprop_predict(model_dir / "best.pt", smiles[a:b], tasks, work, "valid", threads)
    return {"valid": score(data.metric, labels[a:b], valid), "test": score(data.metric, labels[b:], test),
            "test_predictions": test, "model_path": str(model_dir / "best.pt"),
            "earlier_seconds": earlier[0], "earlier_cpu_seconds": earlier[1]}


def chemprop_predict(model_path: Path, smiles: Sequence[str], tasks: Sequence[str], work: Path, name: str,
                     threads: Optional[int] = 1) -> np.ndarray:
    """(n, tasks) predictions of a trained chemprop model for ``smiles`` (work files ``work/<name>*.csv``);
    ``tasks`` are the target names it was trained on (chemprop names its output columns after them)."""
    (work / f"{name}.csv").write_text(_csv_text(smiles, np.empty((len(smiles), 0)), []), encoding="utf-8",
                                             newline="")
    _run(_command() + ["predict", "-i", str(work / f"{name}.csv"), "--model-paths", str(model_path),
          "-o", str(work / f"{name}_predictions.csv"), "-n", "0", "--accelerator", "cpu", "--devices", "1"],
         work / "chemprop.log", threads)
    return _read_predictions(work / f"{name}_predictions.csv", tasks, len(smiles))
