"""Does padding GIN's bf16 sums to a multiple of ``ROW_MULTIPLE`` rows pay? Fine-tuning epoch after epoch.

oneDNN builds a bf16 kernel for every new row count and keeps 1,024; a fine-tuning run meets hundreds of atom counts
(``molssl.chem.nn.message_passing``). This runs whole epochs of GIN fine-tuning steps (the step of
``benchmarks/finetune_throughput.py``) in a fresh process per variant, padded (the default) and unpadded
(``ROW_MULTIPLE = 1``), the variants alternating ``--rounds`` times, and prints molecules/s per epoch and the
process's peak resident size. Compare the late epochs: by then every variant has met the batches' shapes once.

    OMP_NUM_THREADS=1 python benchmarks/bf16_row_padding.py --dataset bbbp --epochs 10 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def epochs_in_this_process(dataset: str, data_dir: str, epochs: int, batch_size: int, precision: str,
                           multiple: int) -> list[dict]:
    import torch

    import molssl.chem.nn.message_passing as message_passing
    from molssl.chem.data.labelled import load_dataset
    from molssl.chem.tasks.training import batches_for

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from finetune_throughput import ENCODERS, _objective, _step

    torch.set_num_threads(1)
    message_passing.ROW_MULTIPLE = multiple
    data = load_dataset(dataset, Path(data_dir), download=False, progress=False)
    objective, optimizer = _objective(data, ENCODERS["gin"])
    objective.train()
    source = batches_for(data, np.arange(len(data)), batch_size, True, 0, False)
    records = []
    for epoch in range(epochs):
        start, count = time.perf_counter(), 0
        for batch in source.batches(epoch):
            _step(objective, optimizer, batch, precision)
            count += batch.num_graphs
        records.append({"epoch": epoch, "per_s": count / (time.perf_counter() - start),
                        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="bbbp")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--late", type=int, default=4, help="the last epochs whose rates are summarized")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # ROW_MULTIPLE of a worker process
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(epochs_in_this_process(args.dataset, args.data_dir, args.epochs, args.batch_size,
                                                args.precision, args.child)))
        return
    from molssl.chem.nn.message_passing import ROW_MULTIPLE
    from molssl.core.precision import cpu_description

    print(f"{cpu_description()[0]}; {args.dataset}, GIN, {args.precision}, batch {args.batch_size}, "
          f"{args.epochs} epochs per process; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    late: dict[str, list[float]] = {"padded": [], "unpadded": []}
    for round_ in range(args.rounds):
        for name, multiple in (("padded", ROW_MULTIPLE), ("unpadded", 1)):
            command = [sys.executable, __file__, "--child", str(multiple), "--dataset", args.dataset, "--data-dir",
                       args.data_dir, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                       "--precision", args.precision]
            child = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # its stderr (an error) shows as is
            if child.returncode:
                sys.exit(child.returncode)
            records = json.loads(child.stdout)
            rates = [r["per_s"] for r in records]
            late[name] += rates[-args.late:]
            print(f"round {round_ + 1} {name:8s} molecules/s by epoch {[round(r) for r in rates]}, "
                  f"peak resident {records[-1]['peak_rss_mb']:.0f} MB", flush=True)
    padded, unpadded = np.median(late["padded"]), np.median(late["unpadded"])
    print(f"last {args.late} epochs, median molecules/s: padded {padded:.0f}, unpadded {unpadded:.0f} "
          f"(padded / unpadded {padded / unpadded:.2f})")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
