"""Cost of checking a cached store on open (sizes + blake2b of every file, offsets and counts) against its users.

The check runs every time a store is opened, so it must stay small next to the work it guards (target: under
10% of the cheapest cached command). Since `molssl predict` and `molssl fingerprint` stream their input (no
store, so no check), the stores' users are pre-training and fine-tuning. Steps: write ``--n`` rows, build
their store (the featurization the cache saves), then time

- opening the store with the check (``MoleculeStore(folder)``) and without it (``verify=False``), best of 5;
- one pass over every molecule as training batches (gather + collate, no model): the floor of any use;
- ``molssl pretrain --max-steps 1`` on the cached store, whole command (start-up, one step, checkpoint and
  encoder written): the cheapest cached command, best of ``--repeats``.

The result is appended to ``--report`` with the command, CPU model (lscpu), date and load (uptime). Example:

    OMP_NUM_THREADS=1 python benchmarks/store_integrity.py --smiles ../shared/data/pretrain/moses_train.csv.gz
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path


def write_rows(source: str, n: int, path: Path) -> None:
    from molssl.chem.data.inputs import iter_smiles

    smiles = [s for chunk in islice(iter_smiles(source), -(-n // 4096)) for s in chunk.smiles][:n]
    smiles = (smiles * -(-n // len(smiles)))[:n]
    path.write_text("\n".join(smiles) + "\n")


def best(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def batch_pass(folder: Path) -> None:
    import numpy as np

    from molssl.chem.data.sources import StoreBatches
    from molssl.chem.data.store import MoleculeStore

    store = MoleculeStore(folder, verify=False)
    for _ in StoreBatches(store, np.arange(len(store)), 512, shuffle=False, drop_last=False, rank=0,
                          world_size=1).batches(0):
        pass


def cached_pretrain(rows: Path, cache: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "molssl", "pretrain", "--smiles", str(rows), "--out", str(out),
                    "--cache-dir", str(cache), "--max-steps", "1", "--workers", "1", "--precision", "fp32",
                    "--device", "cpu"], check=True, capture_output=True)
    for path in out.iterdir():
        path.unlink()


def machine() -> tuple[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if line.startswith("Model name")), "unknown CPU")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return cpu, load.split("load average:")[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", default="../shared/data/pretrain/moses_train.csv.gz")
    parser.add_argument("--n", type=int, default=25_000, help="molecules in the store")
    parser.add_argument("--repeats", type=int, default=2, help="runs of the cached command (the best is kept)")
    parser.add_argument("--report", default="benchmarks/results/store_integrity.md")
    args = parser.parse_args()

    from molssl.chem.data.store import MoleculeStore, build_store

    cpu, load_before = machine()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows, cache, out = tmp / "rows.smi", tmp / "cache", tmp / "run"
        write_rows(args.smiles, args.n, rows)
        started = time.perf_counter()
        folder = build_store(rows, cache_dir=cache, workers=1, progress=False).folder
        featurize = time.perf_counter() - started
        store_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        checked = best(lambda: MoleculeStore(folder), 5)
        unchecked = best(lambda: MoleculeStore(folder, verify=False), 5)
        floor = best(lambda: batch_pass(folder), 2)
        command = best(lambda: cached_pretrain(rows, cache, out), args.repeats)
    check = checked - unchecked
    _cpu, load_after = machine()
    run = " ".join(["OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "(unset)"), "python",
                    "benchmarks/store_integrity.py", *sys.argv[1:]])
    lines = [
        f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu}",
        "",
        f"Command: `{run}`. Load average before / after: {load_before} / {load_after}.",
        "",
        "| what | time | check as a share |",
        "|---|---:|---:|",
        f"| the check itself ({args.n:,} molecules, store {store_mb:.1f} MB) | {1e3 * check:.1f} ms "
        f"({store_mb / max(check, 1e-9):.0f} MB/s) | - |",
        f"| featurizing the store (what the cache saves; 1 process) | {featurize:.1f} s | "
        f"{100 * check / featurize:.2f}% |",
        f"| one pass of training batches from the store (no model) | {floor:.2f} s | {100 * check / floor:.1f}% |",
        f"| **`molssl pretrain --max-steps 1` on the cached store, whole command** | {command:.1f} s | "
        f"**{100 * check / command:.2f}%** (target < 10%) |",
        "",
    ]
    report = Path(args.report)
    if not report.exists():
        report.write_text("# Store integrity check: cost\n\nWhat is timed and why: the docstring of "
                          "`benchmarks/store_integrity.py`.\n\n")
    with open(report, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
