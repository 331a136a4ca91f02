"""Would a consensus of a shipped setting's GNN fold models and random forests classify better? Cross-validation only.

For each fold run of a ``finetune_sweep.py --folds`` setting (``--cv ROOT``: the setting's folder, holding
``seed<S>/fold<k>/...``), the forests of the baselines (RF-ECFP4, RF on RDKit 2D descriptors; 500 trees, balanced
class weights, ``molssl.chem.tasks.baselines``) are trained on exactly that run's training molecules and predict its
validation fold; the GNN's own predictions of that fold are the ones its ``model.pt`` recorded. Each fold is scored
for every model alone and for the plain means of their probabilities. With a second ``--seeds`` value the two seeds'
models of a fold (same folds: scaffold folds do not depend on the seed) also count as a GNN pair, the ensemble a
fold ensemble ships. No test molecule is read.

Run from the repository root (a few minutes per data set, one thread):
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/fold_consensus.py --cv runs/cv-full/dropout-0.1 --dataset sider \
        --seeds 1 0 --data-dir ../shared/data/moleculenet --json /tmp/sider_consensus.json
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.serve.evaluation import run_data
from molssl.chem.serve.loading import load_property_members
from molssl.chem.tasks.baselines import compact_forest, forest_features, forest_predict, impute_median
from molssl.chem.tasks.metrics import score

FORESTS = {"rf-ecfp": "RF-ECFP4", "rf-rdkit2d": "RF-RDKit2D"}
# The baselines' forests grow to purity: 150k-300k nodes per SIDER task for 500 trees, hundreds of MB for a shipped
# consensus. Histogram gradient boosting with scikit-learn's defaults (100 trees of at most 31 leaves) is ~3k nodes
# per task; a compact forest is one multi-output forest for all tasks (100 trees of at most 32 leaves: 6,300 nodes).
KINDS = ("rf", "hgb", "rf-compact")
PREFIX = {"rf": "RF-", "hgb": "GB-", "rf-compact": "small RF-"}


def boosting_predict(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, seed: int) -> np.ndarray:
    """P(class 1) of scikit-learn's histogram gradient boosting (its defaults, balanced class weights) on one task."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(np.unique(y_train)) < 2:
        return np.full(len(x_eval), float(y_train[0]))
    model = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed).fit(x_train, y_train.astype(np.int64))
    return model.predict_proba(x_eval)[:, list(model.classes_).index(1)]


def compact_forest_predict(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, seed: int, trees: int = 100,
                           leaves: int = 32) -> tuple[np.ndarray, int]:
    """(P(class 1) per task, node count) of :func:`molssl.chem.tasks.baselines.compact_forest`."""
    from molssl.chem.nn.tree_ensemble import TreeEnsemble

    if np.isnan(y_train).any():
        raise SystemExit("--kind rf-compact needs a label for every task of every training molecule")
    model = compact_forest(x_train, y_train, seed, trees, leaves)
    return TreeEnsemble.from_forest(model).predict(x_eval), sum(tree.tree_.node_count for tree in model.estimators_)


def fold_runs(root: Path, seed: int, dataset: str, config: Optional[str] = None) -> list[Path]:
    """The run directories of ``dataset``'s folds for ``seed`` under ``root`` (``seed<S>/fold<k>/<config>/<dataset>/
    <init>``), in fold order; one run per fold, or a usage error naming the choice to make."""
    by_fold: dict[int, list[Path]] = {}
    for found in root.glob(f"seed{seed}/fold*/{config or '*'}/{dataset}/*/split.json"):
        fold = next(part for part in found.relative_to(root).parts if part.startswith("fold"))
        by_fold.setdefault(int(fold[4:]), []).append(found.parent)
    if not by_fold:
        raise SystemExit(f"{root}: no fold runs of {dataset}, seed {seed} (seed{seed}/fold<k>/<config>/{dataset}/<init>)")
    several = next((runs for runs in by_fold.values() if len(runs) > 1), None)
    if several:
        raise SystemExit(f"{root}: several runs of one fold ({', '.join(map(str, several))}); choose one with --config")
    return [by_fold[k][0] for k in sorted(by_fold)]


def fold_predictions(runs: Sequence[Path], data_dir: Optional[str], n_estimators: int = 500,
                     kind: str = "rf", leaves: int = 32) -> tuple[np.ndarray, dict]:
    """(labels of the fold's validation molecules, {model: probabilities}) for one fold: the GNN of each run in
    ``runs`` (one per seed, all validated on the same molecules) and the forests trained on the first run's
    training molecules (``kind`` ``hgb``: gradient boosting on the same features instead, named GB-...; ``rf-compact``:
    one small multi-output forest for all tasks, named small RF-...)."""
    predictions: dict[str, np.ndarray] = {}
    rows = labels = data = None
    for k, run in enumerate(runs):
        _, members, _ = load_property_members(run)
        if len(members) != 1:
            raise SystemExit(f"{run}: {len(members)} models; a fold run of one seed and one model is expected")
        record = members[0].meta["calibration"]
        if rows is None:
            data, _ = run_data(run, PropertyEnsemble("", members), data_dir, extras=("ecfp2048", "rdkit2d"))
            rows = np.asarray(record["rows"], dtype=np.int64)
            tasks = [data.tasks.index(t) for t in members[0].tasks]
            labels = np.asarray(record["y_true"], dtype=np.float64)
        elif not np.array_equal(np.asarray(record["rows"], dtype=np.int64), rows):
            raise SystemExit(f"{run} validates on other molecules than {runs[0]}")
        predictions["GNN" if k == 0 else f"GNN {k + 1}"] = np.asarray(record["y_pred"], dtype=np.float64)
    position = {int(r): i for i, r in enumerate(data.rows)}
    train = np.asarray([position[int(r)] for r in json.loads((runs[0] / "split.json").read_text())["train"]])
    valid = np.asarray([position[int(r)] for r in rows])
    for method, label in FORESTS.items():
        x = forest_features(method, data)
        x = impute_median(x, train) if method == "rf-rdkit2d" else x
        p = np.full_like(labels, np.nan)
        if kind == "rf-compact":
            p, nodes = compact_forest_predict(x[train], data.labels[np.ix_(train, tasks)], x[valid], 0, n_estimators,
                                              leaves)
            print(f"{label}: {nodes} nodes in the compact forest", flush=True)
        for j, task in enumerate(tasks if kind != "rf-compact" else []):
            y = data.labels[train, task]
            known = ~np.isnan(y)
            p[:, j] = (forest_predict(x[train][known], y[known], x[valid], True, 0, n_estimators) if kind == "rf"
                       else boosting_predict(x[train][known], y[known], x[valid], 0))
        predictions[label.replace("RF-", PREFIX[kind])] = p
    return labels, predictions


def consensus_scores(labels: np.ndarray, predictions: dict[str, np.ndarray], metric: str = "roc_auc") -> dict[str, float]:
    """The metric of each model alone and of the mean probability of every combination (GNN seeds as one pair)."""
    gnn = [name for name in predictions if name.startswith("GNN")]
    parts = {"GNN" if len(gnn) == 1 else "GNN pair": np.mean([predictions[n] for n in gnn], axis=0),
             **{name: p for name, p in predictions.items() if not name.startswith("GNN")}}
    out = {name: score(metric, labels, p) for name, p in predictions.items()}
    for size in range(2 if len(gnn) == 1 else 1, len(parts) + 1):
        for combo in itertools.combinations(parts, size):
            out[" + ".join(combo)] = score(metric, labels, np.mean([parts[n] for n in combo], axis=0))
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cv", required=True, type=Path, help="a sweep setting's folder (seed<S>/fold<k>/...)")
    parser.add_argument("--dataset", required=True, help="the data set's folder name under each fold")
    parser.add_argument("--config", default=None, help="the configuration folder, where a fold holds several")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one seed, or two for the GNN pair")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--trees", type=int, default=None, help="trees of each forest (default: rf 500, rf-compact 100)")
    parser.add_argument("--leaves", type=int, default=32, help="rf-compact: at most this many leaves per tree")
    parser.add_argument("--kind", choices=KINDS, default="rf", help="rf: the baselines' forests; hgb: gradient boosting")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    by_seed = [fold_runs(args.cv, seed, args.dataset, args.config) for seed in args.seeds]
    if len({len(runs) for runs in by_seed}) != 1:
        raise SystemExit(f"{args.cv}: the seeds {args.seeds} have different numbers of fold runs")
    folds = []
    for k, runs in enumerate(zip(*by_seed)):
        trees = args.trees or (100 if args.kind == "rf-compact" else 500)
        labels, predictions = fold_predictions(runs, args.data_dir, trees, args.kind, args.leaves)
        folds.append(consensus_scores(labels, predictions))
        print(f"fold {k}: " + ", ".join(f"{name} {value:.4f}" for name, value in folds[-1].items()), flush=True)
    mean = {name: float(np.mean([fold[name] for fold in folds])) for name in folds[0]}
    base = "GNN pair" if "GNN pair" in mean else "GNN"  # what a fold ensemble ships
    print(f"| model | mean validation ROC-AUC over folds | folds above the {base} |\n|---|---|---|")
    for name, value in sorted(mean.items(), key=lambda kv: -kv[1]):
        above = sum(fold[name] > fold[base] for fold in folds)
        print(f"| {name} | {value:.4f} | {above} of {len(folds)} |")
    result = {"cv": str(args.cv), "dataset": args.dataset, "seeds": args.seeds, "kind": args.kind, "trees": args.trees,
              "leaves": args.leaves, "folds": folds, "mean": mean}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
