"""The forests trained on what a fold ensemble has seen: the training + validation molecules of the scaffold split.

A shipped fold ensemble (``ship_zoo.py --cv``) is two models of a K-fold cross-validation of the training +
validation molecules: together they have trained on all of them, ~12% more than the training split alone, which is
what the forests on the model cards were trained on. A random forest needs no validation split (500 trees, no early
stopping), so the fair comparison for a fold ensemble is a forest on the pooled molecules. This trains RF-ECFP4 and
RF-RDKit2D both ways on the same scaffold split, per seed, and prints the test scores side by side (the first
column reproduces the cards' baselines; the second is the comparison for a fold ensemble). ``--card`` writes the
second onto the card of the shipped model of that name when it is a fold ensemble (its weights untouched).

    OMP_NUM_THREADS=1 python benchmarks/pooled_baselines.py --datasets bace sider bbbp tox21 lipo --seeds 0 1 2 --card
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from molssl.chem.data.datasets import get_spec
from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import Split
from molssl.chem.tasks.baselines import run_baseline
from molssl.chem.tasks.groups import make_split, task_groups
from molssl.core.precision import cpu_description
from molssl.errors import MolsslError

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"
METHODS = {"rf-ecfp": "RF-ECFP4", "rf-rdkit2d": "RF-RDKit2D"}


def record_on_card(name: str, label: str, value: float) -> bool:
    """Put a pooled forest's mean test score beside a shipped fold ensemble's own (False: no such model)."""
    from molssl.chem.serve import zoo
    from molssl.chem.serve.zoo_export import write_card

    try:
        folder = zoo.model_folder(name)
        card = zoo.read_card(folder)
    except MolsslError:  # not a shipped model's name: nothing to record
        return False
    if card.kind != "property" or not card.budget.get("folds"):
        return False
    card.baselines[zoo.POOLED_BASELINE.format(label)] = float(value)
    write_card(folder, card)
    return True


def pooled(split: Split) -> Split:
    """``split`` with its validation molecules added to its training molecules (validation itself kept, unused)."""
    return Split(np.concatenate([split.train, split.valid]), split.valid, split.test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--card", action="store_true", help="write the pooled forests onto shipped fold ensembles' cards")
    args = parser.parse_args()
    print("| set | metric | forest | training split (mean over seeds) | training + validation | seeds | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.datasets:
        data = load_dataset(name, data_dir=args.data_dir, extras=("scaffold", "ecfp2048", "rdkit2d"), progress=False)
        scale = 100 if data.metric == "roc_auc" else 1
        groups = task_groups(data, "auto")
        for method in args.methods:
            started = time.process_time()
            scores = {"train": [], "pooled": []}
            for seed in args.seeds:
                for kind in scores:
                    # per group (one per target where the harness fine-tunes per target), as quality_ablation.py does
                    per_group = []
                    for group in groups:
                        split = make_split(data, group, "scaffold", seed)
                        split = pooled(split) if kind == "pooled" else split
                        per_group.append(run_baseline(method, data, group.task_index, split, seed)["test"])
                    scores[kind].append(float(np.mean(per_group)))
            print(f"| {get_spec(name).title} | {data.metric} | {METHODS[method]} | {np.mean(scores['train']) * scale:.3f} | "
                  f"{np.mean(scores['pooled']) * scale:.3f} | {len(args.seeds)} | {time.process_time() - started:.0f} |",
                  flush=True)
            if args.card and record_on_card(name, METHODS[method], float(np.mean(scores["pooled"]))):
                print(f"  (written onto the card of the shipped {name})", flush=True)
    print(f"\nCPU: {cpu_description()[0]}; {time.strftime('%Y-%m-%d', time.gmtime())}")


if __name__ == "__main__":
    main()
