"""How results are reported: one score format everywhere, per-run and per-suite markdown tables.

Files (``results.json``, ``benchmark.json``) keep scores as fractions (ROC-AUC 0.812); tables print
ROC-AUC in percent as papers do (81.2) and RMSE/MAE in the targets' units, and say so.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

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
