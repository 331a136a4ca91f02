"""Probe the image runs of ``vision_ssl.py`` at other encoder layers: stage 2's globally pooled features, and
the pooled features of every stage concatenated, against the same layer at random initialization.

Data for a protocol decision, not the benchmark's protocol (which probes the encoder output); it reuses the
finished runs in OUT/seed<N>/<method> and trains nothing.

    .venv/bin/python benchmarks/vision_probe_layers.py --out runs/bench/vision
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

from molssl.core.device import resolve_device
from molssl.core.probe import margin_cells, probe_features
from molssl.vision.encoders import ConvEncoder
from molssl.vision.features import extract_features
from molssl.vision.pretrain import METHODS, load_module, random_init_module, split_data

LAYERS = {"stage 2": (1,), "all stages": (0, 1, 2)}


class PooledStages(nn.Module):
    """Global-average-pooled outputs of the chosen conv stages of a ``ConvEncoder``, concatenated."""

    def __init__(self, encoder: nn.Module, stages: tuple[int, ...]) -> None:
        super().__init__()
        if not isinstance(encoder, ConvEncoder) or encoder.dims != 2:
            raise ValueError(f"expected a 2D ConvEncoder (conv-BN-ReLU stages), got {type(encoder).__name__}")
        self.encoder = encoder
        self.stages = stages

    def forward(self, x: Tensor) -> Tensor:
        pooled = []
        for layer in self.encoder.net:
            x = layer(x)
            if isinstance(layer, nn.ReLU):  # the end of a conv-BN-ReLU stage
                pooled.append(x.mean((2, 3)))
        return torch.cat([pooled[i] for i in self.stages], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench/vision", help="the --out of vision_ssl.py")
    parser.add_argument("--methods", nargs="+", default=["simclr", "moco", "byol", "rotation", "jigsaw", "context"],
                        choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    scores: dict[str, dict[str, list[dict]]] = {layer: {} for layer in LAYERS}
    for method in args.methods:
        for seed in args.seeds:
            checkpoint = Path(args.out) / f"seed{seed}" / method / "checkpoint.pt"
            module, config = load_module(checkpoint, device)
            train, test = split_data(config)
            initial = random_init_module(config).to(device)
            for layer, stages in LAYERS.items():
                row = {}
                for name, encoder in (("random", initial.encoder), ("trained", module.encoder)):
                    features = PooledStages(encoder, stages)
                    train_x, test_x = (extract_features(features, d.images, device) for d in (train, test))
                    row[name] = probe_features(train_x, train.labels, test_x, test.labels)
                scores[layer].setdefault(method, []).append(row)
        print(f"{method}: probed", flush=True)
    for layer, by_method in scores.items():
        print(f"\n{layer}, whole images, means over seeds {', '.join(map(str, args.seeds))}:\n")
        print("| method | linear random | linear trained | margin | per seed (wins) | "
              "k-NN random | k-NN trained | margin | per seed (wins) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for method, rows in by_method.items():
            cells = [margin_cells([r["random"][p] for r in rows], [r["trained"][p] for r in rows]) for p in ("linear", "knn")]
            print(f"| {method} | {' | '.join(cells)} |")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
