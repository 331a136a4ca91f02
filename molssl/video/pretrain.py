"""Video pre-training runs (CVRL, frame-order verification) and their linear probes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from molssl.core.checkpoint import seed_everything
from molssl.core.trainer import TrainState
from molssl.video.augment import ClipPairViews, VideoAugment, to_clips
from molssl.video.data import VideoDataset, load_video_folder, moving_digits
from molssl.video.pretext import FrameOrderVerification
from molssl.vision.augment import AugmentConfig
from molssl.vision.contrastive import SimCLR
from molssl.vision.data import load_mnist
from molssl.vision.encoders import ConvEncoder
from molssl.vision.probe import extract_features, linear_probe_accuracy
from molssl.vision.training import load_encoder_of, pretrain_on_tensors

METHODS = ("cvrl", "shuffle")
MOVING_MNIST = "moving-mnist"
DEFAULT_WIDTHS = (16, 32, 64)
# Space-time strides (T, H, W) of the three default stages: time is halved once, space three times.
DEFAULT_STRIDES = ((1, 2, 2), (2, 2, 2), (1, 2, 2))


def build_encoder(config: dict) -> ConvEncoder:
    widths = config.get("widths", DEFAULT_WIDTHS)
    strides = DEFAULT_STRIDES if len(widths) == len(DEFAULT_STRIDES) else None
    return ConvEncoder(config["channels"], widths, strides, dims=3)


def build_module(config: dict) -> nn.Module:
    """The training module a video run config describes."""
    method = config.get("method")
    if method not in METHODS:
        raise ValueError(f"unknown video method {method!r}; choose one of {', '.join(METHODS)}")
    encoder = build_encoder(config)
    augment = VideoAugment((config["size"], config["size"]), config["channels"], AugmentConfig(**config.get("augment", {})))
    options = dict(config.get("options", {}))
    if method == "cvrl":
        views = ClipPairViews(config["clip_len"], augment, options.pop("interval_c", None))
        return SimCLR(encoder, views, **options)
    return FrameOrderVerification(encoder, augment if config.get("augment_tuples", True) else None, **options)


def make_config(method: str, data: str = MOVING_MNIST, *, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
                seed: int = 0, clip_len: int = 6, frames: int = 16, size: int = 24, channels: int = 1,
                digit_size: int = 16,
                widths: Sequence[int] = DEFAULT_WIDTHS, options: Optional[dict] = None, augment: Optional[dict] = None,
                max_videos: Optional[int] = None, test_fraction: float = 0.2, split_seed: int = 0,
                max_steps: Optional[int] = None, precision: str = "fp32") -> dict:
    """A complete video run config (``channels`` is forced to 1 for moving MNIST; ``digit_size`` applies to it only)."""
    if method not in METHODS:
        raise ValueError(f"unknown video method {method!r}; choose one of {', '.join(METHODS)}")
    if not 1 <= clip_len <= frames:
        raise ValueError(f"clip_len must be between 1 and frames={frames}, got {clip_len}")
    return {
        "modality": "video", "method": method, "data": data, "clip_len": clip_len, "frames": frames, "size": size,
        "digit_size": digit_size,
        "channels": 1 if data == MOVING_MNIST else channels, "widths": list(widths), "options": options or {},
        "augment": augment or {}, "max_videos": max_videos, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "seed": seed, "test_fraction": test_fraction, "split_seed": split_seed, "max_steps": max_steps,
        "precision": precision,
    }


def split_data(config: dict) -> tuple[VideoDataset, VideoDataset]:
    """(train, test) videos. Moving MNIST splits the digit images first, so no digit appears in both."""
    if config["data"] == MOVING_MNIST:
        train_digits, test_digits = load_mnist().split(config["test_fraction"], config["split_seed"])
        if config.get("max_videos"):
            train_digits = train_digits.subset(torch.arange(min(config["max_videos"], len(train_digits))))
        make = dict(frames=config["frames"], canvas=config["size"], digit_size=config["digit_size"])
        return (moving_digits(train_digits, seed=config["split_seed"], **make),
                moving_digits(test_digits, seed=config["split_seed"] + 1, **make))
    if not Path(config["data"]).is_dir():
        raise FileNotFoundError(f"--data must be {MOVING_MNIST!r} or a video folder; {config['data']!r} is neither")
    dataset = load_video_folder(config["data"], config["frames"], config["size"], config["channels"])
    train, test = dataset.split("class", config["test_fraction"], config["split_seed"])
    if config.get("max_videos"):
        train = train.subset(torch.arange(min(config["max_videos"], len(train))))
    return train, test


def pretrain(config: dict, out_dir: str | Path, *, device: torch.device, resume: bool = False, progress: bool = True,
             train: Optional[VideoDataset] = None) -> tuple[nn.Module, TrainState]:
    """Pre-train on the training videos (labels unused); returns (module, final state)."""
    if train is None:
        train, _ = split_data(config)
    return pretrain_on_tensors(train.videos, config, build_module, out_dir, device=device, resume=resume,
                               progress=progress)


def random_init_encoder(config: dict) -> nn.Module:
    """The encoder exactly as the run of ``config`` initialised it (same seed, same build)."""
    seed_everything(config["seed"])
    return build_module(config).encoder


def load_encoder(checkpoint: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """The trained encoder of a video checkpoint and the run config stored with it."""
    return load_encoder_of(checkpoint, build_module, "video", device)


def clip_features(encoder: nn.Module, videos: torch.Tensor, clip_len: int, device: torch.device) -> torch.Tensor:
    """Frozen features of each video's first ``clip_len`` frames."""
    return extract_features(encoder, videos[:, :clip_len], device, batch_size=128, prepare=to_clips)


def probe_video_encoders(encoders: dict[str, nn.Module], train: VideoDataset, test: VideoDataset, clip_len: int,
                         device: torch.device, labels: Optional[Sequence[str]] = None) -> dict[str, dict[str, float]]:
    """Linear-probe accuracy per encoder and per label (all of the dataset's labels by default)."""
    labels = list(labels or train.labels)
    unknown = [name for name in labels if name not in train.labels]
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; this data has {list(train.labels)}")
    results: dict[str, dict[str, float]] = {}
    for name, encoder in encoders.items():
        encoder.to(device)
        train_x = clip_features(encoder, train.videos, clip_len, device)
        test_x = clip_features(encoder, test.videos, clip_len, device)
        results[name] = {label: linear_probe_accuracy(train_x, train.labels[label], test_x, test.labels[label])
                         for label in labels}
    return results
