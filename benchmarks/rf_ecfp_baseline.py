"""RF on ECFP4 with DeepChem's scaffold split: the reference point every fine-tuned model must beat.

    python benchmarks/rf_ecfp_baseline.py --data-dir /path/to/moleculenet [--seeds 0 1 2]

Unparsable SMILES are dropped before splitting (as MolCLR does); the scaffold split is
deterministic, so the seeds vary only the forests. Prints one markdown row per data set.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from molssl.chem.data.datasets import get_spec
from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import scaffold_split
from molssl.chem.tasks.baselines import rf_baseline

DEFAULT = ["bbbp", "bace", "clintox", "esol", "freesolv", "lipo"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="+", default=DEFAULT)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-estimators", type=int, default=500)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    print("| data set | metric | molecules (dropped) | train/valid/test | valid | test | "
          "test per seed | MolCLR-GIN (paper) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        spec = get_spec(name)
        start = time.perf_counter()
        data = load_dataset(name, args.data_dir, extras=("scaffold", "ecfp2048"))
        split = scaffold_split(keys=data.scaffold_keys())
        x = np.unpackbits(np.asarray(data.store.extra("ecfp2048")), axis=1)
        runs = [rf_baseline(x, data.labels, split, data.task_type, data.metric, seed=s, n_estimators=args.n_estimators,
                            n_jobs=args.n_jobs) for s in args.seeds]
        valid = np.array([r["valid"] for r in runs])
        test = np.array([r["test"] for r in runs])
        # ROC-AUC in %, as the papers print it; std over seeds with ddof=0
        scale, digits = (100.0, 1) if spec.metric == "roc_auc" else (1.0, 3)

        def fmt(x: float) -> str:
            return f"{scale * x:.{digits}f}"

        paper = "n/a" if spec.molclr is None else f"{spec.molclr:.1f}"
        print(f"| {spec.title} | {spec.metric} | {len(data)} ({len(data.invalid)}) | "
              f"{'/'.join(str(len(p)) for p in split)} | {fmt(valid.mean())} ± {fmt(valid.std())} | "
              f"{fmt(test.mean())} ± {fmt(test.std())} | {', '.join(map(fmt, test))} | {paper} | "
              f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
