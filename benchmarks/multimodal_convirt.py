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
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from molssl.core.device import resolve_device
from molssl.core.probe import margin_cells
from molssl.core.runs import training_seconds
from molssl.multimodal.pretrain import (MultimodalConfig, load_module, pretrain, probe, random_init_module, retrieve,
                                        split_data)
from molssl.vision.depictions import LABELS

# Budget per seed, fixed from the measured step time (0.5 s per batch of 128 on one core) before any evaluation.
EPOCHS, BATCH = 15, 128


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", required=True, help="SMILES file read in place (e.g. the ChEMBL subset)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="runs/bench/convirt")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    train, test = split_data(MultimodalConfig(data=args.smiles))
    print(f"{len(train)} training pairs / {len(test)} held-out molecules", flush=True)
    rows = [run_seed(seed, args, train, test, device) for seed in args.seeds]
    print(f"\nMeans over seeds {', '.join(map(str, args.seeds))}; margin = trained - random init:\n")
    print("| score | random | trained | margin | per seed (wins) |")
    print("|---|---|---|---|---|")
    keys = [f"{d}/top{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5)]
    keys += [f"{label}/{p}" for label in LABELS for p in ("linear", "knn")]
    for key in keys:
        print(f"| {key} | {margin_cells([r['random'][key] for r in rows], [r['trained'][key] for r in rows])} |")


if __name__ == "__main__":
    main()
