"""ConVIRT between RDKit depictions and SMILES: retrieval among held-out molecules and image probes vs random init.

Protocol: the first 12,500 usable molecules (12-32 heavy atoms, distinct) of the SMILES file are drawn at 64 px;
1,000 are held out (stratified by ring count, seed 0). ConVIRT pre-trains on the other 11,500 pairs (image,
randomized SMILES). Evaluation on the held-out molecules: image->text and text->image retrieval top-1 / top-5
among the 1,000 held-out pairs (un-augmented depiction vs canonical SMILES, cosine of the projections), and a
logistic-regression linear probe and 20-NN of the frozen image encoder for ``rings``, ``halogen`` and
``sulfur`` (fit on the 11,500 training depictions). Baseline: the same two encoders and heads at the exact
random initialization of the run.

    .venv/bin/python benchmarks/multimodal_convirt.py --smiles ../shared/data/pretrain/chembl_subset_union.smi.gz \
        --out runs/bench/convirt
    .venv/bin/python benchmarks/multimodal_convirt.py --out runs/bench/convirt \
        --report benchmarks/results/vision_ssl_round2.md    # tables from the seeds finished so far, no training

Report mode (``--report FILE``, see ``benchmarks/vision_ssl.py``) writes FILE's ``CONVIRT_TABLE`` block.
"""
from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from molssl.core.probe import margin_cells
from molssl.core.runs import training_seconds
from molssl.multimodal.pretrain import (MultimodalConfig, load_module, pretrain, probe, random_init_module, retrieve,
                                        split_data)
from molssl.vision.depictions import LABELS
from vision_ssl import (cost_table, depiction_arguments, depiction_run, driver_minutes, finished_runs, pending_note,  # benchmarks/
                        report_cells, seeds_of, write_block)

# Budget per seed, fixed from the measured step time (0.5 s per batch of 128 on one core) before any evaluation.
EPOCHS, BATCH = 15, 128
SCORES = [f"{d}/top{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5)]
SCORES += [f"{label}/{p}" for label in LABELS for p in ("linear", "knn")]


def run_seed(seed: int, args: argparse.Namespace, train, test, device) -> dict:
    config = MultimodalConfig(data=args.smiles, epochs=EPOCHS, batch_size=BATCH, seed=seed)
    run_dir = Path(args.out) / f"seed{seed}"
    started = time.process_time()
    pretrain(config, run_dir, device=device, resume=(run_dir / "checkpoint.pt").is_file(), train=train, progress=False)
    train_cpu_s = time.process_time() - started
    module, stored = load_module(run_dir / "checkpoint.pt", device)
    modules = {"random": random_init_module(stored), "trained": module}
    retrieval = retrieve(modules, test, stored, device, candidates=1000)
    probes = probe(modules, train, test, device)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    row = {"seed": seed, "epochs": EPOCHS, "batch_size": BATCH, "steps": history[-1]["step"],
           "train_s": round(training_seconds(run_dir / "metrics.jsonl", BATCH), 1),
           "train_cpu_s": round(train_cpu_s, 1), "cpu_s": round(time.process_time() - started, 1),
           "random": {**retrieval["random"], **probes["random"]}, "trained": {**retrieval["trained"], **probes["trained"]},
           "final_train": history[-1]}
    (run_dir / "probe.json").write_text(json.dumps(row, indent=2))
    return row


def report(args: argparse.Namespace) -> None:
    """Retrieval and probe table of the seeds with a probe.json under --out, with each run's cost (no training)."""
    runs, pending = finished_runs(args.out)
    rows = runs.get("", [])
    driver = driver_minutes(args.driver_log)
    lines = ["| score | seeds | random | trained | margin (± std) | per seed (wins) |", "|---|---|---|---|---|---|"]
    for key in SCORES:
        cells = report_cells([r["random"][key] for r in rows], [r["trained"][key] for r in rows])
        lines.append(f"| {key} | {seeds_of(rows)} | {cells} |")
    costs = [("convirt", r, (driver.get(("convirt", r["seed"])) or [None])[-1]) for r in rows]
    final = "; ".join(f"seed {r['seed']}: loss {r['final_train']['loss']:.3f}, positive-pair cosine "
                      f"{r['final_train']['pos_cos']:.3f}, in-batch top-1 {r['final_train']['batch_top1']:.3f}" for r in rows)
    text = (f"Generated {datetime.date.today()} by `--report` from the probe.json files present (retrieval among the "
            "1,000 held-out molecules, chance 0.001 / 0.005; margin = trained − random init, its mean ± sample std "
            "over the seeds listed):\n\n" + "\n".join(lines) + pending_note(pending)
            + f"\n\nFinal training batch ({final}).\n\nCost of each run:\n\n" + cost_table(costs))
    print(text)
    if args.report != "-":
        write_block(args.report, "CONVIRT_TABLE", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    depiction_arguments(parser, "runs/bench/convirt", "CONVIRT_TABLE")
    args, device = depiction_run(parser, report)
    if args is None:
        return
    train, test = split_data(MultimodalConfig(data=args.smiles))
    print(f"{len(train)} training pairs / {len(test)} held-out molecules", flush=True)
    rows = [run_seed(seed, args, train, test, device) for seed in args.seeds]
    print(f"\nMeans over seeds {', '.join(map(str, args.seeds))}; margin = trained - random init:\n")
    print("| score | random | trained | margin | per seed (wins) |")
    print("|---|---|---|---|---|")
    for key in SCORES:
        print(f"| {key} | {margin_cells([r['random'][key] for r in rows], [r['trained'][key] for r in rows])} |")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
