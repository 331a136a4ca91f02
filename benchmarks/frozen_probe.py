"""Frozen-encoder probes: how much a pre-trained representation holds before any fine-tuning.

Fine-tuning scores move by a seed's spread on these small sets, which hides what pre-training changed
(quality_ablation.md). The standard self-supervised check is a probe on frozen features (SimCLR's linear
evaluation, Chen et al. 2020): the encoder's representation ``h`` of every molecule, a linear model fitted on
the training split (logistic regression per task, or ridge), its regularization chosen on the validation split,
scored on the test split. Each encoder is compared with the same architecture from random weights (seeds
0, 1, 2: a random GIN is itself a strong feature extractor) and with ECFP4 bits through the same probe.

    python benchmarks/frozen_probe.py --datasets bbbp bace clintox tox21 sider esol freesolv lipo \
        --encoders rich-gin-physchem molclr-gin-mix

``--probe forest`` asks the question of a user with scikit-learn habits instead: do the learned fingerprints
help the random forest they already run on ECFP4 bits? The same forest as the RF-ECFP4 baseline (500 trees,
balanced class weights, ``molssl.chem.tasks.baselines.rf_baseline``, seed 0) on ECFP4 bits, on each encoder's
features, and on both side by side.

    python benchmarks/frozen_probe.py --probe forest --datasets bace bbbp --encoders rich-gin-physchem

Same molecules and DeepChem scaffold split as every other table here (molecules RDKit cannot read are left
out before splitting). Prints one markdown table; test scores, validation in brackets.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import Split, scaffold_split
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.chem.serve.fingerprints import fingerprint, load_encoder
from molssl.chem.tasks.baselines import rf_baseline
from molssl.chem.tasks.metrics import score
from molssl.core.precision import cpu_description

STRENGTHS = (0.1, 1.0, 10.0, 100.0)  # inverse for logistic regression, alpha for ridge
RANDOM_SEEDS = (0, 1, 2)


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, classification: bool,
                 strength: float) -> np.ndarray:
    if classification:
        model = LogisticRegression(C=1.0 / strength, max_iter=500, class_weight="balanced")
        return model.fit(x_train, y_train).predict_proba(x_eval)[:, 1]
    return Ridge(alpha=strength).fit(x_train, y_train).predict(x_eval)


def probe(x: np.ndarray, labels: np.ndarray, split: Split, classification: bool, metric: str) -> tuple[float, float]:
    """(validation, test) score of the linear probe whose strength scored best on validation."""
    scaler = StandardScaler().fit(x[split.train])
    x = np.nan_to_num(scaler.transform(x))
    eval_rows, n_valid = np.concatenate([split.valid, split.test]), len(split.valid)
    # a classification task without both classes in training cannot be probed: it is left out of the score
    probed = [j for j in range(labels.shape[1]) if not classification
              or len(np.unique(labels[split.train, j][~np.isnan(labels[split.train, j])])) == 2]
    labels = labels[:, probed]
    best = None
    for strength in STRENGTHS:
        preds = np.zeros((len(eval_rows), len(probed)))
        for j in range(len(probed)):
            seen = ~np.isnan(labels[split.train, j])
            preds[:, j] = _fit_predict(x[split.train][seen], labels[split.train, j][seen], x[eval_rows],
                                       classification, strength)
        valid = score(metric, labels[split.valid], preds[:n_valid])
        if best is None or (valid > best[0] if metric == "roc_auc" else valid < best[0]):
            best = (valid, score(metric, labels[split.test], preds[n_valid:]))
    return best


def forest_probe(x: np.ndarray, labels: np.ndarray, split: Split, classification: bool,
                 metric: str) -> tuple[float, float]:
    """(validation, test) score of the RF-ECFP4 baseline's forest fitted on features ``x`` instead."""
    result = rf_baseline(np.nan_to_num(x), labels, split, "classification" if classification else "regression",
                         metric, seed=0)
    return result["valid"], result["test"]


def random_twin(encoder: MolecularEncoder, seed: int) -> MolecularEncoder:
    """The same architecture and vocabulary from random weights."""
    torch.manual_seed(seed)
    return MolecularEncoder(encoder.config).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["bbbp", "bace", "clintox", "tox21", "sider"])
    parser.add_argument("--encoders", nargs="+", default=["rich-gin-physchem", "molclr-gin-mix"],
                        help="shipped names, pre-training run directories or encoder.pt files")
    parser.add_argument("--random-seeds", nargs="*", type=int, default=list(RANDOM_SEEDS),
                        help="seeds of the random-weight twins of each encoder (none: no twin columns)")
    parser.add_argument("--probe", choices=("linear", "forest"), default="linear",
                        help="linear: the standard frozen-feature probe; forest: the RF-ECFP4 baseline's forest, "
                             "also on ECFP4 bits and the learned features side by side")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="sklearn")  # ill-conditioned ridge solves at the weakest strength
    warnings.filterwarnings("ignore", module="scipy")

    fit = forest_probe if args.probe == "forest" else probe
    columns, started = [], time.perf_counter()
    for name in args.encoders:
        encoder = load_encoder(name)
        columns.append((name, [encoder], False))
        if args.probe == "forest":
            columns.append((f"ECFP4 bits + {name}", [encoder], True))
        if args.random_seeds:
            columns.append((f"{name} architecture, random init (seeds {', '.join(map(str, args.random_seeds))})",
                            [random_twin(encoder, seed) for seed in args.random_seeds], False))
    labels = ["ECFP4 bits"] + [label for label, _, _ in columns]
    print("| data set | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels), flush=True)
    for dataset in args.datasets:
        data = load_dataset(dataset, args.data_dir, download=False, extras=("scaffold", "ecfp2048"))
        split = scaffold_split(keys=data.scaffold_keys())
        y, classification = data.labels, data.task_type == "classification"
        ecfp = np.unpackbits(np.asarray(data.store.extra("ecfp2048")), axis=1).astype(np.float32)
        cells = [[fit(ecfp, y, split, classification, data.metric)]]
        features = {}  # each encoder's fingerprints once per data set (the forest uses them twice)
        for _, encoders, with_ecfp in columns:
            for e in encoders:
                if id(e) not in features:
                    features[id(e)] = fingerprint(data.smiles, model=e, threads=1, progress=False)
            cells.append([fit(np.hstack([ecfp, features[id(e)]]) if with_ecfp else features[id(e)], y, split,
                              classification, data.metric) for e in encoders])
        scale = 100.0 if data.metric == "roc_auc" else 1.0
        print(f"| {data.name} ({data.metric}) | " + " | ".join(
            f"{scale * np.mean([t for _, t in s]):.3g} ({scale * np.mean([v for v, _ in s]):.3g})" for s in cells)
            + " |", flush=True)
    kind = "Linear probe" if args.probe == "linear" else "Random forest (500 trees, seed 0)"
    twins = f"; random init: mean of {len(args.random_seeds)} encoders" if args.random_seeds else ""
    print(f"\n{kind} on frozen features; test (validation){twins}. "
          f"CPU: {cpu_description()[0]}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
