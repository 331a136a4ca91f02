"""Model-quality ablation: featurizer (molclr, rich) x molecule features (none, rdkit2d, rdkit2d+ecfp4) x
initialization (random, pre-trained), beside RF-ECFP4, RF-RDKit2D, Delaney's equation and chemprop v2,
on the same scaffold splits, one seed per output folder (so seeds can be added later and runs resume).

Every cell is a ``molssl benchmark`` run (:func:`molssl.chem.tasks.benchmark.run_benchmark`) in
``OUT/seed<S>/<featurizer>-<features>`` (GNN rows) or ``OUT/seed<S>/baselines``; ``--report`` only
reads what exists and prints the table: mean ± std over the seeds found, the seeds per cell, and
the CPU time of the runs.

Example (seed 0, then the table):
  python benchmarks/quality_ablation.py --out runs/ablation --seeds 0 \\
      --encoder molclr=runs/pretrain/molclr-mix --encoder rich=runs/pretrain/rich-chembl
  python benchmarks/quality_ablation.py --out runs/ablation --report

The two arms of a pair run at the same time into their own folders are read together with ``--read-also``:
  python benchmarks/quality_ablation.py --out runs/ft-pretrained --read-also runs/ft-random --report
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from molssl.chem.data.datasets import get_spec
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import DESCRIPTOR_SCALINGS
from molssl.chem.tasks.benchmark import BenchmarkConfig, run_benchmark
from molssl.chem.tasks.reports import format_score

DATASETS = ("esol", "freesolv", "lipo", "bbbp", "bace", "clintox")
FULL_TABLE = ("bbbp", "bace", "clintox", "tox21", "sider", "esol", "freesolv", "lipo", "qm7")
FEATURIZERS = ("molclr", "rich")
FEATURES = ("none", "rdkit2d", "rdkit2d+ecfp4")
BASELINES = ("rf-ecfp", "rf-rdkit2d", "delaney", "chemprop")


def run(args: argparse.Namespace) -> None:
    encoders = dict(item.split("=", 1) for item in args.encoder)
    configs = [c.split(":", 1) for c in args.configs] if args.configs is not None else [
        (featurizer, features) for featurizer in args.featurizers for features in args.features]
    for seed in args.seeds:
        root = Path(args.out) / f"seed{seed}"
        for featurizer, features in configs:
            variants = [v for v in args.init if v != "pretrained" or featurizer in encoders]
            suffix = "" if args.descriptor_scaling == "standard" else f"-{args.descriptor_scaling}"
            config = BenchmarkConfig(
                out=str(root / f"{featurizer}-{features}{suffix}"), pretrained=encoders.get(featurizer),
                datasets=list(args.datasets), variants=variants, seeds=[seed], epochs=args.epochs,
                patience=args.patience, probe_epochs=args.probe_epochs, features=features,
                descriptor_scaling=args.descriptor_scaling, class_weight=args.class_weight,
                encoder=EncoderConfig(featurizer=featurizer), precision=args.precision, data_dir=args.data_dir,
                protocol=args.protocol, threads=1)
            run_benchmark(config, log=lambda m: print(m, flush=True))
        if args.baselines:
            config = BenchmarkConfig(out=str(root / "baselines"), datasets=list(args.datasets),
                                     variants=list(args.baselines), seeds=[seed], data_dir=args.data_dir,
                                     protocol=args.protocol, threads=args.baseline_threads)
            run_benchmark(config, log=lambda m: print(m, flush=True))


def collect(*outs: Path) -> dict:
    """{(row label, dataset): [(seed, test score, CPU seconds)]} from every cell's results.json below each of
    ``outs`` (one folder, or the arms of a pair run into separate folders).

    CPU seconds are ``cpu_hours`` x 3600: the operating system's count in runs from 2026-12-03 (fourth session)
    on, wall time x threads before (so those overstate runs that were paused or shared the cores). Runs that were
    interrupted and resumed before 2026-12-05's eighteenth session count their last session only.

    Read per cell, not from the ``benchmark.json`` of a seed's folder: that file describes the last
    ``molssl benchmark`` call only, and a later call for other data sets into the same folder replaces it.
    """
    cells: dict = {}
    for path in sorted(path for out in outs for path in out.glob("seed*/*/*/*/results.json")):
        variant_dir = path.parent
        group = variant_dir.parent.parent.name  # a configuration such as molclr-rdkit2d, or "baselines"
        variant = variant_dir.name
        if variant not in ("random-init", "pretrained", *BASELINES):
            continue
        seed = int(variant_dir.parent.parent.parent.name.removeprefix("seed"))
        result = json.loads(path.read_text())
        label = variant if group == "baselines" else f"{group} {variant}"
        cells.setdefault((label, result["dataset"]), []).append(
            (seed, result["mean"], result.get("cpu_hours", float("nan")) * 3600))
    return cells


def report(cells: dict, datasets: tuple[str, ...]) -> str:
    labels = sorted({label for label, _ in cells}, key=lambda l: (l in BASELINES, l))
    specs = [get_spec(d) for d in datasets]
    header = "| configuration | " + " | ".join(f"{s.title} ({'ROC-AUC %' if s.metric == 'roc_auc' else s.metric.upper()})"
                                              for s in specs) + " | CPU h |"
    lines = [header, "|---|" + "---|" * (len(specs) + 1)]
    for label in labels:
        row, seconds = [], 0.0  # CPU seconds
        for spec in specs:
            found = cells.get((label, spec.name), [])
            scores = [s for _, s, _ in found]
            seconds += sum(t for _, _, t in found if np.isfinite(t))
            if not scores:
                row.append("-")
                continue
            std = float(np.std(scores, ddof=1)) if len(scores) > 1 else None
            row.append(f"{format_score(spec.metric, float(np.mean(scores)), std)} (n={len(scores)})")
        lines.append(f"| {label} | " + " | ".join(row) + f" | {seconds / 3600:.2f} |")
    for title, field in (("MolCLR paper", "molclr"), ("MolCLR re-run (GEM protocol)", "molclr_rerun")):
        values = [getattr(spec, field) for spec in specs]
        lines.append(f"| {title} | " + " | ".join("-" if v is None else (f"{v:.1f}" if spec.metric == "roc_auc" else
                                                                         f"{v:.3f}") for v, spec in zip(values, specs))
                     + " | |")
    lines.append("")
    lines.append("Test scores on the DeepChem scaffold split: mean ± std (ddof=1) over the seeds found (n); "
                 "CPU h: CPU time of the runs (the operating system's count, every session of a resumed run; "
                 "wall time x threads in runs before 2026-12-03's fourth session, the last session only in runs "
                 "resumed before 2026-12-05's eighteenth). References: "
                 "MolCLR paper (Wang et al. 2022; regression via SMI-TED Tables 3-4) and MolCLR re-run under the GEM "
                 "protocol (InstructMol Table 3); their splits and budgets differ from ours.")
    return "\n".join(lines)


def paired_gains(cells: dict, datasets: tuple[str, ...]) -> str:
    """Pre-trained minus random init, per configuration and seed, on the mean over ``datasets`` (ROC-AUC
    sets only): the pre-training target's measure. A seed counts only where both initializations have
    every data set, so the two means always cover the same molecules."""
    names = [d for d in datasets if get_spec(d).metric == "roc_auc"]
    groups = sorted({label.rsplit(" ", 1)[0] for label, _ in cells if label.endswith((" pretrained", " random-init"))})
    lines = []
    for group in groups:
        by_seed: dict = {}
        for init in ("pretrained", "random-init"):
            for name in names:
                for seed, value, _ in cells.get((f"{group} {init}", name), []):
                    by_seed.setdefault(seed, {}).setdefault(init, {})[name] = value
        gains = []
        for seed in sorted(by_seed):
            found = by_seed[seed]
            if all(len(found.get(init, {})) == len(names) for init in ("pretrained", "random-init")):
                means = {init: 100 * float(np.mean(list(found[init].values()))) for init in found}
                gains.append((seed, means["pretrained"], means["random-init"]))
        if gains:
            per_seed = ", ".join(f"seed {s}: {p:.1f} - {r:.1f} = {p - r:+.1f}" for s, p, r in gains)
            average = float(np.mean([p - r for _, p, r in gains]))
            lines.append(f"| {group} | {len(gains)} | {per_seed} | **{average:+.1f}** |")
    if not lines:
        return ""
    return "\n".join([f"Pre-trained minus random init, mean test ROC-AUC % over {', '.join(names)} (paired by seed):", "",
                      "| configuration | seeds | per seed | mean gain |", "|---|---|---|---|", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--featurizers", nargs="+", default=list(FEATURIZERS))
    parser.add_argument("--features", nargs="+", default=list(FEATURES))
    parser.add_argument("--configs", nargs="*", help="FEATURIZER:FEATURES pairs instead of the full grid (none: baselines only)")
    parser.add_argument("--init", nargs="+", default=["random-init", "pretrained"], help="GNN columns to run")
    parser.add_argument("--protocol", default="auto", help="molclr-per-target, multitask or auto (the default)")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument("--baseline-threads", type=int, default=1,
                        help="threads of a forest or chemprop baseline (2 only when it runs alone on the 2 cores)")
    parser.add_argument("--encoder", action="append", default=[], help="FEATURIZER=encoder (shipped name or run dir)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--probe-epochs", type=int, default=0, help="LP-FT: head-only epochs before fine-tuning")
    parser.add_argument("--class-weight", default="balanced")
    parser.add_argument("--descriptor-scaling", default="standard", choices=DESCRIPTOR_SCALINGS,
                        help="standard or quantile; quantile rows are named <featurizer>-<features>-quantile")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"))
    parser.add_argument("--report", action="store_true", help="only print the table of what exists")
    parser.add_argument("--read-also", nargs="+", default=[], metavar="DIR",
                        help="more run folders read into the table and the paired gains (e.g. the other arm of a "
                             "pair, run into its own --out at the same time)")
    args = parser.parse_args()
    for folder in args.read_also:
        if not Path(folder).is_dir():
            raise ValueError(f"--read-also {folder}: no such folder")
    started = time.perf_counter()
    if not args.report:
        run(args)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), platform.processor())
    cells = collect(Path(args.out), *map(Path, args.read_also))
    print(report(cells, tuple(args.datasets)))
    gains = paired_gains(cells, tuple(args.datasets))
    if gains:
        print("\n" + gains)
    print(f"\nCPU: {model}; {time.strftime('%Y-%m-%d', time.gmtime())}; this invocation {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
