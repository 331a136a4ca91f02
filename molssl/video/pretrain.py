"""Video pre-training runs (CVRL, frame-order verification) on core.fit, and their linear probes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from molssl.core.checkpoint import load_weights, seed_everything
from molssl.core.config_compat import DefaultChange, register_changes
from molssl.core.fit import total_steps
from molssl.core.probe import linear_probe_accuracy
from molssl.core.runs import config_from_record, fit_config_of, read_run, run_record, train_run
from molssl.core.trainer import TrainState
from molssl.errors import MolsslError
from molssl.video.augment import ClipViews, VideoAugment, to_clips
from molssl.video.data import VideoDataset, load_video_folder, moving_digits
from molssl.video.pretext import FrameOrderVerification
from molssl.vision.augment import AugmentConfig
from molssl.vision.contrastive import SimCLR
from molssl.vision.data import TensorBatchSource, load_mnist
from molssl.vision.encoders import ConvEncoder
from molssl.vision.features import extract_features
from molssl.vision.methods import complete_options, keyword_defaults

MODALITY = "video"
METHODS = {"cvrl": SimCLR, "shuffle": FrameOrderVerification}
PREPROCESSING = {"cvrl": 1, "shuffle": 1}
MOVING_MNIST = "moving-mnist"
DEFAULT_WIDTHS = (16, 32, 64)
# Space-time strides (T, H, W) of the three default stages: time is halved once, space three times.
DEFAULT_STRIDES = ((1, 2, 2), (2, 2, 2), (1, 2, 2))

register_changes(MODALITY, [
    # shuffle's classifier gained its own 3D conv stage before versions were recorded: read it from the weights
    DefaultChange("options.conv_head", "0.1.0",
                  lambda _saved, context: any(str(k).startswith("head_stage.") for k in context.get("weights", {})),
                  applies=lambda saved: saved.get("method") == "shuffle"),
    DefaultChange("preprocessing", "0.1.0", 1),
])


def method_options(method: str, given: dict) -> dict:
    """Every option of the video method with its effective value; CVRL's clip sampler adds ``interval_c``."""
    if method not in METHODS:
        raise ValueError(f"unknown video method {method!r}; choose one of {', '.join(METHODS)}")
    defaults = keyword_defaults(METHODS[method].__init__)
    if method == "cvrl":
        defaults["interval_c"] = None
    return complete_options(method, defaults, given)


@dataclass
class VideoConfig:
    """One video pre-training run (full effective settings; ``channels`` is 1 for moving MNIST and
    ``digit_size`` applies to it only)."""

    method: str
    data: str = MOVING_MNIST
    clip_len: int = 6
    frames: int = 16
    size: int = 24
    digit_size: int = 16
    channels: int = 1
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    options: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    augment_tuples: bool = True
    max_videos: Optional[int] = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_fraction: float = 0.05
    seed: int = 0
    test_fraction: float = 0.2
    split_seed: int = 0
    max_steps: Optional[int] = None
    precision: str = "fp32"
    preprocessing: Optional[int] = None

    def __post_init__(self) -> None:
        self.options = method_options(self.method, self.options)
        if not 1 <= self.clip_len <= self.frames:
            raise ValueError(f"clip_len must be between 1 and frames={self.frames}, got {self.clip_len}")
        if self.data == MOVING_MNIST:
            self.channels = 1
        self.widths = tuple(int(w) for w in self.widths)
        self.augment = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(AugmentConfig(**self.augment)).items()}
        if self.preprocessing is None:
            self.preprocessing = PREPROCESSING[self.method]


def make_config(method: str, data: str = MOVING_MNIST, **settings: Any) -> VideoConfig:
    """A complete video run config (settings left at None take their defaults)."""
    return VideoConfig(method=method, data=data, **{k: v for k, v in settings.items() if v is not None or k == "max_steps"})


def build_encoder(config: VideoConfig) -> ConvEncoder:
    strides = DEFAULT_STRIDES if len(config.widths) == len(DEFAULT_STRIDES) else None
    return ConvEncoder(config.channels, config.widths, strides, dims=3)


def build_module(config: VideoConfig) -> nn.Module:
    """The training module a video run config describes."""
    encoder = build_encoder(config)
    augment = VideoAugment((config.size, config.size), config.channels, AugmentConfig(**config.augment))
    options = dict(config.options)
    if config.method == "cvrl":
        views = ClipViews(config.clip_len, augment, options.pop("interval_c", None))
        return SimCLR(encoder, views, **options)
    return FrameOrderVerification(encoder, augment if config.augment_tuples else None, **options)


def split_data(config: VideoConfig) -> tuple[VideoDataset, VideoDataset]:
    """(train, test) videos. Moving MNIST splits the digit images first, so no digit appears in both."""
    if config.data == MOVING_MNIST:
        train_digits, test_digits = load_mnist().split(config.test_fraction, config.split_seed)
        if config.max_videos:
            train_digits = train_digits.subset(torch.arange(min(config.max_videos, len(train_digits))))
        make = dict(frames=config.frames, canvas=config.size, digit_size=config.digit_size)
        return (moving_digits(train_digits, seed=config.split_seed, **make),
                moving_digits(test_digits, seed=config.split_seed + 1, **make))
    if not Path(config.data).is_dir():
        raise FileNotFoundError(f"--data must be {MOVING_MNIST!r} or a video folder; {config.data!r} is neither")
    dataset = load_video_folder(config.data, config.frames, config.size, config.channels)
    train, test = dataset.split("class", config.test_fraction, config.split_seed)
    if config.max_videos:
        train = train.subset(torch.arange(min(config.max_videos, len(train))))
    return train, test


def pretrain(config: VideoConfig, out_dir: str | Path, *, device: torch.device, resume: bool = False,
             progress: bool = True, train: Optional[VideoDataset] = None,
             log: Callable[[str], None] = print) -> tuple[nn.Module, TrainState]:
    """Pre-train on the training videos (labels unused); returns (module, final state)."""
    if train is None:
        train, _ = split_data(config)
    source = TensorBatchSource(train.videos, config.batch_size, seed=config.seed)
    fit_config = fit_config_of(config, steps=total_steps(source, config.epochs, config.max_steps), progress=progress)
    module, trainer = train_run(lambda _total: build_module(config), source, out_dir, record=run_record(MODALITY, config),
                                fit_config=fit_config, seed=config.seed, device=device, resume=resume, log=log)
    return module, trainer.state


def random_init_encoder(config: VideoConfig) -> nn.Module:
    """The encoder exactly as the run of ``config`` initialised it (same seed, same build)."""
    seed_everything(config.seed)
    return build_module(config).encoder


def load_encoder(checkpoint: str | Path, device: torch.device,
                 log: Callable[[str], None] = print) -> tuple[nn.Module, VideoConfig]:
    """The trained encoder of a video checkpoint and its run config (older records completed, preprocessing checked)."""
    weights, record = read_run(checkpoint, MODALITY, device, log)
    config = config_from_record(VideoConfig, record)
    if config.preprocessing != PREPROCESSING[config.method]:
        raise MolsslError(f"{checkpoint} was trained with {config.method} preprocessing version {config.preprocessing}, "
                          f"but this molssl uses version {PREPROCESSING[config.method]}; re-train it")
    module = build_module(config)
    load_weights(module, weights, checkpoint)
    return module.encoder.to(device), config


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

