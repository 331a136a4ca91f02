"""RDKit 2D descriptors per molecule: molssl's ``rdkit2d`` against RDKit's functions called one by one.

The hybrid models (``--features rdkit2d``) compute RDKit's whole descriptor list for every molecule
they train on or predict, and it dominates their prediction cost. ``rdkit2d`` computes descriptors that
RDKit derives from one intermediate together (EState indices, the characteristic polynomial, Crippen
contributions); this script checks the values are bit-identical to the one-by-one reference on the
sample and times both in interleaved rounds (median), one process.

  OMP_NUM_THREADS=1 python benchmarks/descriptor_throughput.py --smiles ../shared/data/pretrain/moses_train.csv.gz
"""
from __future__ import annotations

import argparse
import gzip
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors

from molssl.chem.data.descriptors import rdkit2d, rdkit2d_one_by_one as one_by_one


def first_smiles(path: Path, n: int) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        rows = (line.split(",")[0].strip() for line in handle)
        return [s for s in rows if s and s.upper() != "SMILES"][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smiles", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    mols = [m for m in (Chem.MolFromSmiles(s) for s in first_smiles(args.smiles, args.n)) if m is not None]
    # each pass gets fresh copies: RDKit caches intermediates (BCUT2D, charges, EState) on a molecule object
    new = np.array([rdkit2d(Chem.Mol(m)) for m in mols])  # also warms RDKit's pattern caches for both paths
    old = np.array([one_by_one(Chem.Mol(m)) for m in mols])
    same = (new == old) | (np.isnan(new) & np.isnan(old))
    times: dict[str, list[float]] = {"rdkit2d": [], "one by one": []}
    for _ in range(args.rounds):
        for name, function in (("one by one", one_by_one), ("rdkit2d", rdkit2d)):
            fresh = [Chem.Mol(m) for m in mols]
            started = time.perf_counter()
            for mol in fresh:
                function(mol)
            times[name].append(time.perf_counter() - started)
    ms = {name: 1000 * float(np.median(values)) / len(mols) for name, values in times.items()}
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), platform.processor())
    print(f"{len(mols)} molecules, {len(Descriptors.descList)} descriptors; identical values: {bool(same.all())} "
          f"({int((~same).sum())} cells differ)")
    for name, value in ms.items():
        print(f"{name:>10}: {value:.2f} ms/molecule (median of {args.rounds} interleaved rounds)")
    print(f"speed-up: {ms['one by one'] / ms['rdkit2d']:.2f}x; CPU: {model}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
