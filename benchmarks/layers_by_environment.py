"""What running GIN's layers once per atom environment (and its first product once per atom kind) saves.

``molssl.chem.nn.encoders`` (fp32 on the CPU) takes the first layer's first product over the batch's distinct atom kinds
and, without dropout, runs every layer once per distinct atom environment (``molssl.chem.nn.environments``).
``benchmarks/pretrain_throughput.py`` times the whole step against the per-atom code (its rows (e3)), but on a noisy VM
a whole step varies by +-10% from round to round. Here only the encoder's forward and backward run, three ways
alternating in ``--rounds`` rounds (each round times each way ``--repeats`` times): ``environments`` (the default
path), ``kinds`` (layers per atom, first product over kinds: ``per_atom_layers``) and ``atoms`` (the per-atom code:
``per_atom_first_product``); medians and ratios are printed.

    OMP_NUM_THREADS=1 python benchmarks/layers_by_environment.py --smiles ../shared/data/pretrain/moses_train.csv.gz
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
from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder, per_atom_first_product, per_atom_layers
from molssl.chem.nn.environments import refine
from molssl.core.device import resolve_device
from molssl.core.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_throughput import first_smiles, write_sample  # noqa: E402


WAYS = {"environments": contextlib.nullcontext, "kinds": per_atom_layers, "atoms": per_atom_first_product}


def environment_counts(model: MolecularEncoder, batch) -> list[int]:
    """Distinct atom kinds, then distinct environments after each layer."""
    state = model._atom_kinds(batch.x)[1]
    codes, n_codes = model.bond_codes(batch)
    counts = [int(state.max()) + 1]
    for _ in range(model.config.num_layers):
        state = refine(state, batch.edge_index[0], batch.edge_index[1], codes, n_codes).of_atom
        counts.append(int(state.max()) + 1)
    return counts


def whole_encoder(model: MolecularEncoder, batch) -> None:
    model.represent(batch).sum().backward()


def compare(work: Callable[[], None], rounds: int, repeats: int) -> dict:
    """Milliseconds per call of each way in ``WAYS``, the ways taking turns (the order rotates every round);
    medians, each way's median over the environments' and the rounds the environments won."""
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    names = list(WAYS)
    for r in range(rounds):
        for way in names[r % len(names):] + names[:r % len(names)]:
            with WAYS[way]():
                work()  # warm-up
                start = time.process_time()
                for _ in range(repeats):
                    work()
                times[way].append((time.process_time() - start) / repeats * 1000)
    medians = {way: float(np.median(times[way])) for way in WAYS}
    result = {f"{way}_ms": medians[way] for way in WAYS}
    for way in ("kinds", "atoms"):
        result[f"{way}_over_environments"] = medians[way] / medians["environments"]
    result["rounds_won_by_environments"] = sum(e < min(k, a) for e, k, a in
                                               zip(times["environments"], times["kinds"], times["atoms"]))
    return result


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
            view = MolecularAugmentation(mask_values=get_featurizer(featurizer).atom_mask)  # a MolCLR view
            batch = view(store.gather(np.arange(len(store))), torch.Generator().manual_seed(0))
            torch.manual_seed(0)
            model = MolecularEncoder(EncoderConfig(featurizer=featurizer)).train()
            results[f"{featurizer}_atoms"] = batch.num_atoms
            results[f"{featurizer}_environments_per_layer"] = environment_counts(model, batch)
            assert model.config.dropout == 0  # the environments path needs it (molssl.chem.nn.environments)
            results[f"{featurizer}_encoder"] = compare(lambda: whole_encoder(model, batch), args.rounds, args.repeats)
            print(featurizer, results[f"{featurizer}_encoder"], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
