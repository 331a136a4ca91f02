"""Do the shipped property models score what their cards say, on the path a user takes, in fp32 and in bf16?

Every card's test score was computed at export from the fine-tuning runs' own batches, in fp32. A user gets
``molssl predict``: SMILES parsed again, rich features and RDKit descriptors computed again, int8 weights
unpacked, and on a CPU with AMX or AVX512-BF16 ``--precision auto`` runs the network under bf16 autocast.
This script (``molssl models check`` in a table, in both precisions, with timings) rebuilds each model's scaffold test split from the MoleculeNet file (the DeepChem scaffold split
the card names, per target where its protocol is per target), predicts those SMILES through
:class:`~molssl.chem.serve.predict.Predictor` in each precision asked for, and scores them with the card's
metric; in fp32 it also reads the command line's default columns (90% intervals, applicability domain) and
compares their test coverage, width and in-domain share with the card's reliability sentence. It also times the
whole prediction (domain and intervals on, as on the command line) of the first ``--timing`` molecules of
Lipophilicity in each precision, the model given by ``--timing-model``.

Run from the repository root, alone on the machine when the timings matter:
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/zoo_audit.py --data-dir ../shared/data/moleculenet \
        --precision fp32 bf16 --timing 1000 --json /tmp/zoo_audit.json
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from typing import Optional, Sequence

import numpy as np
import torch

from molssl.chem.data.labelled import load_labelled
from molssl.chem.serve import zoo
from molssl.chem.serve.card_check import card_reliability, card_test_split, measure
from molssl.chem.serve.predict import Predictor
from molssl.core.precision import BF16_FLAGS, cpu_description


def predict_seconds(name: str, smiles: Sequence[str], precisions: Sequence[str], repeats: int = 3) -> dict[str, float]:
    """Best wall time per precision of a whole prediction as the command line makes it (intervals and domain on),
    the precisions taking turns so that a busy spell on the machine does not fall on one of them only."""
    predictors = {p: Predictor([name], precision=p, progress=False) for p in precisions}
    for predictor in predictors.values():
        predictor.predict(list(smiles[:16]))  # first call: lazy imports and the domain index
    best = {p: math.inf for p in precisions}
    for _ in range(repeats):
        for precision, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict(list(smiles))
            best[precision] = min(best[precision], time.perf_counter() - start)
    return best


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", nargs="*", default=None,
                        help="default: every shipped property model; none: timing only")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--timing", type=int, default=0, help="molecules of Lipophilicity to time (0: no timing)")
    parser.add_argument("--timing-model", default="esol")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    cards = [zoo.get_card(name) for name in args.models] if args.models is not None else \
        [card for card in zoo.list_models() if card.kind == "property"]
    model, flags = cpu_description()
    units = "/".join(f for f in BF16_FLAGS if f in flags) or "no AMX/AVX512-BF16"
    result = {"cpu": f"{model} ({units})", "torch": torch.__version__, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "models": {}, "timing": {}}
    print(f"CPU {result['cpu']}, torch {result['torch']}, {result['threads']} thread(s)")
    header = (["model", "metric", "test molecules", "card"] + [f"{p} (minus card)" for p in args.precision]
              + ["fp32 interval coverage, width, in domain (card)"])
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for card in cards:
        smiles, labels = card_test_split(card, args.data_dir)
        row = {"metric": card.metric, "test_molecules": len(smiles), "card": card.test_score}
        cells = [card.name, card.metric, str(len(smiles)), f"{card.test_score:.4f}"]
        for precision in args.precision:
            found = measure(card.name, smiles, labels, precision, reliability=precision == "fp32")
            row[precision] = found
            value, invalid = found["score"], found["invalid"]
            cells.append(f"{value:.4f} ({value - card.test_score:+.4f})" + (f", {invalid} invalid" if invalid else ""))
        stated = card_reliability(card)
        row["card_reliability"] = stated
        measured = row.get("fp32", {})
        cells.append(", ".join(f"{key} {measured[key]:.3f} (card {stated[key]:.3f})" for key in stated if key in measured))
        result["models"][card.name] = row
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.timing:
        data = load_labelled(dataset="lipo", data_dir=args.data_dir, featurizer="molclr", extras=(), progress=False)
        smiles = data.store.smiles(np.arange(min(args.timing, len(data.rows))))
        for precision, seconds in predict_seconds(args.timing_model, smiles, args.precision).items():
            result["timing"][precision] = {"molecules": len(smiles), "seconds": seconds}
            print(f"predict -m {args.timing_model}, {len(smiles)} molecules, {precision}: {seconds:.2f} s "
                  f"({len(smiles) / seconds:.0f} molecules/s, best of 3)")
        if {"fp32", "bf16"} <= set(result["timing"]):
            ratio = result["timing"]["fp32"]["seconds"] / result["timing"]["bf16"]["seconds"]
            result["timing"]["bf16_speedup"] = ratio
            print(f"bf16 / fp32 speed: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
