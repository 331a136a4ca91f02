"""Uncertainty and applicability domain of the shipped property models, measured on their scaffold test splits.

The shipped files were made before molssl recorded validation and training data in model files, so
this script rebuilds those records exactly as fine-tuning writes them (``reliability_extras`` on the
same DeepChem scaffold split, seed-free, from the same MoleculeNet file) for each shipped member, then
scores the ensemble on the test split:

- regression: empirical coverage and mean width of the conformal interval (90%, also 80% and 95%),
  ensemble-normalized (the default) and plain absolute residuals;
- classification: Brier score and expected calibration error (10 bins) before and after Platt scaling;
- all: the share of test molecules in the domain, which check excluded the others, and the mean
  absolute error by nearest-training-molecule similarity (the evidence behind the threshold).

Run from the repository root:
    PYTHONPATH=. python benchmarks/uncertainty_domain.py --data-dir ../shared/data/moleculenet \
        --json /tmp/uncertainty_domain.json [--save-models /tmp/records]

``--save-models DIR`` also writes each shipped ensemble with its records as ``DIR/<name>/seed_<k>/model.pt``
(a run directory ``molssl predict -m DIR/<name>`` can use; benchmarks/predict_throughput.py does).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from molssl.chem.data.labelled import load_labelled
from molssl.chem.serve.domain import describe_smiles
from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.serve.evaluation import TestPredictions, test_reliability
from molssl.chem.serve.loading import load_shipped_members, save_property_model
from molssl.chem.serve.reliability import reliability_extras
from molssl.chem.serve.uncertainty import ConformalIntervals
from molssl.chem.tasks.training import predict_positions
from molssl.chem.tasks.groups import make_split, task_groups
from molssl.chem.tasks.metrics import score

SHIPPED = ("esol", "freesolv", "lipo", "bbbp", "bace", "tox21")


def shipped_with_records(name: str, data_dir: str) -> tuple[PropertyEnsemble, object, object, object]:
    """(ensemble whose members carry fine-tuning's records, data, group, split) of a shipped model."""
    card, members = load_shipped_members(name)
    data = load_labelled(dataset=name, data_dir=data_dir, extras=("scaffold",), progress=False)
    groups = task_groups(data, card.protocol)
    assert len(groups) == 1, "the shipped models are single-task or multitask"
    group = groups[0]
    split = make_split(data, group, "scaffold", 0)
    labels = data.labels[:, group.task_index]
    for member in members:
        member.meta.update(reliability_extras(data, split, labels, predict_positions(member, data, split.valid)))
    return PropertyEnsemble(card.name, members, card.task_labels, card.units), data, group, split


def test_predictions(ensemble: PropertyEnsemble, data, group, split) -> TestPredictions:
    member_preds = np.stack([predict_positions(m, data, split.test) for m in ensemble.members])
    mean, std = member_preds.mean(0), member_preds.std(0)
    labels = data.labels[split.test][:, group.task_index]
    return TestPredictions(data.store.smiles(split.test), labels, mean, std, list(ensemble.tasks), data.task_type,
                           data.metric, score(data.metric, labels, mean))


def domain_reasons(ensemble: PropertyEnsemble, test: TestPredictions) -> dict:
    found = ensemble.domain.assess(describe_smiles(test.smiles))
    notes = [n for n in found.notes if n]
    return {"similarity": sum("similarity" in n for n in notes), "atoms": sum("atoms not in" in n for n in notes),
            "ranges": sum("outside training" in n for n in notes), "out": len(notes)}


def evaluate(name: str, data_dir: str, save: Path | None) -> dict:
    started = time.perf_counter()
    ensemble, data, group, split = shipped_with_records(name, data_dir)
    test = test_predictions(ensemble, data, group, split)
    out = {"model": name, "task_type": data.task_type, "members": ensemble.n_members, "test_score": test.score,
           "metric": data.metric, "valid": int(split.valid.size), "train": int(split.train.size),
           "threshold": ensemble.domain.threshold, "reasons": domain_reasons(ensemble, test)}
    out.update(test_reliability(ensemble, test, 0.9))
    if isinstance(ensemble.calibration, ConformalIntervals):
        out["calibration"] = ensemble.calibration.describe(0.9)[0]
        sweep = {}
        for label, beta in (("normalized", ensemble.calibration.beta), ("absolute", None)):
            calibration = ensemble.calibration if beta is not None else _absolute(ensemble)
            for coverage in (0.8, 0.9, 0.95):
                half = calibration.half_width(test.std, coverage)
                labelled = ~np.isnan(test.y_true)
                sweep[f"{label}@{coverage}"] = {
                    "coverage": float((np.abs(test.y_true - test.mean) <= half)[labelled].mean()),
                    "width": float((2 * half)[labelled].mean())}
        out["sweep"] = sweep
        from scipy.stats import spearmanr

        error = np.abs(test.y_true - test.mean)[:, 0]
        out["spread_error_spearman"] = float(spearmanr(test.std[:, 0], error, nan_policy="omit").statistic)
    else:
        out["calibration"] = ensemble.calibration.describe()
    if save is not None:
        for k, member in enumerate(ensemble.members):
            meta = {key: v for key, v in member.meta.items() if key not in ("format", "digest", "state_dict")}
            save_property_model(member, save / name / f"seed_{k}" / "model.pt", meta)
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _absolute(ensemble: PropertyEnsemble) -> ConformalIntervals:
    """The same validation records scored by plain absolute residuals of the ensemble mean."""
    records = [m.meta["calibration"] for m in ensemble.members]
    preds = np.stack([np.asarray(r["y_pred"])[:, 0] for r in records])
    y = np.asarray(records[0]["y_true"])[:, 0]
    keep = ~np.isnan(y)
    return ConformalIntervals([np.sort(np.abs(y - preds.mean(0))[keep])], np.array([math.nan]), [int(keep.sum())])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", nargs="+", default=list(SHIPPED))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--save-models", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    for name in args.models:
        result = evaluate(name, args.data_dir, args.save_models)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
