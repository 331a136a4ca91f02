"""Pre-training throughput with 1 and 2 DDP processes (torchrun, Gloo on CPU or NCCL on GPUs).

Each configuration is a real ``torchrun --nproc_per_node=N`` launch of this script, whose workers
call :func:`molssl.chem.tasks.pretrain.pretrain` (what ``molssl pretrain`` runs) on the bundled demo
molecules repeated to ``--molecules``. The figure is rank 0's molecules/s (all ranks' molecules per
second of wall time), median of the logged windows after the first: start-up, featurization and
the first steps are left out. CPU threads are split evenly between the processes.

    python benchmarks/distributed_scaling.py                      # 1x64 (all cores), 1x64 (1 thread), 2x32, 2x64 on CPU
    python benchmarks/distributed_scaling.py --device cuda --runs 1x512 2x256 2x512
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data" / "demo_smiles.smi"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(nproc: int, batch: int, threads: int, args: argparse.Namespace, corpus: Path, work: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"{nproc}x{batch}-", dir=work))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    config = {"smiles": str(corpus), "out": str(out), "batch_size": batch, "max_steps": args.steps,
              "encoder": {"num_layers": args.layers, "emb_dim": args.emb_dim}, "device": args.device,
              "precision": args.precision, "valid_fraction": 0.0, "checkpoint_every": 10 * args.steps,
              "workers": 1, "cache_dir": str(work / "cache"), "seed": 0, "progress": False, "log_every": 10}
    config_path = out / "bench.json"
    config_path.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", __file__, "--worker", str(config_path)]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["mol_per_s"] for r in records if "mol_per_s" in r][1:]  # the first window holds warm-up
    losses = [r["loss"] for r in records if "loss" in r]
    return {"nproc": nproc, "batch": batch, "global_batch": nproc * batch, "threads": threads,
            "mol_per_s": statistics.median(rates), "windows": len(rates), "wall_s": wall, "last_loss": losses[-1]}


def worker(config_path: str) -> None:
    """One torchrun process: the same pre-training function the CLI calls."""
    from molssl.chem.nn.encoders import EncoderConfig
    from molssl.chem.tasks.pretrain import PretrainConfig, pretrain

    config = json.loads(Path(config_path).read_text())
    config["encoder"] = EncoderConfig(**config["encoder"])
    pretrain(PretrainConfig(**config), log=lambda _msg: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--runs", nargs="+", default=["1x64", "1x64:1", "2x32", "2x64"],
                        help="processes x per-process batch[:threads per process], e.g. 1x128 2x64; "
                             "threads default to the cores divided by the processes")
    parser.add_argument("--repeat", type=int, default=1, help="run the whole list this many times, interleaved")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run (logged every 10)")
    parser.add_argument("--molecules", type=int, default=8192, help="corpus size (demo molecules repeated)")
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--emb-dim", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    if args.steps < 20:
        parser.error("--steps must be at least 20 (two logged windows; the first is dropped)")
    cores = os.cpu_count() or 1
    plan = []
    for spec in args.runs:
        shape, _, threads = spec.partition(":")
        nproc, batch = (int(v) for v in shape.split("x"))
        plan.append((nproc, batch, int(threads) if threads else max(1, cores // nproc)))

    with tempfile.TemporaryDirectory(prefix="molssl-ddp-bench-") as tmp:
        work = Path(tmp)
        smiles = [line for line in DEMO.read_text().splitlines() if line.strip()]
        corpus = work / "corpus.smi"
        corpus.write_text("\n".join(smiles[i % len(smiles)] for i in range(args.molecules)) + "\n")
        results = [run(*shape, args, corpus, work) for _ in range(args.repeat) for shape in plan]

    single = [r["mol_per_s"] for r in results if r["nproc"] == 1]
    base = max(single) if single else results[0]["mol_per_s"]
    print(f"GIN {args.layers}x{args.emb_dim}, {args.device} {args.precision}, {args.steps} steps, "
          f"{cores} CPU cores; figures in run order")
    print("| processes x batch | global batch | threads/process | molecules/s | vs best 1-process run | run wall s | last loss |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['nproc']} x {r['batch']} | {r['global_batch']} | {r['threads']} | {r['mol_per_s']:.0f} "
              f"| {r['mol_per_s'] / base:.2f}x | {r['wall_s']:.0f} | {r['last_loss']:.3f} |")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
