"""Does bf16 autocast hurt? Pre-training loss curves and fine-tuned scores, fp32 against bf16, same seeds.

- Pre-training: the same corpus, model, batches and seed in fp32 and in bf16, plus fp32 with another
  seed as the noise reference; the table compares the mean training loss over the last steps (the
  bf16 - fp32 difference should be within the seed-to-seed one).
- Fine-tuning: two data sets, three seeds each, fp32 against bf16 (the difference of the means
  should be within the seed spread).

    python benchmarks/precision_check.py --smiles /path/corpus.smi.gz --out runs/precision
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.chem.tasks.pretrain import PretrainConfig, pretrain
from molssl.core.precision import cpu_description


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smiles", required=True)
    parser.add_argument("--out", default="runs/precision")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--last", type=int, default=50, help="steps at the end whose mean loss is compared")
    parser.add_argument("--datasets", nargs="+", default=["esol", "bbbp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "moleculenet"))
    args = parser.parse_args()
    out = Path(args.out)
    print(f"{cpu_description()[0]}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    curves = {}
    for name, precision, seed in (("fp32 seed 0", "fp32", 0), ("bf16 seed 0", "bf16", 0), ("fp32 seed 1", "fp32", 1)):
        run = out / "pretrain" / name.replace(" ", "-")
        if not (run / "summary.json").is_file():
            pretrain(PretrainConfig(smiles=args.smiles, out=str(run), max_steps=args.steps, epochs=100,
                                    batch_size=args.batch_size, precision=precision, seed=seed, skip_invalid=True,
                                    log_every=1, progress=False, workers=1), log=lambda _m: None)
        curves[name] = np.asarray(losses(run))
    tail = {k: float(v[-args.last:].mean()) for k, v in curves.items()}
    print(f"\n| pre-training ({args.steps} steps of {args.batch_size}) | mean loss, last {args.last} steps |")
    print("|---|---|")
    for name, value in tail.items():
        print(f"| {name} | {value:.4f} |")
    print(f"| bf16 - fp32 (same seed) | {tail['bf16 seed 0'] - tail['fp32 seed 0']:+.4f} |")
    print(f"| fp32 seed 1 - seed 0 (noise) | {tail['fp32 seed 1'] - tail['fp32 seed 0']:+.4f} |")
    diff = np.abs(curves["bf16 seed 0"] - curves["fp32 seed 0"]).mean()
    noise = np.abs(curves["fp32 seed 1"] - curves["fp32 seed 0"]).mean()
    print(f"| mean abs step-by-step difference: bf16 vs fp32 / seed 1 vs seed 0 | {diff:.4f} / {noise:.4f} |")

    print("\n| data set | fp32 (mean ± std) | bf16 (mean ± std) | difference of means | CPU s fp32 / bf16 |")
    print("|---|---|---|---|---|")
    for dataset in args.datasets:
        cells, seconds = [], []
        for precision in ("fp32", "bf16"):
            results = run_finetune(FinetuneConfig(
                out=str(out / "finetune" / f"{dataset}-{precision}"), dataset=dataset, data_dir=args.data_dir,
                seeds=args.seeds, epochs=100, patience=10, precision=precision, threads=1, progress=False,
                encoder=EncoderConfig()), log=lambda _m: None) if not (
                out / "finetune" / f"{dataset}-{precision}" / "results.json").is_file() else json.loads(
                (out / "finetune" / f"{dataset}-{precision}" / "results.json").read_text())
            cells.append((results["mean"], results["std"], results["metric"]))
            seconds.append(results["seconds"])
        scale = 100 if cells[0][2] == "roc_auc" else 1
        print(f"| {dataset} ({cells[0][2]}) | {scale * cells[0][0]:.3f} ± {scale * cells[0][1]:.3f} | "
              f"{scale * cells[1][0]:.3f} ± {scale * cells[1][1]:.3f} | {scale * (cells[1][0] - cells[0][0]):+.3f} | "
              f"{seconds[0]:.0f} / {seconds[1]:.0f} |")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
