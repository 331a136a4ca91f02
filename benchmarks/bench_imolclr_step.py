"""Training-step cost of iMolCLR against MolCLR on the same pre-built batches (no RDKit in the loop).

Usage: python benchmarks/bench_imolclr_step.py --smiles FILE [--molecules 2048] [--batch 512] [--steps 5]
       [--rounds 3] [--precision fp32|bf16] [--device auto] [--threads N]

Builds the store of the first ``--molecules`` SMILES with the iMolCLR extras, then times forward +
backward + Adam for each objective over the same batches and prints molecules/s and the added cost
relative to MolCLR, by wall-clock and by process CPU time (the latter is the fairer figure on a
shared machine with ``--threads 1``). Rows are interleaved over ``--rounds`` passes; the fastest
pass of each is kept. Each row starts from seed 0 and fresh weights.
"""
from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.objectives import IMolCLR
from molssl.chem.nn.objectives import STORE_EXTRAS, MolCLR
from molssl.chem.data.store import open_corpus
from molssl.core.checkpoint import seed_everything
from molssl.core.device import autocast, move_to, resolve_device

ROWS = {
    "MolCLR": lambda enc, aug: MolCLR(enc, aug),
    "iMolCLR weighted only (lambda2=0)": lambda enc, aug: IMolCLR(enc, aug, lambda2=0.0),
    "iMolCLR fragments only (lambda1=0)": lambda enc, aug: IMolCLR(enc, aug, lambda1=0.0),
    "iMolCLR (default: 1 fragment/molecule)": lambda enc, aug: IMolCLR(enc, aug),
    "iMolCLR (all fragments)": lambda enc, aug: IMolCLR(enc, aug, max_fragments=0),
}


def _head(path: Path, n: int, out: Path) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        lines = [line for line in (next(handle, "") for _ in range(n + 1)) if line.strip()]
    if lines and lines[0].strip().lower() in ("smiles", "smiles,"):
        lines = lines[1:]
    target = out / "head.smi"
    target.write_text("".join(line.split(",")[0].strip() + "\n" for line in lines[:n]))
    return target


def _stepper(make, device, precision: str):
    """A function running one optimizer step of a fresh objective (seed 0) on a batch."""
    seed_everything(0)
    module = make(MolecularEncoder(EncoderConfig()), MolecularAugmentation()).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-4, weight_decay=1e-5)

    def step(batch):
        with autocast(device, precision):
            out = module(batch)
        loss = (out[0] if isinstance(out, tuple) else out).float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _seconds(step, batches, device) -> tuple[float, float]:
    """(wall, process CPU) seconds of one pass over ``batches``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", type=Path, required=True)
    parser.add_argument("--molecules", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="passes per objective; the fastest is kept")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        head = _head(args.smiles, args.molecules, Path(tmp))
        store = open_corpus(head, extras=STORE_EXTRAS["imolclr"], skip_invalid=True, workers=1,
                            cache_dir=args.cache_dir or Path(tmp) / "cache", progress=False)
        order = np.random.default_rng(0).permutation(len(store))
        batches = [move_to(store.gather(np.sort(order[i * args.batch:(i + 1) * args.batch])), device)
                   for i in range(min(args.steps, len(store) // args.batch))]
    if not batches:
        raise SystemExit(f"fewer than {args.batch} valid molecules: lower --batch or raise --molecules")
    atoms = sum(b.num_atoms for b in batches)
    fragment_atoms = sum(b.fragments.num_atoms for b in batches)
    print(f"device={device} threads={torch.get_num_threads()} precision={args.precision} batch={args.batch} "
          f"steps={len(batches)} molecules={args.smiles.name}[:{args.molecules}] "
          f"fragment atoms / molecule atoms = {fragment_atoms / atoms:.2f}")
    steppers = {name: _stepper(make, device, args.precision) for name, make in ROWS.items()}
    for step in steppers.values():
        step(batches[0])  # warm-up
    best = {name: (float("inf"), float("inf")) for name in ROWS}
    for _ in range(args.rounds):  # rows interleaved, best pass kept: the machine may be shared
        for name, step in steppers.items():
            wall, cpu = _seconds(step, batches, device)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    n = sum(b.num_graphs for b in batches)
    base_wall, base_cpu = best["MolCLR"]
    print(f"{'objective':40s} {'mol/s (wall)':>12s} {'added':>7s} {'mol/s (CPU time)':>16s} {'added':>7s}")
    for name, (wall, cpu) in best.items():
        print(f"{name:40s} {n / wall:12.1f} {wall / base_wall - 1:+7.1%} {n / cpu:16.1f} {cpu / base_cpu - 1:+7.1%}")

if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
