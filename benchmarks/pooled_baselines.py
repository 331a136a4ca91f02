"""The forests trained on what a fold ensemble has seen: the training + validation molecules of the scaffold split.

A shipped fold ensemble (``ship_zoo.py --cv``) is two models of a K-fold cross-validation of the training +
validation molecules: together they have trained on all of them, ~12% more than the training split alone, which is
what the forests on the model cards were trained on. A random forest needs no validation split (500 trees, no early
stopping), so the fair comparison for a fold ensemble is a forest on the pooled molecules. This trains RF-ECFP4 and
RF-RDKit2D both ways on the same scaffold split, per seed, and prints the test scores side by side (the first
column reproduces the cards' baselines; the second is the comparison for a fold ensemble). ``--card`` writes the
second onto the card of the shipped model of that name when it is a fold ensemble (its weights untouched).

    OMP_NUM_THREADS=1 python benchmarks/pooled_baselines.py --datasets bace sider bbbp tox21 lipo --seeds 0 1 2 --card

chemprop needs validation molecules to stop, so its counterpart is the fold ensemble's own form (``--methods
chemprop``, since 2026-12-06's twenty-fifth session): chemprop v2 with its defaults trained on each of the folds
``--folds`` of a ``--cv-folds``-fold scaffold cross-validation (the split ``molssl finetune --folds K --fold I``
uses), validated on that fold, the members' test predictions averaged; its training-split column is the cards'
(quality_ablation.md), not re-run here. Work files under ``--out``; a finished chemprop run is reused.

    OMP_NUM_THREADS=1 python benchmarks/pooled_baselines.py --datasets bace --seeds 0 --methods chemprop --card
"""
from __future__ import annotations

import argparse
import itertools
import resource
import time
from pathlib import Path
from typing import Optional

import numpy as np

from molssl.chem.data.datasets import get_spec
from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import FOLD_ACYCLIC, Split
from molssl.chem.tasks.baselines import run_baseline
from molssl.chem.tasks.groups import fold_of, make_split, task_groups
from molssl.chem.tasks.metrics import score
from molssl.core.precision import cpu_description
from molssl.errors import MolsslError

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"
METHODS = {"rf-ecfp": "RF-ECFP4", "rf-rdkit2d": "RF-RDKit2D", "chemprop": "chemprop v2"}
FORESTS = ("rf-ecfp", "rf-rdkit2d")


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


def chemprop_folds(data, group, split: Split, seed: int, folds: list[int], k: int, out: Path,
                   acyclic: str = "together") -> float:
    """Test score of chemprop fold models (folds ``folds`` of ``k`` over ``split``'s training + validation
    molecules) as one ensemble: the mean of their test predictions, as a shipped fold ensemble predicts."""
    from molssl.chem.tasks.chemprop_baseline import run_chemprop

    predictions = [run_chemprop(data, group.task_index, fold_of(data, group, split, k, fold, acyclic), seed,
                                out / f"{group.name}_seed{seed}_fold{fold}", resume=True)["test_predictions"]
                   for fold in folds]
    return score(data.metric, data.labels[np.ix_(split.test, group.task_index)], np.mean(predictions, axis=0))


def baseline_score(method: str, kind: str, data, group, seed: int, args) -> Optional[float]:
    """One group's test score of ``method`` trained on the training split (``kind`` "train") or on what a fold
    ensemble saw ("pooled"); None for chemprop on the training split (the cards have it)."""
    split = make_split(data, group, "scaffold", seed)
    if method == "chemprop":
        return chemprop_folds(data, group, split, seed, args.folds, args.cv_folds, args.out / data.name,
                              args.fold_acyclic) if kind == "pooled" else None
    return run_baseline(method, data, group.task_index, pooled(split) if kind == "pooled" else split, seed)["test"]


def cpu_seconds() -> float:
    """CPU time of this process and of the ones it waited for (chemprop runs in its own)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(FORESTS))
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1], help="chemprop: the folds of its members")
    parser.add_argument("--cv-folds", type=int, default=5, help="chemprop: how many scaffold folds")
    parser.add_argument("--fold-acyclic", default="together", choices=FOLD_ACYCLIC,
                        help="chemprop: the folds' acyclic molecules, as the fold ensemble's (molssl finetune)")
    parser.add_argument("--out", type=Path, default=Path("runs/pooled-chemprop"), help="chemprop's work files")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--card", action="store_true", help="write the pooled baselines onto shipped fold ensembles' cards")
    args = parser.parse_args()
    print("| set | metric | baseline | training split (mean over seeds) | training + validation | seeds | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.datasets:
        data = load_dataset(name, data_dir=args.data_dir, extras=("scaffold", "ecfp2048", "rdkit2d"), progress=False)
        scale = 100 if data.metric == "roc_auc" else 1
        groups = task_groups(data, "auto")
        for method in args.methods:
            started = cpu_seconds()
            scores = {"train": [], "pooled": []}
            for seed, kind in itertools.product(args.seeds, scores):
                # per group (one per target where the harness fine-tunes per target), as quality_ablation.py does
                per_group = [baseline_score(method, kind, data, group, seed, args) for group in groups]
                scores[kind].append(np.nan if None in per_group else float(np.mean(per_group)))
            folds = [str(f) for f in args.folds]
            folds = f"fold {folds[0]}" if len(folds) == 1 else f"folds {', '.join(folds[:-1])} and {folds[-1]}"
            label = METHODS[method] + (f" ({folds} of {args.cv_folds})" if method == "chemprop" else "")
            shown = {kind: "-" if np.isnan(values).any() else f"{np.mean(values) * scale:.3f}"
                     for kind, values in scores.items()}
            print(f"| {get_spec(name).title} | {data.metric} | {label} | {shown['train']} | {shown['pooled']} | "
                  f"{len(args.seeds)} | {cpu_seconds() - started:.0f} |", flush=True)
            if args.card and record_on_card(name, METHODS[method], float(np.mean(scores["pooled"]))):
                print(f"  (written onto the card of the shipped {name})", flush=True)
    print(f"\nCPU: {cpu_description()[0]}; {time.strftime('%Y-%m-%d', time.gmtime())}")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
