"""Are fold models' validation folds drawn like the test split? The check behind calibrating fold ensembles on the
scaffold split's validation molecules only (uncertainty_domain.md, twenty-sixth session).

For the members of a fold ensemble (``molssl finetune --folds K --fold I`` runs), compares each member's validation
residuals on the molecules of the ordinary scaffold split's validation part (drawn like its test part: DeepChem's
splitter fills both with the smallest scaffold sets) with those on the rest of its fold, pooled over the members.
It reads the validation records the run directories' ``model.pt`` files keep; no test molecule is looked at. It
also prints each fold's largest scaffold set, as the folds group them (with ``--fold-acyclic spread`` each acyclic
molecule is a set of its own; since 2026-12-06's twenty-seventh session): ``GroupKFold`` places the largest sets
first, so a set bigger than a fold's share (often benzene's, with spread folds) fills fold 0 alone and that fold's
model never trains on one of its molecules (``ship_zoo.py`` no longer makes it a member).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/fold_calibration.py --data-dir ../shared/data/moleculenet \\
        runs/cv-full/dropout-0.1/seed0/fold0/rich-rdkit2d-quantile/lipo/pretrained \\
        runs/cv-full/dropout-0.1/seed0/fold1/rich-rdkit2d-quantile/lipo/pretrained
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from molssl.chem.data.splits import fold_set_sizes
from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.serve.evaluation import run_data, scaffold_validation_rows
from molssl.chem.serve.loading import load_property_model, run_member_files
from molssl.chem.serve.uncertainty import conformal_quantile


def summary(y: np.ndarray, p: np.ndarray, task_type: str) -> str:
    """Size and error of (labels, predictions): |residual| quantiles for regression, log loss and Brier otherwise."""
    labelled = ~np.isnan(y)
    y, p = y[labelled], p[labelled]
    if task_type == "regression":
        r = np.abs(y - p)
        return f"{r.size} labels, median |residual| {np.median(r):.3f}, 90% conformal quantile {conformal_quantile(r, 0.9):.3f}"
    q = np.clip(p, 1e-6, 1 - 1e-6)
    log_loss = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    return f"{y.size} labels, log loss {log_loss.mean():.3f}, Brier {np.mean((p - y) ** 2):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="the fold models' run directories")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    owned = [(run, load_property_model(p)) for run in args.runs for p in run_member_files(run)]
    members = [member for _, member in owned]
    data, config = run_data(args.runs, PropertyEnsemble("", members), args.data_dir, scaffolds=True)
    rows = scaffold_validation_rows(data, config["protocol"])
    if rows is None:
        raise SystemExit("one model per target on several targets: no single scaffold split to compare with")
    parts: dict[bool, list[tuple[np.ndarray, np.ndarray]]] = {True: [], False: []}
    key_of_row = dict(zip(np.asarray(data.rows).tolist(), data.scaffold_keys().tolist()))
    for run, member in owned:
        record = member.meta["calibration"]
        inside = np.isin(np.asarray(record["rows"], dtype=np.int64), rows)
        acyclic = json.loads((run / "config.json").read_text()).get("fold_acyclic", "together") \
            if (run / "config.json").is_file() else "together"
        sizes = np.asarray(fold_set_sizes([key_of_row[int(r)] for r in record["rows"]], acyclic))
        for where in (True, False):
            keep = inside if where else ~inside
            parts[where].append((np.asarray(record["y_true"])[keep].ravel(), np.asarray(record["y_pred"])[keep].ravel()))
        print(f"{run}: {int(inside.sum())} of its {inside.size} validation molecules are in the scaffold split's "
              f"validation part; its largest scaffold set holds {sizes.max()} (a model never trains on its own fold)")
    for where, label in ((True, "scaffold split's validation molecules"), (False, "the rest of the folds")):
        y = np.concatenate([a for a, _ in parts[where]])
        p = np.concatenate([b for _, b in parts[where]])
        print(f"{data.name}, {label}: {summary(y, p, data.task_type)}")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
