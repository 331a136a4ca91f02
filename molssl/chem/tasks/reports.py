"""How results are reported: one score format everywhere, run-directory files, per-run and per-suite tables.

Files (``results.json``, ``benchmark.json``) keep scores as fractions (ROC-AUC 0.812); tables print
ROC-AUC in percent as papers do (81.2) and RMSE/MAE in the targets' units, and say so.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from molssl import __version__
from molssl.chem.data.labelled import LabelledData

# benchmark variants and their column titles, in table order
VARIANT_TITLES = {"pretrained": "ours (pre-trained)", "random-init": "random init", "rf-ecfp": "RF-ECFP4",
                  "rf-rdkit2d": "RF-RDKit2D", "chemprop": "chemprop v2", "delaney": "Delaney eq."}


def aggregate(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation (ddof=1; 0 for a single seed) across seeds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def format_score(metric: str, value: Optional[float], std: Optional[float] = None) -> str:
    """ROC-AUC in percent (as papers report it), RMSE/MAE as they are (4 decimals below 0.1, e.g. QM8)."""
    if value is None:
        return "-"
    scale, digits = (100.0, 1) if metric == "roc_auc" else (1.0, 3 if abs(value) >= 0.1 else 4)
    text = f"{value * scale:.{digits}f}"
    return text if std is None else f"{text} ± {std * scale:.{digits}f}"


def describe_score(metric: str, value: Optional[float], std: Optional[float] = None) -> str:
    """A score for a sentence, with its metric and unit: ``ROC-AUC 81.2 %``, ``RMSE 0.799`` (one format everywhere)."""
    unit = " %" if metric == "roc_auc" else ""
    return f"{'ROC-AUC' if metric == 'roc_auc' else metric.upper()} {format_score(metric, value, std)}{unit}"


def results_markdown(results: dict) -> str:
    """The run's results as a markdown table (one row per seed plus the mean)."""
    metric = results["metric"]
    unit = "ROC-AUC %" if metric == "roc_auc" else metric.upper()
    lines = [f"# {results['dataset']}: {results['method']} ({results['protocol']}, {results['split']} split)", "",
             f"| seed | valid {unit} | test {unit} |", "|---|---|---|"]
    for seed in results["seeds"]:
        lines.append(f"| {seed['seed']} | {format_score(metric, seed['valid'])} | {format_score(metric, seed['test'])} |")
    lines.append(f"| mean ± std | {format_score(metric, results['valid_mean'], results['valid_std'])} | "
                 f"{format_score(metric, results['mean'], results['std'])} |")
    budget = results["budget"]
    lines += ["", f"{results['molecules']} molecules ({results['invalid_rows']} rows left out), "
              f"{budget['epochs']} epochs, batch {budget['batch_size']}, "
              f"max train molecules {budget['max_train_molecules'] or 'all'}; std is ddof=1 across seeds.", ""]
    return "\n".join(lines)


def _reference(value: Optional[float]) -> str:
    return "-" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:g}")


def benchmark_table(rows: list[dict], budget: str, variants: Sequence[str] = ("pretrained", "random-init", "rf-ecfp"),
                    notes: Sequence[str] = ()) -> str:
    """Markdown table: data set, metric, one column per variant run, the MolCLR paper and its GEM-protocol re-run."""
    variants = [v for v in VARIANT_TITLES if v in variants]
    titles = [VARIANT_TITLES[v] for v in variants] + ["MolCLR paper", "MolCLR re-run (GEM)"]
    lines = ["| data set | metric | " + " | ".join(titles) + " |", "|---|---|" + "---|" * len(titles)]
    for row in rows:
        metric = row["metric"]
        cells = [format_score(metric, row[v]["mean"], row[v]["std"]) if v in row else "-" for v in variants]
        cells += [_reference(row.get("molclr_paper")), _reference(row.get("molclr_rerun"))]
        unit = "ROC-AUC %" if metric == "roc_auc" else metric.upper()
        lines.append(f"| {row['title']} | {unit} | " + " | ".join(cells) + " |")
    classification = [row for row in rows if row["metric"] == "roc_auc"]
    if len(classification) > 1:
        cells = [format_score("roc_auc", classification_mean(classification, v)) for v in variants]
        for key in ("molclr_paper", "molclr_rerun"):
            refs = [row.get(key) for row in classification]
            cells.append(f"{sum(refs) / len(refs):.1f}" if None not in refs else "-")
        lines.append(f"| mean of {len(classification)} classification sets | ROC-AUC % | " + " | ".join(cells) + " |")
    lines += ["", budget, "Scores are test means ± std (ddof=1) over seeds (ROC-AUC in %, RMSE/MAE in target units). "
              "MolCLR paper: MolCLR-GIN, Wang et al. 2022 (regression figures via SMI-TED, Tables 3-4); MolCLR "
              "re-run: InstructMol, Table 3 (GEM protocol).", *notes, ""]
    return "\n".join(lines)


def classification_mean(rows: list[dict], variant: str) -> Optional[float]:
    """Mean test ROC-AUC of ``variant`` over the classification rows, or None if one lacks it."""
    values = [row[variant]["mean"] for row in rows if row["metric"] == "roc_auc" and variant in row]
    complete = len(values) == sum(row["metric"] == "roc_auc" for row in rows)
    return sum(values) / len(values) if values and complete else None


def summarize(config, data: LabelledData, groups: list, per_seed: dict,
              encoder_config, source: str, splits: list[str], seconds: float, cpu_seconds: float) -> dict:
    """``results.json``: scores per seed and model, their mean and spread, the budget and the full configuration.

    ``seconds`` is wall time; ``cpu_hours`` the CPU time the operating system counted for the run's process and
    its children (worker processes, chemprop), which stays right when the run shared the cores or was paused.
    Both count every session of a run that was interrupted and resumed (up to each model's last checkpoint).
    """
    seeds = []
    for seed, models in per_seed.items():
        seeds.append({"seed": seed, "valid": float(np.mean([m.valid for m in models])),
                      "test": float(np.mean([m.test for m in models])),
                      "models": {g.name: asdict(m) for g, m in zip(groups, models)}})
    valid_mean, valid_std = aggregate([s["valid"] for s in seeds])
    test_mean, test_std = aggregate([s["test"] for s in seeds])
    if config.method == "finetune":
        method = ("pretrained" if config.pretrained else "random-init") + ("-frozen" if config.freeze_encoder else "")
    else:
        method = config.method
    return {
        "dataset": data.name, "metric": data.metric, "task_type": data.task_type, "tasks": data.tasks,
        "method": method, "protocol": config.protocol, "split": config.split, "split_files": splits,
        "molecules": len(data), "invalid_rows": len(data.invalid),
        "seeds": seeds, "valid_mean": valid_mean, "valid_std": valid_std,
        "mean": test_mean, "std": test_std, "std_note": "test score across seeds, sample std (ddof=1)",
        "score_note": "scores are fractions (ROC-AUC 0.812) or in target units (RMSE/MAE); tables show ROC-AUC in %",
        "encoder": encoder_config.to_dict() if config.method == "finetune" else None,
        "encoder_source": source if config.method == "finetune" else None,
        "budget": {"epochs": config.epochs, "batch_size": config.batch_size, "patience": config.patience,
                   "max_train_molecules": config.max_train_molecules, "seeds": list(config.seeds),
                   "epochs_run": [m.epochs_run for models in per_seed.values() for m in models]},
        "seconds": seconds, "cpu_hours": cpu_seconds / 3600,
        "molssl_version": __version__, "config": config.to_dict(),
    }


def write_history(out_dir: Path, metric: str) -> None:
    """``history.jsonl``: training loss (mean over the epoch) and validation metric per epoch."""
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    losses = {r["epoch"]: r["loss"] for r in records if "loss" in r}
    lines = [json.dumps({"epoch": r["epoch"], "train_loss": losses.get(r["epoch"]), f"valid_{metric}": r[f"valid_{metric}"]})
             for r in records if f"valid_{metric}" in r]
    (out_dir / "history.jsonl").write_text("".join(line + "\n" for line in lines))


def write_predictions(path: Path, data: LabelledData, positions: np.ndarray, tasks: Sequence[str],
                       y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """``test_predictions.csv``: input row, SMILES, and per task the label and the prediction."""
    smiles = data.store.smiles(positions)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "smiles", *[c for t in tasks for c in (t, f"{t}_pred")]])
        for i, position in enumerate(positions):
            cells = [v for j in range(len(tasks)) for v in (_cell(y_true[i, j]), repr(float(y_pred[i, j])))]
            writer.writerow([int(data.rows[position]), smiles[i], *cells])


def _cell(value: float) -> str:
    return "" if np.isnan(value) else repr(float(value))


def write_invalid(path: Path, invalid: list[tuple[int, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "smiles", "reason"])
        writer.writerows(invalid)


def run_then_report(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], None],
                    report: Callable[[argparse.Namespace], str]) -> None:
    """The ``main`` of a results script under ``benchmarks/``: run the cells asked for (finished ones are reused)
    unless ``--report``, then print the table of all that exists, ending with the CPU model and the date so that
    every figure keeps its machine."""
    from molssl.core.precision import cpu_description

    parser.add_argument("--report", action="store_true", help="only print the table of what exists")
    args = parser.parse_args()
    if not args.report:
        run(args)
    print(report(args))
    print(f"\nCPU: {cpu_description()[0]}; {time.strftime('%Y-%m-%d', time.gmtime())}")
