"""`molssl predict` throughput and memory on MOSES SMILES: the whole command vs the model's forward floor.

- forward floor: ``PropertyEnsemble.predict_batch`` (every member, mean and spread) on batches built
  before the clock starts: no reading, parsing, featurizing, domain checks or writing;
- the command: ``molssl predict -m MODEL -i - -o OUT.csv`` as a subprocess, its stdin fed with the first
  N rows of the MOSES file (read in place from the .csv.gz, never copied), timed from start to exit;
  its peak resident memory (ru_maxrss) measured per run in a fresh wrapper process;
- applicability-domain cost: the same command with ``--no-domain``.

Example (run from the repository root; MODEL a run directory whose model files carry the domain data,
e.g. from ``benchmarks/uncertainty_domain.py --save-models``):

    PYTHONPATH=. python benchmarks/predict_throughput.py --moses ../shared/data/pretrain/moses_train.csv.gz \
        --model /tmp/records/esol --sizes 100000 250000 --ad-size 10000 --json /tmp/predict_throughput.json
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

import torch

# the child runs molssl and reports its own peak RSS (kB) and wall time on its last stderr line
WRAPPER = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
           "rc = subprocess.run(sys.argv[1:]).returncode; "
           "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, rc, "
           "file=sys.stderr)")


def moses_lines(path: str, n: int):
    """The header and the first ``n`` data rows of the (gzipped) MOSES CSV, as text lines."""
    with gzip.open(path, "rt") as handle:
        yield from islice(handle, n + 1)


def forward_floor(model: str, path: str, n: int, batch_size: int, repeats: int) -> float:
    from molssl.chem.data.sources import SmilesBatches
    from molssl.chem.serve.ensemble import load_ensemble

    ensemble = load_ensemble(model)
    smiles = [line.split(",")[0].strip() for line in islice(moses_lines(path, n), 1, None)]
    batches = [batch for _, batch in SmilesBatches(smiles, batch_size, progress=False, featurizer=ensemble.featurizer,
                                                   features=ensemble.features)]
    count = sum(b.num_graphs for b in batches)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            ensemble.predict_batch(batch)
        best = max(best, count / (time.perf_counter() - started))
    return best


def run_command(model: str, path: str, n: int, extra: list[str], out_dir: Path) -> dict:
    """Wall time, peak RSS and rate of one `molssl predict` run on the first ``n`` MOSES rows."""
    output = out_dir / f"preds_{n}_{len(extra)}.csv"
    command = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "molssl", "predict", "-m", model, "-i", "-",
               "-o", str(output), *extra]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

    def feed() -> None:
        for line in moses_lines(path, n):
            process.stdin.write(line)
        process.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    stderr = process.stderr.read()
    process.wait()
    writer.join()
    peak = [line.split() for line in stderr.splitlines() if line.startswith("PEAK ")][-1]
    if peak[3] != "0":
        raise RuntimeError(f"molssl predict failed:\n{stderr[-2000:]}")
    rows = sum(1 for _ in open(output)) - 1
    output.unlink()
    seconds = float(peak[2])
    return {"molecules": n, "rows_written": rows, "seconds": round(seconds, 1), "molecules_per_s": round(n / seconds, 1),
            "peak_rss_mb": round(int(peak[1]) / 1024, 1), "options": extra}


def machine() -> dict:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    return {"cpu": model, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": os.getloadavg(), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moses", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--ad-size", type=int, default=10_000, help="molecules for the with/without domain runs")
    parser.add_argument("--floor-size", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"machine_start": machine(), "command": " ".join(sys.argv)}
    results["forward_floor_per_s"] = round(forward_floor(args.model, args.moses, args.floor_size, args.batch_size,
                                                         args.repeats), 1)
    print(json.dumps(results), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        runs = []
        if args.ad_size:
            for extra in ([], ["--no-domain"]):
                runs.append(run_command(args.model, args.moses, args.ad_size, extra, Path(folder)))
                print(json.dumps(runs[-1]), flush=True)
        for n in args.sizes:
            runs.append(run_command(args.model, args.moses, n, [], Path(folder)))
            print(json.dumps(runs[-1]), flush=True)
    results["runs"] = runs
    results["forward_floor_end_per_s"] = round(forward_floor(args.model, args.moses, args.floor_size, args.batch_size,
                                                             args.repeats), 1)  # the machine may be shared
    results["machine_end"] = machine()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
