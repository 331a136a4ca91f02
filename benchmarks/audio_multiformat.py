"""Benchmark: linear-probe accuracy of multi-format contrastive audio encoders vs random init.

Pre-trains each variant (wave-spec, wave-wave, spec-spec) on the train split of a spoken-digit
folder (labels unused), then probes every encoder of each model (and of an untrained model) with
logistic regression on all train labels and on a few labels per class, on held-out voices.
Prints a markdown table. Data: ``python benchmarks/make_spoken_digits.py`` first.

    PYTHONPATH=. python benchmarks/audio_multiformat.py --data ~/.cache/molssl/spoken_digits \
        --steps 1000 --batch-size 32 --crop-seconds 0.5 --n-mels 40 --threads 1   # the recorded run
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from molssl.audio.model import VARIANTS, ModelConfig, MultiFormatContrastive
from molssl.audio.pretrain import PretrainConfig, load_pretrained, pretrain
from molssl.audio.probe import linear_probe
from molssl.audio.wav import load_wav_folder
from molssl.core.checkpoint import seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("~/.cache/molssl/spoken_digits"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/molssl_audio_bench"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--clip-seconds", type=float, default=1.0)
    parser.add_argument("--crop-seconds", type=float, default=0.75)
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--shots", type=int, nargs="*", default=[5])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.data.expanduser()
    clip_samples = round(args.clip_seconds * args.sample_rate)
    train = load_wav_folder(data / "train", args.sample_rate, clip_samples)
    test = load_wav_folder(data / "test", args.sample_rate, clip_samples)

    def probe(model: MultiFormatContrastive) -> list[dict]:
        return [asdict(linear_probe(model, train, test, f, shots=tuple(args.shots), repeats=args.repeats,
                                    seed=args.seed)) for f in model.encoders]

    rows = []
    seed_everything(args.seed)
    baseline = MultiFormatContrastive(ModelConfig.for_rate("wave-spec", args.sample_rate, args.crop_seconds,
                                                         n_mels=args.n_mels))
    rows.append({"model": "random init", "seconds": 0.0, "final_loss": None, "probes": probe(baseline)})
    for variant in args.variants:
        config = PretrainConfig(
            data=str(data / "train"), out_dir=str(args.out / variant),
            model=ModelConfig.for_rate(variant, args.sample_rate, args.crop_seconds, n_mels=args.n_mels),
            clip_samples=clip_samples, epochs=10_000, max_steps=args.steps, batch_size=args.batch_size,
            lr=args.lr, seed=args.seed, device="cpu", checkpoint_every=50, progress=False,
        )
        start = time.perf_counter()
        trainer = pretrain(config, resume=(Path(config.out_dir) / "checkpoint.pt").is_file())
        seconds = time.perf_counter() - start
        model, _ = load_pretrained(trainer.checkpoint_path)
        losses = [r["loss"] for r in trainer.state.history if "loss" in r]
        rows.append({"model": variant, "seconds": seconds, "final_loss": losses[-1] if losses else None,
                     "probes": probe(model)})
        print(json.dumps(rows[-1]), flush=True)

    shot_cols = "".join(f" {k}-shot test acc (mean ± std) |" for k in args.shots)
    print(f"\n| pre-training | encoder | full-probe test acc | full-probe train acc |{shot_cols} "
          "final NT-Xent | pre-train time (s) |")
    print("|---|---|---|---|" + "---|" * len(args.shots) + "---|---|")
    for row in rows:
        for p in row["probes"]:
            shots = "".join(f" {m:.3f} ± {s:.3f} |" for m, s in p["few_shot"].values())
            loss = "-" if row["final_loss"] is None else f"{row['final_loss']:.3f}"
            print(f"| {row['model']} | {p['format']} | {p['test_accuracy']:.3f} | {p['train_accuracy']:.3f} |"
                  f"{shots} {loss} | {row['seconds']:.0f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                      "rows": rows}, indent=2))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
