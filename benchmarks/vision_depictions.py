"""Image SSL on RDKit depictions of ChEMBL molecules (colorization needs colour images): probes vs random init.

Protocol: the first 12,500 usable molecules (12-32 heavy atoms, distinct canonical SMILES) of the SMILES file
are drawn at 64 px by RDKit (element colours on white) at run time; 80/20 split stratified by the ring-count
label (seed 0): 10,000 training and 2,500 test depictions. Each method pre-trains on the training
depictions only. A logistic-regression linear probe and a 20-NN classifier are fit on frozen features of
the training depictions and scored on the test depictions, for three labels computed exactly with RDKit:
``rings`` (<=2, 3, 4, >=5 rings), ``halogen`` (contains F/Cl/Br/I) and ``sulfur``. Baseline: the same encoder
at the exact random initialization its run started from, through the same feature extraction (for
colorization: the lightness channel).

    .venv/bin/python benchmarks/vision_depictions.py --smiles ../shared/data/pretrain/chembl_subset_union.smi.gz \
        --out runs/bench/depictions
    .venv/bin/python benchmarks/vision_depictions.py --out runs/bench/depictions \
        --report benchmarks/results/vision_ssl_round2.md    # tables from the seeds finished so far, no training

Report mode (``--report FILE``, see ``benchmarks/vision_ssl.py``) writes FILE's ``COLOR_TABLE`` block.
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from molssl.core.probe import margin_cells
from molssl.core.runs import training_seconds
from molssl.vision.depictions import LABELS
from molssl.vision.features import feature_extractor, input_kind
from molssl.vision.pretrain import load_module, make_config, pretrain, probe_encoders, random_init_module, split_data
from vision_ssl import (cost_table, depiction_arguments, depiction_run, driver_minutes, finished_runs, pending_note,  # benchmarks/
                        report_cells, seeds_of, write_block)

# Budget per seed, fixed from the measured step time (1.3 s per batch of 128 on one core) before any probe ran.
BUDGET = {"colorization": {"epochs": 6, "batch_size": 128}}
IMAGES = 12_500


def run_seed(method: str, seed: int, args: argparse.Namespace, train, test, device) -> dict:
    budget = BUDGET[method]
    config = make_config(method, args.smiles, max_images=IMAGES, seed=seed, **budget)
    run_dir = Path(args.out) / f"seed{seed}" / method
    started = time.process_time()
    pretrain(config, run_dir, device=device, resume=(run_dir / "checkpoint.pt").is_file(), train=train, progress=False)
    train_cpu_s = time.process_time() - started
    module, stored = load_module(run_dir / "checkpoint.pt", device)
    scores = probe_encoders({"random": feature_extractor(random_init_module(stored)),
                             "trained": feature_extractor(module)}, train, test, device)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    row = {"method": method, "seed": seed, "features": input_kind(feature_extractor(module)), **budget,
           "steps": history[-1]["step"], "train_s": round(training_seconds(run_dir / "metrics.jsonl", budget["batch_size"]), 1),
           "train_cpu_s": round(train_cpu_s, 1), "cpu_s": round(time.process_time() - started, 1),
           **scores, "final_train": history[-1]}
    (run_dir / "probe.json").write_text(json.dumps(row, indent=2))
    return row


def report(args: argparse.Namespace) -> None:
    """Depiction table of every method with a probe.json under --out, with each run's cost (no training)."""
    rows, pending = finished_runs(args.out)
    driver = driver_minutes(args.driver_log)
    lines = ["| method | label | probe | seeds | random | trained | margin (± std) | per seed (wins) |",
             "|---|---|---|---|---|---|---|---|"]
    for method, seed_rows in rows.items():
        for label in LABELS:
            for probe in ("linear", "knn"):
                key = f"{label}/{probe}"
                cells = report_cells([r["random"][key] for r in seed_rows], [r["trained"][key] for r in seed_rows])
                lines.append(f"| {method} | {label} | {probe} | {seeds_of(seed_rows)} | {cells} |")
    costs = [(m, r, (driver.get((m, r["seed"])) or [None])[-1]) for m, seed_rows in rows.items() for r in seed_rows]
    text = (f"Generated {datetime.date.today()} by `--report` from the probe.json files present (features: "
            f"{', '.join(sorted({r['features'] for v in rows.values() for r in v}))}; margin = trained − random init, "
            "its mean ± sample std over the seeds listed):\n\n" + "\n".join(lines) + pending_note(pending)
            + "\n\nCost of each run:\n\n" + cost_table(costs))
    print(text)
    if args.report != "-":
        write_block(args.report, "COLOR_TABLE", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(BUDGET), choices=list(BUDGET))
    depiction_arguments(parser, "runs/bench/depictions", "COLOR_TABLE")
    args, device = depiction_run(parser, report)
    if args is None:
        return
    train, test = split_data(make_config("colorization", args.smiles, max_images=IMAGES))
    print(f"{len(train)} training / {len(test)} test depictions", flush=True)
    rows = {m: [run_seed(m, seed, args, train, test, device) for seed in args.seeds] for m in args.methods}
    print(f"\nMeans over seeds {', '.join(map(str, args.seeds))}; margin = trained - random init:\n")
    print("| method | label | probe | random | trained | margin | per seed (wins) |")
    print("|---|---|---|---|---|---|---|")
    for method, seed_rows in rows.items():
        for label in LABELS:
            for probe in ("linear", "knn"):
                key = f"{label}/{probe}"
                cells = margin_cells([r["random"][key] for r in seed_rows], [r["trained"][key] for r in seed_rows])
                print(f"| {method} | {label} | {probe} | {cells} |")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
