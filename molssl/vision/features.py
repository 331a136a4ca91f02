"""What probes embed images with, and frozen-feature extraction; the scores come from :mod:`molssl.core.probe`."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from molssl.core.probe import probe_features
from molssl.vision.data import ImageDataset, to_unit_float

FEATURES = ("auto", "image", "tiles")


@torch.no_grad()
def extract_features(encoder: nn.Module, inputs: Tensor, device: torch.device, batch_size: int = 512,
                     prepare: Callable[[Tensor], Tensor] = to_unit_float) -> Tensor:
    """Encoder features (eval mode, no gradient) of ``inputs``, on the CPU as float32 (N, D)."""
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = [encoder(prepare(inputs[i:i + batch_size].to(device))).float().cpu()
                  for i in range(0, inputs.shape[0], batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(chunks)


def feature_extractor(module: nn.Module, features: str = "auto") -> nn.Module:
    """What a probe embeds images with.

    ``"auto"``: the input the method trains its encoder on: the tile grid for jigsaw and context
    (:class:`~molssl.vision.pretext.TileGridFeatures`), the mean over the patch grid for CPC, the lightness
    for colorization, the whole image otherwise. ``"image"``: the encoder on whole images (colorization:
    their lightness). ``"tiles"``: the tile grid, for the tile tasks only.
    """
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    if features == "tiles":
        if not hasattr(module, "tile_features"):
            raise ValueError(f"tile features exist only for the tile tasks (jigsaw, context), not {type(module).__name__}")
        return module.tile_features()
    if features == "auto" and hasattr(module, "probe_features"):
        return module.probe_features()
    return module.image_features() if hasattr(module, "image_features") else module.encoder


def input_kind(extractor: nn.Module) -> str:
    """``"image"``, ``"tiles"``, ``"patches"`` or ``"lightness"``: what an extractor embeds (for reports)."""
    return getattr(extractor, "input_kind", "image")


def probe_label_sets(data: ImageDataset, labels: Optional[Sequence[str]] = None) -> list[Optional[str]]:
    """The label sets a probe scores: ``labels``, or all of the data's named sets, or (None) its one label."""
    if labels:
        unknown = [name for name in labels if name not in data.label_sets]
        if unknown:
            raise ValueError(f"unknown label(s) {', '.join(unknown)}; these images have "
                             f"{', '.join(data.label_sets) or 'one unnamed label'}")
        return list(labels)
    return list(data.label_sets) or [None]


def probe_encoders(encoders: dict[str, nn.Module], train: ImageDataset, test: ImageDataset, device: torch.device,
                   knn_k: int = 20, labels: Optional[Sequence[str]] = None) -> dict[str, dict[str, float]]:
    """Linear-probe and k-NN accuracy of each named encoder (or :func:`feature_extractor`), on the same split.

    Scores are named ``linear`` and ``knn``; with named label sets (depictions), ``<label>/linear`` and
    ``<label>/knn`` for each.
    """
    sets = probe_label_sets(train, labels)
    results: dict[str, dict[str, float]] = {}
    for name, encoder in encoders.items():
        encoder.to(device)
        train_x = extract_features(encoder, train.images, device)
        test_x = extract_features(encoder, test.images, device)
        scores: dict[str, float] = {}
        for label in sets:
            y_train, y_test = (train.labels, test.labels) if label is None else (
                train.relabel(label).labels, test.relabel(label).labels)
            prefix = "" if label is None else f"{label}/"
            scores.update({prefix + k: v for k, v in probe_features(train_x, y_train, test_x, y_test, knn_k).items()})
        results[name] = scores
    return results
