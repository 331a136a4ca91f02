"""Image pre-training runs: the method registry, building a run from its config, and probing it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from molssl.core.checkpoint import seed_everything
from molssl.core.trainer import TrainState
from molssl.vision.augment import AugmentConfig, ImageAugment, TwoViews
from molssl.vision.contrastive import BYOL, MoCo, SimCLR
from molssl.vision.data import ImageDataset, load_dataset
from molssl.vision.encoders import ConvEncoder
from molssl.vision.pretext import JigsawPuzzle, RelativePosition, RotationPrediction
from molssl.vision.probe import extract_features, probe_features
from molssl.vision.training import load_module_of, pretrain_on_tensors

CONTRASTIVE = {"simclr": SimCLR, "moco": MoCo, "byol": BYOL}
PRETEXT = {"rotation": RotationPrediction, "jigsaw": JigsawPuzzle, "context": RelativePosition}
TILE_TASKS = (JigsawPuzzle, RelativePosition)
FEATURES = ("auto", "image", "tiles")
METHODS = tuple(CONTRASTIVE) + tuple(PRETEXT)
DEFAULT_WIDTHS = (32, 64, 128)
BUILTIN_SHAPES = {"mnist": ((28, 28), 1), "digits": ((8, 8), 1)}  # (H, W), channels of the bundled data sets


def build_module(config: dict) -> nn.Module:
    """The training module a run config describes (method, image size, channels, widths, options)."""
    method = config.get("method")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    encoder = ConvEncoder(config["channels"], config.get("widths", DEFAULT_WIDTHS))
    options = dict(config.get("options", {}))
    if method in PRETEXT:
        return PRETEXT[method](encoder, **options)
    augment = ImageAugment(tuple(config["image_size"]), config["channels"], AugmentConfig(**config.get("augment", {})))
    if method == "byol":
        options.setdefault("total_steps", config.get("total_steps", 0))
    return CONTRASTIVE[method](encoder, TwoViews(augment), **options)


def split_data(config: dict) -> tuple[ImageDataset, ImageDataset]:
    """The (train, test) split a run config names; pre-training only ever sees the train part."""
    dataset = load_dataset(config["data"], tuple(config["image_size"]), config["channels"])
    return dataset.split(config["test_fraction"], config["split_seed"])


def make_config(method: str, data: str, *, epochs: int = 10, batch_size: int = 256, lr: float = 1e-3,
                seed: int = 0, widths: Sequence[int] = DEFAULT_WIDTHS, options: Optional[dict] = None,
                augment: Optional[dict] = None, image_size: Optional[tuple[int, int]] = None,
                channels: Optional[int] = None, test_fraction: float = 0.2, split_seed: int = 0,
                max_steps: Optional[int] = None, precision: str = "fp32") -> dict:
    """A complete, JSON-serialisable run config; image size and channels default to the data's own."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if data in BUILTIN_SHAPES:
        image_size, channels = BUILTIN_SHAPES[data]
    return {
        "modality": "vision", "method": method, "data": data,
        "image_size": list(image_size or (32, 32)), "channels": channels or 3,
        "widths": list(widths), "options": options or {}, "augment": augment or {},
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "max_steps": max_steps,
        "precision": precision, "test_fraction": test_fraction, "split_seed": split_seed,
    }


def pretrain(config: dict, out_dir: str | Path, *, device: torch.device, resume: bool = False,
             progress: bool = True, train: Optional[ImageDataset] = None) -> tuple[nn.Module, TrainState]:
    """Pre-train the method of ``config`` on the train split (or ``train``); returns (module, final state)."""
    if train is None:
        train, _ = split_data(config)
    return pretrain_on_tensors(train.images, config, build_module, out_dir, device=device, resume=resume,
                               progress=progress)


def random_init_module(config: dict) -> nn.Module:
    """The training module exactly as the run of ``config`` initialised it before training (same seed, same build)."""
    seed_everything(config["seed"])
    return build_module(config)


def random_init_encoder(config: dict) -> nn.Module:
    """The encoder exactly as the run of ``config`` initialised it before training."""
    return random_init_module(config).encoder


def load_module(checkpoint: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """The trained module (encoder and method heads) of a vision checkpoint and the run config stored with it."""
    return load_module_of(checkpoint, build_module, "vision", device)


def load_encoder(checkpoint: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """The trained encoder of a vision checkpoint and the run config stored with it."""
    module, config = load_module(checkpoint, device)
    return module.encoder, config


def feature_extractor(module: nn.Module, features: str = "auto") -> nn.Module:
    """What a probe embeds images with: ``"image"``, the encoder on whole images (global pooling);
    ``"tiles"``, a tile task's encoder on the grid of tiles it was trained on, features concatenated
    in grid order (:class:`~molssl.vision.pretext.TileGridFeatures`); ``"auto"``, whichever input the
    method trains its encoder on (tiles for jigsaw and context, whole images otherwise)."""
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    tiled = isinstance(module, TILE_TASKS)
    if features == "auto":
        features = "tiles" if tiled else "image"
    if features == "image":
        return module.encoder
    if not tiled:
        raise ValueError(f"tile features exist only for the tile tasks (jigsaw, context), not {type(module).__name__}")
    return module.tile_features()


def probe_encoders(encoders: dict[str, nn.Module], train: ImageDataset, test: ImageDataset,
                   device: torch.device, knn_k: int = 20) -> dict[str, dict]:
    """Linear-probe and k-NN accuracy of each named encoder (or :func:`feature_extractor`), on the same split."""
    results = {}
    for name, encoder in encoders.items():
        encoder.to(device)
        train_x = extract_features(encoder, train.images, device)
        test_x = extract_features(encoder, test.images, device)
        results[name] = probe_features(train_x, train.labels, test_x, test.labels, knn_k)
    return results
