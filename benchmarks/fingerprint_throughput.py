"""Learned-fingerprint throughput: `fingerprint()` end to end vs the encoder's forward-only floor vs RDKit Morgan.

- forward floor: ``encoder.represent`` on batches built before the clock starts (no parsing, no batching);
- fingerprint(): SMILES in, array out (RDKit parsing, featurization, batching, forward), with 1 or more
  featurization processes (``--workers``; 2+ overlaps featurizing the next chunk with the forward pass);
- RDKit Morgan: parse + 2048-bit radius-2 Morgan fingerprint per molecule, as a numpy array.

Each figure is the best of ``--repeats`` interleaved runs (the machine may be shared). Example:

    python benchmarks/fingerprint_throughput.py --smiles ../shared/data/pretrain/moses_train.csv.gz --n 4000
"""
from __future__ import annotations

import argparse
import time
from itertools import islice

import numpy as np
import torch


def read_smiles(path: str, n: int) -> list[str]:
    from molssl.chem.data.inputs import iter_smiles

    return [s for chunk in islice(iter_smiles(path), -(-n // 4096)) for s in chunk.smiles][:n]


def forward_floor(encoder, smiles: list[str], batch_size: int) -> float:
    from molssl.chem.serve.predict import SmilesBatches

    batches = [batch for _, batch in SmilesBatches(smiles, batch_size, progress=False)]
    n = sum(b.num_graphs for b in batches)
    started = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            encoder.represent(batch)
    return n / (time.perf_counter() - started)


def end_to_end(encoder, smiles: list[str], batch_size: int, workers: int) -> float:
    from molssl.chem.serve.fingerprints import fingerprint

    started = time.perf_counter()
    fingerprint(smiles, model=encoder, batch_size=batch_size, workers=workers, errors="nan", progress=False)
    return len(smiles) / (time.perf_counter() - started)


def morgan(smiles: list[str]) -> float:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    started = time.perf_counter()
    rows = [generator.GetFingerprintAsNumPy(m) for m in map(Chem.MolFromSmiles, smiles) if m is not None]
    np.stack(rows)
    return len(smiles) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", default="data/example_molecules.csv", help="SMILES file (.smi/.csv, optionally .gz)")
    parser.add_argument("--n", type=int, default=2000, help="molecules (the file is repeated if shorter)")
    parser.add_argument("--model", default="molclr-gin-mix", help="encoder: shipped name or encoder.pt")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="featurization processes to try")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from molssl.chem.serve.fingerprints import load_encoder

    torch.set_num_threads(args.threads)
    smiles = read_smiles(args.smiles, args.n)
    smiles = (smiles * -(-args.n // len(smiles)))[:args.n]
    encoder = load_encoder(args.model)
    end_to_end(encoder, smiles[:64], args.batch_size, 1)  # warm-up
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        runs = {"forward floor (pre-built batches)": lambda: forward_floor(encoder, smiles, args.batch_size),
                "RDKit Morgan r=2, 2048 bits": lambda: morgan(smiles)}
        for w in args.workers:
            runs[f"fingerprint(), workers={w}"] = lambda w=w: end_to_end(encoder, smiles, args.batch_size, w)
        for name, run in runs.items():
            best[name] = max(best.get(name, 0.0), run())
    floor = best["forward floor (pre-built batches)"]
    print(f"{len(smiles)} molecules from {args.smiles}, model {args.model}, batch {args.batch_size}, "
          f"{args.threads} torch thread(s), best of {args.repeats}")
    print(f"{'':38s} {'molecules/s':>12s} {'vs floor':>9s}")
    for name, rate in best.items():
        print(f"{name:38s} {rate:12.0f} {rate / floor:9.0%}")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
