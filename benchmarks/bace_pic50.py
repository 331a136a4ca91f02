"""BACE ranked from its continuous label: does training on pIC50 instead of Class close the gap to RF-ECFP4?

MoleculeNet's bace.csv holds each inhibitor's pIC50 beside its binary Class (pIC50 >= 7 for 98.9% of rows). A
regressor sees how far a molecule is from the threshold, which a classifier does not; ranking the test
molecules by predicted pIC50 is then scored by ROC-AUC against Class, the benchmark's own metric, on the same
DeepChem scaffold split. Only training rows' pIC50 are used. The GNN runs come from ``molssl finetune --csv``
(its split is checked to be the benchmark's); the forests (``molssl.chem.tasks.baselines.forest_predict``,
the RF baselines' settings) are fitted both ways here.

    molssl finetune --csv ../shared/data/moleculenet/bace.csv.gz --smiles-column mol --targets pIC50 \\
        --task regression --split scaffold --featurizer rich --features rdkit2d --pretrained none \\
        --epochs 100 --patience 10 --seeds 0 --threads 1 --out runs/bace-pic50/seed0
    python benchmarks/bace_pic50.py --runs runs/bace-pic50 --seeds 0 1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import scaffold_split
from molssl.chem.tasks.baselines import forest_features, forest_predict, impute_median
from molssl.chem.tasks.metrics import score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/bace-pic50"), help="folder of seed<S> finetune runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data-dir", default="../shared/data/moleculenet")
    parser.add_argument("--gnn-only", action="store_true", help="score the GNN runs only (no forests)")
    parser.add_argument("--label", default="GNN, rich + RDKit 2D, random init", help="the GNN runs' row label")
    args = parser.parse_args()

    data = load_dataset("bace", args.data_dir, extras=("scaffold", "ecfp2048", "rdkit2d"), progress=False)
    split = scaffold_split(keys=data.scaffold_keys())
    raw = pd.read_csv(Path(args.data_dir) / "bace.csv.gz")
    if len(raw) != len(data) or not np.array_equal(raw["Class"].to_numpy(float), data.labels[:, 0]):
        raise SystemExit("bace.csv rows do not match the benchmark's molecules")
    classes, pic50 = data.labels[split.test][:, :1], raw["pIC50"].to_numpy(float)

    def auc(pred: np.ndarray) -> str:
        return f"{100 * score('roc_auc', classes, pred[:, None]):.1f}"

    print("| model (seed) | trained on Class | trained on pIC50 |\n|---|---|---|")
    for seed in args.seeds:
        run = args.runs / f"seed{seed}"
        saved = json.loads((run / "split.json").read_text())
        if not all(np.array_equal(np.asarray(saved[k]), getattr(split, k)) for k in ("train", "valid", "test")):
            raise SystemExit(f"{run} was not trained on the benchmark's scaffold split")
        preds = pd.read_csv(run / f"seed_{seed}" / "test_predictions.csv")
        print(f"| {args.label} ({seed}) | (quality_ablation.md) | {auc(preds['pIC50_pred'].to_numpy())} |")
    for method in () if args.gnn_only else ("rf-ecfp", "rf-rdkit2d"):
        x = forest_features(method, data)
        x = impute_median(x, split.train) if method == "rf-rdkit2d" else x
        for seed in args.seeds:
            on_class = forest_predict(x[split.train], data.labels[split.train, 0], x[split.test], True, seed)
            on_pic50 = forest_predict(x[split.train], pic50[split.train], x[split.test], False, seed)
            print(f"| {method} ({seed}) | {auc(on_class)} | {auc(on_pic50)} |", flush=True)


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
