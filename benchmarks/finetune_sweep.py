"""Fine-tuning hyper-parameters chosen on the validation split: does a per-set search close the gaps?

Every shipped model and every ablation row fine-tunes with MolCLR's settings (Adam lr 5e-4 head /
1e-4 encoder, weight decay 1e-6, dropout 0.3, batch 32). This asks whether those settings, not the
model, leave BACE and SIDER behind RF-ECFP4 and Lipophilicity behind chemprop. Each setting below
changes one group of them; each runs one ablation configuration (featurizer, molecule features,
descriptor scaling, initialization: the best configuration by default) with the given seeds on the
same scaffold splits, through the harness's own ``run_variant`` (finished runs are reused). The
report gives, per data set and setting, the mean validation and test scores over the seeds, and
marks the setting the validation scores select: the only one whose test score counts.

``--folds K`` runs every setting on each of K scaffold folds of the training + validation molecules instead
(``molssl finetune --folds``; the test split untouched, folders ``<out>/<setting>/seed<N>/fold<F>/...``), and the
report chooses by the mean over folds and seeds: every training molecule validated once, ~9x the molecules of one
validation split, with the per-fold differences to the chosen setting beside it. ``--fold-acyclic spread`` shares
the molecules without a ring out over the folds instead of leaving them one scaffold group that fills fold 0.

  OMP_NUM_THREADS=1 python benchmarks/finetune_sweep.py --out runs/sweep --datasets bace --seeds 0 1 2
  python benchmarks/finetune_sweep.py --out runs/sweep --datasets bace --report
  OMP_NUM_THREADS=1 python benchmarks/finetune_sweep.py --out runs/cv --datasets bace --seeds 0 --folds 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.tasks.benchmark import BenchmarkConfig, run_variant, variant_config
from molssl.chem.tasks.reports import run_then_report
from molssl.chem.tasks.finetune_config import FinetuneConfig
from molssl.chem.data.datasets import get_spec
from molssl.chem.data.splits import FOLD_ACYCLIC
from molssl.chem.tasks.metrics import score

SETTINGS = {
    "molclr": {},  # the defaults every other table uses
    "dropout-0.1": {"dropout": 0.1},
    "dropout-0.5": {"dropout": 0.5},
    "lr-x0.3": {"lr_head": 1.5e-4, "lr_encoder": 3e-5},
    "lr-x3": {"lr_head": 1.5e-3, "lr_encoder": 3e-4},
    "weight-decay-1e-4": {"weight_decay": 1e-4},
    "dropout-0.1-lr-x0.3": {"dropout": 0.1, "lr_head": 1.5e-4, "lr_encoder": 3e-5},  # BACE's two best, together
    # the readout (random init only: a pre-trained encoder keeps the pooling it was trained with). GIN's authors
    # argue for the sum (Xu et al., ICLR 2019); counts of substructures are what ECFP4 forests see on BACE
    "pool-add": {"pool": "add"},
    "pool-max": {"pool": "max"},
}
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"


def configuration(featurizer: str, features: str, scaling: str) -> tuple[str, str]:
    """quality_ablation.py's folder name of a configuration, and the descriptor scaling it really has: without RDKit
    descriptors there is nothing to scale, so a graph-only run is the plain ``rich-none`` whatever the default."""
    if "rdkit2d" not in features:
        scaling = "standard"
    return f"{featurizer}-{features}" + ("" if scaling == "standard" else f"-{scaling}"), scaling


def run(args: argparse.Namespace) -> None:
    row, args.descriptor_scaling = configuration(args.featurizer, args.features, args.descriptor_scaling)
    folds = range(args.folds) if args.folds else [None]
    for seed, fold, name in ((seed, fold, name) for seed in args.seeds for fold in folds for name in args.settings):
        where = Path(args.out) / name / f"seed{seed}" / ("" if fold is None else f"fold{fold}") / row
        config = BenchmarkConfig(  # quality_ablation.py's layout, so ship_zoo.py --ablation OUT/SETTING reads it
            out=str(where), pretrained=args.encoder, datasets=list(args.datasets),
            variants=[args.init], seeds=[seed], epochs=100, patience=10, features=args.features,
            descriptor_scaling=args.descriptor_scaling, class_weight="balanced",
            encoder=EncoderConfig(featurizer=args.featurizer), data_dir=args.data_dir, protocol="auto", threads=1)
        for dataset in config.datasets:
            started = time.perf_counter()
            encoder = EncoderConfig(featurizer=args.featurizer)
            finetune = with_setting(variant_config(config, dataset, args.init, encoder), name)
            if fold is not None:
                finetune = replace(finetune, folds=args.folds, fold=fold, fold_acyclic=args.fold_acyclic)
            results, reused = run_variant(finetune, log=lambda message: None)
            print(f"{dataset} {name} seed {seed}{'' if fold is None else f' fold {fold}'}: "
                  f"valid {results['valid_mean']:.4f} test {results['mean']:.4f}"
                  f" ({'reused' if reused else f'{time.perf_counter() - started:.0f} s'})", flush=True)


def with_setting(finetune: FinetuneConfig, name: str) -> FinetuneConfig:
    """The run's settings with one sweep setting applied (``pool`` goes to the encoder's readout)."""
    changes = dict(SETTINGS[name])
    pool = changes.pop("pool", None)
    finetune = replace(finetune, **changes)
    if pool is None:
        return finetune
    if finetune.pretrained is not None:
        raise SystemExit(f"--settings {name} changes a randomly initialized encoder's readout; a pre-trained "
                         "encoder keeps the pooling it was trained with (use --init random-init)")
    return replace(finetune, encoder=replace(finetune.encoder, pool=pool))


def collect(out: Path, dataset: str) -> dict[str, list[tuple[int, float, float, float]]]:
    """setting -> [(seed, valid, test, CPU hours)] of the finished runs."""
    found: dict[str, list] = {}
    for results_file in sorted(out.glob(f"*/seed*/*/{dataset}/*/results.json")):
        setting, seed = results_file.parts[-6], int(results_file.parts[-5][4:])
        results = json.loads(results_file.read_text())
        found.setdefault(setting, []).append((seed, results["valid_mean"], results["mean"], results["cpu_hours"]))
    return found


def _sample_std(values: list[float]) -> float:
    """Across seeds with ddof=1, as every other table of the results files (0 for one seed)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _scoring(dataset: str):
    """(spec, higher is better, scale to print: ROC-AUC in %) of a data set's metric."""
    spec = get_spec(dataset)
    higher = spec.metric == "roc_auc"
    return spec, higher, 100 if higher else 1


def _with_runs(out: Path, datasets: list[str], reader):
    """(spec, higher is better, print scale, runs) for each data set that ``reader(out, name)`` finds runs of."""
    for dataset in datasets:
        spec, higher, scale = _scoring(dataset)
        found = reader(out, spec.name)
        if found:
            yield spec, higher, scale, found


def report(out: Path, datasets: list[str]) -> str:
    lines = []
    for spec, higher, scale, found in _with_runs(out, datasets, collect):
        seeds = set.intersection(*(set(s for s, *_ in runs) for runs in found.values()))
        rows = {name: [r for r in runs if r[0] in seeds] for name, runs in found.items()}
        mean = {name: (statistics.mean(r[1] for r in runs), statistics.mean(r[2] for r in runs),
                       _sample_std([r[2] for r in runs]), sum(r[3] for r in runs)) for name, runs in rows.items()}
        chosen = (max if higher else min)(mean, key=lambda name: mean[name][0])
        lines += [f"\n{spec.title} ({spec.metric}), seeds {sorted(seeds)} (the seeds every setting has)\n",
                  "| setting | validation | test | CPU h |", "|---|---|---|---|"]
        for name in [n for n in SETTINGS if n in mean]:
            valid, test, spread, cpu_hours = mean[name]
            mark = " (chosen by validation)" if name == chosen else ""
            lines.append(f"| {name}{mark} | {valid * scale:.3f} | {test * scale:.3f} ± {spread * scale:.3f} "
                         f"| {cpu_hours:.2f} |")
    return "\n".join(lines)


def fold_runs(out: Path, dataset: str, config: str = "*", init: str = "*") -> dict[str, dict[tuple[int, int], Path]]:
    """setting -> (seed, fold) -> finished run folder of the ``--folds`` runs under ``out``
    (``<out>/<setting>/seed<N>/fold<F>/<config>/<dataset>/<init>``); ship_zoo.py reads them the same way."""
    found: dict[str, dict[tuple[int, int], Path]] = {}
    for results_file in sorted(out.glob(f"*/seed*/fold*/{config}/{dataset}/{init}/results.json")):
        setting, seed, fold = results_file.parts[-7], *(int(part[4:]) for part in results_file.parts[-6:-4])
        found.setdefault(setting, {})[seed, fold] = results_file.parent
    return found


def fold_ensemble_test(runs: list[Path], metric: str) -> float:
    """The test score of the fold models of one (setting, seed) as one ensemble: per test molecule the mean of their
    predictions (every fold keeps the scaffold split's test part), scored per target file, then the mean over those."""
    scores = []
    for relative in sorted(path.relative_to(runs[0]) for path in runs[0].rglob("test_predictions.csv")):
        frames = [pd.read_csv(run / relative) for run in runs]
        if any(not frame["row"].equals(frames[0]["row"]) for frame in frames):
            raise SystemExit(f"the fold models under {runs[0].parents[2]} were tested on different molecules")
        columns = [column for column in frames[0].columns if column.endswith("_pred")]
        labels = frames[0][[column.removesuffix("_pred") for column in columns]].to_numpy(float)
        scores.append(score(metric, labels, np.mean([frame[columns].to_numpy(float) for frame in frames], axis=0)))
    return float(np.mean(scores)) if scores else float("nan")


def cv_report(out: Path, datasets: list[str]) -> str:
    """The cross-validation table: per setting the mean validation score over the (seed, fold) runs every setting
    has, the setting with the best one chosen, and each other setting's per-run differences to the chosen one.
    The test columns (the fold models alone, and the folds of one seed as one ensemble) are not used to choose."""
    lines = []
    for spec, higher, scale, found in _with_runs(out, datasets, fold_runs):
        runs = sorted(set.intersection(*(set(by_run) for by_run in found.values())))
        results = {name: [json.loads((found[name][run] / "results.json").read_text()) for run in runs]
                   for name in found}
        valid = {name: [r["valid_mean"] for r in results[name]] for name in found}
        chosen = (max if higher else min)(valid, key=lambda name: statistics.mean(valid[name]))
        seeds = sorted({seed for seed, _ in runs})
        lines += [f"\n{spec.title} ({spec.metric}), {len(runs)} (seed, fold) runs per setting: "
                  f"{', '.join(f'{s}/{f}' for s, f in runs)}\n",
                  "| setting | cross-validation | runs better than the chosen | mean difference | "
                  "test, fold models (not used) | test, each seed's folds as one ensemble (not used) | CPU h |",
                  "|---|---|---|---|---|---|---|"]
        for name in [n for n in SETTINGS if n in found]:
            differences = [(a - b) * scale for a, b in zip(valid[name], valid[chosen])]
            better = sum(d > 0 if higher else d < 0 for d in differences)
            test = [r["mean"] * scale for r in results[name]]
            ensembles = [fold_ensemble_test([found[name][run] for run in runs if run[0] == seed], spec.metric) * scale
                         for seed in seeds]
            mark = " (chosen)" if name == chosen else ""
            versus = "" if name == chosen else f"{better} of {len(runs)}"
            lines.append(f"| {name}{mark} | {statistics.mean(valid[name]) * scale:.3f} ± "
                         f"{_sample_std(valid[name]) * scale:.3f} | {versus} | "
                         f"{'' if name == chosen else f'{statistics.mean(differences):+.3f}'} | "
                         f"{statistics.mean(test):.3f} | {' / '.join(f'{e:.3f}' for e in ensembles)} | "
                         f"{sum(r['cpu_hours'] for r in results[name]):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/sweep")
    parser.add_argument("--datasets", nargs="+", default=["bace"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--featurizer", default="rich")
    parser.add_argument("--features", default="rdkit2d")
    parser.add_argument("--descriptor-scaling", default="quantile")
    parser.add_argument("--init", default="random-init", choices=["random-init", "pretrained"])
    parser.add_argument("--encoder", default=None, help="shipped name or run dir, for --init pretrained")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--folds", type=int, default=0, help="cross-validation folds of the training + validation "
                        "molecules (0: the scaffold split's own validation part)")
    parser.add_argument("--fold-acyclic", default="together", choices=FOLD_ACYCLIC,
                        help="with --folds: molecules without a ring as one scaffold group or shared out (molssl "
                             "finetune --fold-acyclic)")
    run_then_report(parser, run, lambda args: (cv_report if args.folds else report)(Path(args.out), args.datasets))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
