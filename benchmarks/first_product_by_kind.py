"""What taking GIN's first product over the batch's atom kinds saves, timed on the encoder alone.

``molssl.chem.nn.encoders`` (fp32 on the CPU) computes the first layer's (atoms x 300) @ (300 x 600) product over the
batch's distinct atom kinds instead of its atoms. ``benchmarks/pretrain_throughput.py`` times the whole step both
ways (its rows (e3)), but on a noisy VM a whole step varies by +-10% from round to round, more than this saves. Here
only the encoder's forward and backward run (first layer alone, then the whole encoder), both ways alternating in
``--rounds`` rounds (each round times each way ``--repeats`` times), and the medians and their ratio are printed.

    OMP_NUM_THREADS=1 python benchmarks/first_product_by_kind.py --smiles ../shared/data/pretrain/moses_train.csv.gz
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from molssl.chem.data.featurizers import get_featurizer
from molssl.chem.data.store import build_store
from molssl.chem.nn.augment import mask_atoms
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder, per_atom_first_product
from molssl.core.device import resolve_device
from molssl.core.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_throughput import first_smiles, write_sample  # noqa: E402


def first_layer(model: MolecularEncoder, batch) -> None:
    """Forward and backward of the first GIN layer (from the atom embeddings on), whichever way is in effect."""
    graph = model.neighbourhood(batch)
    if model._folds_first_product(batch, graph):
        kinds, inverse = model._atom_kinds(batch.x)
        out = model.gnns[0].forward_by_kind(model._atom_embedding(kinds), graph.by_kind(inverse, kinds.shape[0]))
    else:
        out = model.gnns[0](model._atom_embedding(batch.x), graph)
    out.sum().backward()


def whole_encoder(model: MolecularEncoder, batch) -> None:
    model.represent(batch).sum().backward()


def compare(work: Callable[[], None], rounds: int, repeats: int) -> dict:
    """Milliseconds per call, both ways alternating (the first of a round alternates too); medians and ratio."""
    times: dict[str, list[float]] = {"kinds": [], "atoms": []}
    for r in range(rounds):
        for way in (("kinds", "atoms") if r % 2 == 0 else ("atoms", "kinds")):
            with per_atom_first_product() if way == "atoms" else contextlib.nullcontext():
                work()  # warm-up
                start = time.process_time()
                for _ in range(repeats):
                    work()
                times[way].append((time.process_time() - start) / repeats * 1000)
    kinds, atoms = (float(np.median(times[w])) for w in ("kinds", "atoms"))
    return {"kinds_ms": kinds, "atoms_ms": atoms, "atoms_over_kinds": atoms / kinds,
            "rounds_won_by_kinds": sum(k < a for k, a in zip(times["kinds"], times["atoms"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smiles", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--featurizers", nargs="+", default=["molclr", "rich"])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    resolve_device("cpu")
    keep_freed_memory()
    from molssl.core.precision import cpu_description

    results: dict = {"machine": f"{cpu_description()[0]}, torch {torch.__version__}, 1 thread, CPU-time clock",
                     "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        sample = write_sample(first_smiles(args.smiles, args.batch_size), Path(tmp))
        for featurizer in args.featurizers:
            store = build_store(sample, featurizer=featurizer, cache_dir=Path(tmp) / featurizer, progress=False)
            batch = mask_atoms(store.gather(np.arange(len(store))), 0.25, torch.Generator().manual_seed(0),
                               get_featurizer(featurizer).atom_mask)  # a MolCLR view's masking
            torch.manual_seed(0)
            model = MolecularEncoder(EncoderConfig(featurizer=featurizer)).train()
            results[f"{featurizer}_atoms"] = batch.num_atoms
            results[f"{featurizer}_kinds"] = len(model._atom_kinds(batch.x)[0])
            for name, work in (("first_layer", first_layer), ("encoder", whole_encoder)):
                results[f"{featurizer}_{name}"] = compare(lambda: work(model, batch), args.rounds, args.repeats)
                print(featurizer, name, results[f"{featurizer}_{name}"], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
