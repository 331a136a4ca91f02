"""Does pre-training pay when labels are few? Pre-trained against random init with 50-400 training molecules.

On the full training sets the pre-trained encoders gain about +1 ROC-AUC point over random weights
(quality_ablation.md), far from the +3 issue 16 asks. Self-supervised pre-training is expected to matter
most where labelled data are scarce (Hu et al., ICLR 2020), which is also the chemist's usual case. This
caps the scaffold training split at N molecules (a seeded random subset: each seed draws its own), keeps
the validation and test splits whole, and runs per configuration both initializations with MolCLR's
fine-tuning (up to 100 epochs, patience 10, balanced class weights) through the harness's ``run_variant``
(finished runs are reused, interrupted ones continued), beside RF-ECFP4 on the same capped split.

  OMP_NUM_THREADS=1 python benchmarks/low_data.py --out runs/low-data --datasets bbbp bace esol --seeds 0 1 2
  python benchmarks/low_data.py --out runs/low-data --datasets bbbp bace esol --report
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Optional

from molssl.chem.data.datasets import get_spec
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.serve.zoo import DEFAULT_ENCODERS
from molssl.chem.tasks.benchmark import BenchmarkConfig, run_variant, variant_config
from molssl.chem.tasks.reports import run_then_report

# featurizer:features -> the encoder its pre-trained column starts from by default (the shipped encoder of that
# vocabulary): the best configuration, the faithful one, and the graph-only model on the rich vocabulary. The
# study of 2026-12-05 (low_data.md, nineteenth session) ran with rich-gin-chembl, since replaced.
CONFIGS = {"rich:rdkit2d": DEFAULT_ENCODERS["rich"], "molclr:none": DEFAULT_ENCODERS["molclr"],
           "rich:none": DEFAULT_ENCODERS["rich"]}
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"


def cell_config(out: Path, row: str, cap: int, seed: int, dataset: str, data_dir: str,
                encoders: Optional[dict[str, str]] = None) -> BenchmarkConfig:
    """One capped cell's harness settings; ``row`` is a key of :data:`CONFIGS` or ``baselines``; ``encoders``
    overrides :data:`CONFIGS`' encoder of a row."""
    featurizer, features = row.split(":") if row != "baselines" else ("rich", "none")
    return BenchmarkConfig(
        out=str(out / row.replace(":", "-") / f"cap{cap}" / f"seed{seed}"), datasets=[dataset],
        pretrained={**CONFIGS, **(encoders or {})}.get(row), seeds=[seed], epochs=100, patience=10, features=features,
        class_weight="balanced", encoder=EncoderConfig(featurizer=featurizer), max_train_molecules=cap,
        data_dir=data_dir, protocol="auto", threads=1, progress=False)


def run(args: argparse.Namespace) -> None:
    for cap in args.caps:
        for seed in args.seeds:
            for dataset in args.datasets:
                cells = [(row, init) for row in args.configs for init in ("pretrained", "random-init")]
                cells += [("baselines", baseline) for baseline in args.baselines]
                for row, variant in cells:
                    config = cell_config(Path(args.out), row, cap, seed, dataset, args.data_dir, dict(args.encoder))
                    finetune = variant_config(config, dataset, variant, config.encoder)
                    started = time.perf_counter()
                    results, reused = run_variant(finetune, log=lambda message: None)
                    print(f"{dataset} cap {cap} seed {seed} {row} {variant}: valid {results['valid_mean']:.4f} "
                          f"test {results['mean']:.4f} ({'reused' if reused else f'{time.perf_counter() - started:.0f} s'})",
                          flush=True)


def collect(out: Path, dataset: str) -> dict[tuple[str, str, int], dict[int, tuple[float, float]]]:
    """(row, variant, cap) -> {seed: (test score, CPU hours)} of the finished runs."""
    found: dict = {}
    for results_file in sorted(out.glob(f"*/cap*/seed*/{dataset}/*/results.json")):
        variant_dir = results_file.parent
        seed_dir = variant_dir.parent.parent
        row, cap, seed = seed_dir.parent.parent.name, int(seed_dir.parent.name[3:]), int(seed_dir.name[4:])
        results = json.loads(results_file.read_text())
        found.setdefault((row, variant_dir.name, cap), {})[seed] = (results["mean"], results["cpu_hours"])
    return found


def _cell(scores: list[float], scale: float) -> str:
    """mean ± population std (n): ROC-AUC in % with one decimal, errors with three."""
    if not scores:
        return "-"
    digits = 1 if scale == 100 else 3
    return f"{statistics.mean(scores) * scale:.{digits}f} ± {statistics.pstdev(scores) * scale:.{digits}f} (n={len(scores)})"


def report(out: Path, datasets: list[str]) -> str:
    lines = []
    for dataset in datasets:
        spec = get_spec(dataset)
        scale = 100 if spec.metric == "roc_auc" else 1
        sign = 1 if spec.metric == "roc_auc" else -1  # a gain is better in the metric's direction
        found = collect(out, spec.name)
        if not found:
            continue
        rows = sorted({row for row, _, _ in found if row != "baselines"})
        baselines = sorted({variant for row, variant, _ in found if row == "baselines"})
        header = [f"{row}: pre-trained | {row}: random init | {row}: paired gain" for row in rows] + baselines
        lines += [f"\n{spec.title} ({spec.metric}{', %' if scale == 100 else ''}; mean ± std over seeds; paired "
                  f"gain = pre-trained minus random init by seed, positive when pre-training helps)\n",
                  "| training molecules | " + " | ".join(header) + " | CPU h |",
                  "|---" * (2 + 3 * len(rows) + len(baselines)) + "|"]
        for cap in sorted({cap for _, _, cap in found}):
            cells, cpu = [], 0.0
            for row in rows:
                pre, rnd = found.get((row, "pretrained", cap), {}), found.get((row, "random-init", cap), {})
                gains = [sign * (pre[s][0] - rnd[s][0]) for s in sorted(set(pre) & set(rnd))]
                cells += [_cell([v[0] for v in pre.values()], scale), _cell([v[0] for v in rnd.values()], scale),
                          _cell(gains, scale)]
            for baseline in baselines:
                cells.append(_cell([v[0] for v in found.get(("baselines", baseline, cap), {}).values()], scale))
            cpu = sum(v[1] for key, runs in found.items() if key[2] == cap for v in runs.values())
            lines.append(f"| {cap} | " + " | ".join(cells) + f" | {cpu:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/low-data")
    parser.add_argument("--datasets", nargs="+", default=["bbbp", "bace", "esol"])
    parser.add_argument("--caps", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="*", default=["rich:rdkit2d", "molclr:none"], choices=list(CONFIGS),
                        help="GNN configurations (bare: baselines only)")
    parser.add_argument("--baselines", nargs="*", default=["rf-ecfp"], help="rf-ecfp, rf-rdkit2d, chemprop (bare: none)")
    parser.add_argument("--encoder", action="append", default=[], metavar="ROW=ENCODER", type=_encoder_option,
                        help="start ROW's pre-trained column from ENCODER (shipped name, run dir or encoder.pt) "
                             "instead of its default; give such runs their own --out")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    run_then_report(parser, run, lambda args: report(Path(args.out), args.datasets))


def _encoder_option(text: str) -> tuple[str, str]:
    row, _, encoder = text.partition("=")
    if row not in CONFIGS or not encoder:
        raise argparse.ArgumentTypeError(f"expected ROW=ENCODER with ROW one of {', '.join(CONFIGS)}, got {text!r}")
    return row, encoder


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
