"""Pre-training throughput: the full step path against the compute floor, and featurization against RDKit.

Prints, in one run:
  (a) molecules/s of the full ``pretrain`` step path: batch slicing from the store, two augmented views,
      forward, NT-Xent, backward, Adam step (``Trainer.train_step`` on ``StoreBatches``, steps counted as
      ``Trainer.fit`` counts them, with its memory guard (freed memory kept for the next step, returned to
      the OS when the process has grown by 2 GiB: ``molssl.core.memory``);
  (b) the compute floor: the same model's forward + backward + loss + step on pre-built augmented batches;
  (c) their ratio;
  (d) the full step path of iMolCLR (store with fingerprints and fragments, default options) and its
      added cost over MolCLR's full path;
  (e) the GEMM limit measured in the same run: the GIN layers' matrix products (forward and backward) at
      the batch's own shapes, timed alone, and the molecules/s they would allow; each row's fraction of it;
  (e2) on CPU, the floor again with GIN's bias and ReLU unfused (``molssl.core.fused_linear`` off) and the gain;
  (e3) in fp32 on CPU, the floor again with GIN's layers run once per atom (``encoders.per_atom_first_product``)
      rather than once per atom kind and environment (``molssl.chem.nn.environments``), its fraction of the GEMM
      limit and the gain (the limit counts every atom's products; the default path runs fewer);
  rows (a)-(e3) of one precision are timed in ``--rounds`` interleaved rounds, each round timing every row once
  (``--steps`` steps, or one step's products for the limit), and each is the median over rounds, so both sides of
  a ratio see the same machine (until 2026-12-07 the rows ran one after the other and the limit was a best of 3);
  (f) with ``--molclr-repo``, the MolCLR reference implementation's rate on the same SMILES
      (``benchmarks/molclr_reference.py``) and our rates as multiples of it;
  and featurization molecules/s (store build, one and all processes) against RDKit ``MolFromSmiles``
  alone on the same SMILES (one and all processes), for the molclr and rich featurizers: the median of
  ``--featurize-repeats`` rounds, each round timing every one of these rows once, in turn.

Example:
  python benchmarks/pretrain_throughput.py --smiles ../shared/data/pretrain/moses_train.csv.gz \
      --batch-size 512 --steps 8 --rounds 3 --featurize 40000
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rdkit import Chem

from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import (EncoderConfig, MolecularEncoder, per_atom_first_product,
                                     takes_products_by_kind)
from molssl.chem.data.inputs import iter_smiles
from molssl.chem.nn.objectives import IMolCLR
from molssl.chem.nn.objectives import STORE_EXTRAS, MolCLR
from molssl.chem.data.sources import StoreBatches
from molssl.chem.data.store import build_store
from molssl.core.checkpoint import seed_everything
from molssl.core import fused_linear
from molssl.core.device import autocast, move_to, resolve_device
from molssl.core.losses import nt_xent
from molssl.core.memory import keep_freed_memory
from molssl.core.trainer import Trainer, TrainerConfig


def clock() -> float:
    """The timer every row uses: wall time, or this process's CPU time with ``--clock cpu``."""
    return CLOCK()


CLOCK = time.perf_counter


def first_smiles(path: Path, n: int) -> list[str]:
    out: list[str] = []
    for chunk in iter_smiles(path):
        out.extend(chunk.smiles)
        if len(out) >= n:
            break
    return out[:n]


def write_sample(smiles: list[str], folder: Path) -> Path:
    path = folder / "sample.smi.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(smiles) + "\n")
    return path


def _parse_all(smiles: list[str]) -> int:
    return sum(Chem.MolFromSmiles(s) is not None for s in smiles)


def rdkit_parse_rate(smiles: list[str], workers: int) -> float:
    start = clock()
    if workers == 1:
        _parse_all(smiles)
    else:
        parts = [smiles[i::workers] for i in range(workers)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_parse_all, parts)
    return len(smiles) / (clock() - start)


def featurize_rate(sample: Path, n: int, workers: int, folder: Path, featurizer: str = "molclr",
                   attempt: int = 0) -> float:
    start = clock()
    build_store(sample, workers=workers, cache_dir=folder / f"store-{featurizer}-{workers}-{attempt}", progress=False,
                featurizer=featurizer)
    return n / (clock() - start)


def interleaved_medians(rows: dict[str, Callable[[int], float]], repeats: int) -> dict:
    """The median over ``repeats`` rounds of each row (``rate(round)``), every round timing all rows in turn.

    A featurization row and the RDKit row it is divided by are then measured minutes apart at most, under the
    same conditions: on a shared 2-core AMD EPYC VM the machine's speed drifted by up to 20% between rows
    timed one after the other (RDKit's own 2-process rate ranged 18.4k-24.3k/s), which made a best-of-3
    ratio of two separately timed rows read 0.62 where interleaved rounds read 0.90. The median ignores
    one lucky or unlucky round.

    Each row's rounds are returned too, as ``<name>_rounds`` (rounded), so a reader can see the spread; each is
    also printed to stderr as it is measured, so a long run shows its progress (and a run stopped early its rows).
    """
    found: dict[str, list[float]] = {name: [] for name in rows}
    for attempt in range(repeats):
        for name, rate in rows.items():
            found[name].append(rate(attempt))
            print(f"round {attempt + 1}/{repeats}: {name} {found[name][-1]:,.1f}", file=sys.stderr, flush=True)
    medians: dict = {name: float(np.median(rates)) for name, rates in found.items()}
    return {**medians, **{f"{name}_rounds": [round(r, 1) for r in rates] for name, rates in found.items()}}


def timed_windows(step: Callable[[], int], device: torch.device, steps: int, warmup: int) -> Callable[[int], float]:
    """A row for :func:`interleaved_medians`: each call times ``steps`` more calls of ``step`` (which returns the
    molecules it trained on) and returns their molecules/s; the first call runs ``warmup`` untimed steps first."""
    warmed_up = False

    def window(_round: int) -> float:
        nonlocal warmed_up
        if not warmed_up:
            for _ in range(warmup):
                step()
            warmed_up = True
        synchronize(device)
        start = clock()
        count = sum(step() for _ in range(steps))
        synchronize(device)
        return count / (clock() - start)

    return window


def full_path_row(module: MolCLR, source: StoreBatches, device: torch.device, precision: str, steps: int,
                  warmup: int, out_dir: str) -> Callable[[int], float]:
    """Windows of one ``Trainer``'s ``train_step`` on the store's batches, epoch after epoch."""
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-4, weight_decay=1e-5)
    trainer = Trainer(module, optimizer, out_dir=out_dir, device=device,
                      config=TrainerConfig(precision=precision, progress=False))
    batches = itertools.chain.from_iterable(source.batches(epoch) for epoch in itertools.count())

    def step() -> int:
        batch = next(batches)
        trainer.train_step(batch)
        trainer.state.step += 1  # as Trainer.fit counts
        return batch.num_graphs

    return timed_windows(step, device, steps, warmup)


def floor_row(module: MolCLR, source: StoreBatches, device: torch.device, precision: str, steps: int,
              warmup: int, fused: bool = True, per_atom: bool = False) -> Callable[[int], float]:
    """Windows of forward + NT-Xent + backward + Adam on views built before any clock starts; ``fused=False``
    with GIN's bias and ReLU outside the products (``fused_linear.unfused``); ``per_atom=True`` with GIN's layers run
    once per atom (``encoders.per_atom_first_product``)."""
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-4, weight_decay=1e-5)
    views = itertools.cycle([(module.augmentation(b), module.augmentation(b))
                             for b in (move_to(batch, device) for batch in itertools.islice(source.batches(0), 4))])

    def step() -> int:
        v1, v2 = next(views)
        module.train()
        with (fused_linear.unfused() if not fused else contextlib.nullcontext(),
              per_atom_first_product() if per_atom else contextlib.nullcontext()):
            with autocast(device, precision):
                loss = nt_xent(module.encoder(v1)[1], module.encoder(v2)[1], module.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        return v1.num_graphs

    return timed_windows(step, device, steps, warmup)


def runs_by_kind(encoder: str, precision: str, device: torch.device) -> bool:
    """Whether the step runs GIN's layers over atom kinds and environments at this precision (fp32 on the CPU)."""
    return takes_products_by_kind(encoder, device, torch.float32 if precision == "fp32" else torch.bfloat16)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read afterwards counts it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_flops(n_atoms: int, dim: int, layers: int) -> int:
    """FLOPs of the GIN MLPs' matrix products in one step: per layer and view, forward [n,d]@[d,2d] and
    [n,2d]@[2d,d], backward the two input gradients and the two weight gradients of the same sizes (6 products,
    24 n d^2); a step has two views."""
    return 24 * n_atoms * dim * dim * layers * 2


def gemm_limit_row(n_atoms: int, dim: int, layers: int, precision: str, batch_size: int,
                   device: torch.device = torch.device("cpu")) -> Callable[[int], float]:
    """Windows of the GIN MLPs' matrix products alone, at a batch of ``n_atoms`` atoms: each call times one step's
    products and returns the molecules/s that rate would allow (the GEMM limit).

    Both weight gradients are timed as [d,n]@[n,2d], the layout the encoder computes them in
    (molssl.core.fused_linear: in fp32 MKL runs it ~10% faster than [2d,n]@[n,d], which this limit used until
    2026-12-06).
    """
    generator = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n_atoms, dim, generator=generator).to(dtype)
    b = torch.randn(n_atoms, 2 * dim, generator=generator).to(dtype)
    w1 = torch.randn(dim, 2 * dim, generator=generator).to(dtype)
    w2 = torch.randn(2 * dim, dim, generator=generator).to(dtype)
    a, b, w1, w2 = (t.to(device) for t in (a, b, w1, w2))

    def layer() -> None:
        a @ w1, b @ w2, b @ w2, a.t() @ b, a @ w1, a.t() @ b

    def window(_round: int) -> float:
        layer()
        synchronize(device)
        start = time.perf_counter()
        for _ in range(layers * 2):
            layer()
        synchronize(device)
        return batch_size / (time.perf_counter() - start)

    return window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smiles", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per training row and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the training rows and the GEMM limit (each figure is their median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--encoder", choices=["gin", "gcn"], default="gin")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--featurize", type=int, default=40000, help="SMILES used for the featurization rows")
    parser.add_argument("--featurize-repeats", type=int, default=5,
                        help="featurization and RDKit rows: the median of this many interleaved rounds")
    parser.add_argument("--featurize-only", action="store_true", help="only the featurization and RDKit rows")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--molclr-repo", type=Path, help="a copy of github.com/yuyangw/MolCLR: time its reference code")
    parser.add_argument("--featurizers", nargs="+", default=["molclr", "rich"])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time by this process's CPU time with one torch thread, for a machine shared "
                             "with other jobs (multi-process featurization rows are then skipped)")
    args = parser.parse_args()
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
        torch.set_num_threads(1)

    device = resolve_device(args.device)
    workers = (os.cpu_count() or 1) if args.clock == "wall" else 1
    n_molecules = max(args.featurize, args.batch_size * 4)
    from molssl.core.precision import cpu_description

    results: dict = {"machine": f"{cpu_description()[0]}, {workers} cores, torch "
                                f"{torch.__version__}, threads {torch.get_num_threads()}, device {device}",
                     "clock": args.clock, "batch_size": args.batch_size, "steps": args.steps,
                     "encoder": args.encoder}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        smiles = first_smiles(args.smiles, n_molecules)
        sample = write_sample(smiles, folder)
        results["featurize_molecules"] = len(smiles)
        results["featurize_repeats"] = args.featurize_repeats
        rows: dict[str, Callable[[int], float]] = {}
        for procs in sorted({1, workers}):
            rows[f"rdkit_parse_per_s_{procs}proc"] = lambda _attempt, procs=procs: rdkit_parse_rate(smiles, procs)
            for featurizer in args.featurizers:
                rows[f"featurize_{featurizer}_per_s_{procs}proc"] = (
                    lambda attempt, procs=procs, featurizer=featurizer:
                    featurize_rate(sample, len(smiles), procs, folder, featurizer, attempt))
        results.update(interleaved_medians(rows, args.featurize_repeats))
        for featurizer in args.featurizers:
            for procs in sorted({1, workers}):
                results[f"featurize_{featurizer}_vs_rdkit_{procs}proc"] = (
                    results[f"featurize_{featurizer}_per_s_{procs}proc"] / results[f"rdkit_parse_per_s_{procs}proc"])
        if args.featurize_only:
            print_results(results, args.json)
            return

        store = build_store(sample, workers=workers, cache_dir=folder / "store", progress=False)
        source = StoreBatches(store, np.arange(len(store)), args.batch_size, seed=0)
        imolclr_store = build_store(sample, workers=workers, extras=STORE_EXTRAS["imolclr"],
                                    cache_dir=folder / "store-imolclr", progress=False)
        imolclr_source = StoreBatches(imolclr_store, np.arange(len(imolclr_store)), args.batch_size, seed=0)
        mean_atoms = int(round(float(np.mean(np.diff(np.asarray(store.graphs.atom_ptr))))))
        results["atoms_per_molecule"] = mean_atoms
        keep_freed_memory()  # a training process's allocator settings for every training row, the GEMM limit too
        n_atoms = mean_atoms * args.batch_size
        for precision in args.precision:
            with tempfile.TemporaryDirectory() as out_dir:
                results.update(training_rows(args, precision, source, imolclr_source, n_atoms, device, out_dir))
            results[f"{precision}_gemm_gflops"] = (results[f"{precision}_gemm_limit_per_s"] / args.batch_size
                                                   * gemm_flops(n_atoms, 300, 5) / 1e9)
            full = results[f"{precision}_full_path_per_s"]
            floor = results[f"{precision}_compute_floor_per_s"]
            results[f"{precision}_full_over_floor"] = full / floor
            results[f"{precision}_full_over_gemm_limit"] = full / results[f"{precision}_gemm_limit_per_s"]
            results[f"{precision}_floor_over_gemm_limit"] = floor / results[f"{precision}_gemm_limit_per_s"]
            if runs_by_kind(args.encoder, precision, device):
                results[f"{precision}_floor_per_atom_over_gemm_limit"] = (
                    results[f"{precision}_floor_per_atom_per_s"] / results[f"{precision}_gemm_limit_per_s"])
                results[f"{precision}_floor_by_environment_gain"] = floor / results[f"{precision}_floor_per_atom_per_s"]
            if f"{precision}_floor_unfused_per_s" in results:
                results[f"{precision}_floor_fused_gain"] = floor / results[f"{precision}_floor_unfused_per_s"]
            results[f"{precision}_imolclr_added_cost"] = full / results[f"{precision}_imolclr_full_path_per_s"] - 1
        if args.molclr_repo is not None:
            from molclr_reference import reference_rate

            reference = reference_rate(args.molclr_repo, smiles[:args.batch_size * (args.steps + 2)], args.batch_size,
                                       min(args.steps, 5))
            results["molclr_reference_per_s"] = reference
            for precision in args.precision:
                results[f"{precision}_full_over_molclr_reference"] = results[f"{precision}_full_path_per_s"] / reference
    print_results(results, args.json)


def training_rows(args: argparse.Namespace, precision: str, source: StoreBatches, imolclr_source: StoreBatches,
                  n_atoms: int, device: torch.device, out_dir: str) -> dict:
    """The GEMM limit and every training row of one precision, timed in interleaved rounds (the median of
    ``--rounds``; each round times every row once, in turn), so that a ratio's two sides are measured under the same
    conditions: on a shared VM the machine's speed drifts by 10-30% within the hour."""

    def model(objective: type = MolCLR) -> MolCLR:
        seed_everything(0)
        return objective(MolecularEncoder(EncoderConfig(kind=args.encoder)), MolecularAugmentation()).to(device)

    steps, warmup = args.steps, args.warmup
    rows = {f"{precision}_gemm_limit_per_s": gemm_limit_row(n_atoms, 300, 5, precision, args.batch_size, device),
            f"{precision}_full_path_per_s": full_path_row(model(), source, device, precision, steps, warmup, out_dir),
            f"{precision}_compute_floor_per_s": floor_row(model(), source, device, precision, steps, warmup)}
    if fused_linear.kernel_present() and device.type == "cpu":  # what the fused layers gain on this CPU
        rows[f"{precision}_floor_unfused_per_s"] = floor_row(model(), source, device, precision, steps, warmup,
                                                             fused=False)
    if runs_by_kind(args.encoder, precision, device):  # what layers over atom kinds and environments gain
        rows[f"{precision}_floor_per_atom_per_s"] = floor_row(model(), source, device, precision, steps,
                                                                          warmup, per_atom=True)
    rows[f"{precision}_imolclr_full_path_per_s"] = full_path_row(model(IMolCLR), imolclr_source, device, precision,
                                                                 steps, warmup, out_dir)
    return interleaved_medians(rows, args.rounds)


def print_results(results: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        print(f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
