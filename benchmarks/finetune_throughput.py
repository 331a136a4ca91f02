"""Fine-tuning throughput: the full step path against the step floor, for GIN and GCN, at batch 32 and 256.

Rows, per encoder and batch size (one torch thread unless ``--threads``):
  full  : molecules/s of ``molssl.chem.tasks.finetune``'s training step as ``core.fit`` runs it
          (batches gathered from the store, the masked loss, backward, Adam);
  floor : the same forward + loss + backward + Adam on batches built before the clock starts;
  full / floor.
The GCN rows include MolCLR's unnormalized GCN (``gcn_normalize=False``, what converted MolCLR
checkpoints use) with and without flushing denormal floats, to find what made it slow.

    python benchmarks/finetune_throughput.py --dataset bbbp --data-dir ../shared/data/moleculenet
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from molssl.chem.data.labelled import load_dataset
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.tasks.training import FinetuneObjective, batches_for
from molssl.core.device import autocast
from molssl.core.fit import FitConfig, make_optimizer
from molssl.core.precision import cpu_description

ENCODERS = {
    "gin": EncoderConfig(kind="gin", dropout=0.3),
    "gcn": EncoderConfig(kind="gcn", dropout=0.3),
    "gcn-unnormalized": EncoderConfig(kind="gcn", dropout=0.3, gcn_normalize=False),
}


def _objective(data, encoder: EncoderConfig, state: dict | None = None) -> tuple[FinetuneObjective, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = PropertyModel(encoder, data.tasks, data.task_type)
    if state is not None:
        model.encoder.load_state_dict(state, strict=False)
    labels = torch.as_tensor(data.labels, dtype=torch.float32)
    objective = FinetuneObjective(model, labels, data.task_type, data.metric)
    optimizer = make_optimizer(model.parameter_groups(1e-4, 5e-4), FitConfig(lr=5e-4, weight_decay=1e-6))
    return objective, optimizer


def _step(objective, optimizer, batch, precision: str) -> None:
    with autocast(torch.device("cpu"), precision):
        loss = objective(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.float().backward()
    optimizer.step()


def rates(data, encoder: EncoderConfig, batch_size: int, precision: str, steps: int,
          state: dict | None = None) -> tuple[float, float]:
    """(full path, floor) molecules/s (``state``: pre-trained encoder weights to start from)."""
    positions = np.arange(len(data))
    objective, optimizer = _objective(data, encoder, state)
    objective.train()
    source = batches_for(data, positions, batch_size, True, 0, False)
    batches = itertools.cycle(source.batches(0))
    _step(objective, optimizer, next(batches), precision)
    count, start = 0, time.perf_counter()
    for _, batch in zip(range(steps), batches):
        _step(objective, optimizer, batch, precision)
        count += batch.num_graphs
    full = count / (time.perf_counter() - start)
    prebuilt = list(itertools.islice(source.batches(1), 8))
    count, start = 0, time.perf_counter()
    for i in range(steps):
        batch = prebuilt[i % len(prebuilt)]
        _step(objective, optimizer, batch, precision)
        count += batch.num_graphs
    return full, count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="bbbp")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS))
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--converted-gcn", type=Path, help="encoder.pt of MolCLR's GCN weights (molssl convert molclr)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir, progress=False)
    print(f"{cpu_description()[0]}; torch {torch.__version__}; {args.threads} thread(s); {args.dataset}, "
          f"{len(data)} molecules; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| encoder | precision | batch | full path mol/s | floor mol/s | full / floor |")
    print("|---|---|---|---|---|---|")
    for name in args.encoders:
        for precision in args.precision:
            for batch_size in args.batch_sizes:
                full, floor = rates(data, ENCODERS[name], batch_size, precision, args.steps)
                print(f"| {name} | {precision} | {batch_size} | {full:.0f} | {floor:.0f} | {full / floor:.2f} |",
                      flush=True)
    if args.converted_gcn is not None:  # what made MolCLR's converted GCN slow: denormal floats?
        from dataclasses import replace

        from molssl.chem.serve.loading import load_encoder_file

        config, state = load_encoder_file(args.converted_gcn)
        config = replace(config, dropout=0.3)
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            full, floor = rates(data, config, 32, "fp32", args.steps, state)
            print(f"| MolCLR's converted GCN{', denormals flushed' if flush else ''} | fp32 | 32 | {full:.0f} | "
                  f"{floor:.0f} | {full / floor:.2f} |", flush=True)


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
