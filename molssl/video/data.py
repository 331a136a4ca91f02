"""Video data: moving real MNIST digits with controlled direction and speed, and video/frame folders.

Videos are ``uint8`` tensors (N, T, C, H, W); models receive float clips (B, C, T, H, W) in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from molssl.vision.data import IMAGE_SUFFIXES, ImageDataset, stratified_split

# (dx, dy) per frame in image coordinates (y grows downwards), one per direction class.
DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))
DIRECTION_NAMES = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")
VIDEO_SUFFIXES = (".gif", ".tif", ".tiff", ".webp")  # multi-frame formats PIL can decode


@dataclass
class VideoDataset:
    """``videos`` uint8 (N, T, C, H, W); ``labels[name]`` long (N,); ``classes[name]`` the label names."""

    videos: Tensor
    labels: dict[str, Tensor]
    classes: dict[str, list[str]]

    def __post_init__(self) -> None:
        if self.videos.dtype != torch.uint8 or self.videos.dim() != 5:
            raise ValueError(f"videos must be a uint8 (N, T, C, H, W) tensor, got {self.videos.dtype} {tuple(self.videos.shape)}")
        for name, y in self.labels.items():
            if y.shape != (self.videos.shape[0],):
                raise ValueError(f"label {name!r} has shape {tuple(y.shape)}, expected ({self.videos.shape[0]},)")

    def __len__(self) -> int:
        return self.videos.shape[0]

    def subset(self, index: Tensor) -> "VideoDataset":
        return VideoDataset(self.videos[index], {k: v[index] for k, v in self.labels.items()}, self.classes)

    def split(self, label: str, test_fraction: float = 0.2, seed: int = 0) -> tuple["VideoDataset", "VideoDataset"]:
        """A (train, test) split stratified by ``label``."""
        train_idx, test_idx = stratified_split(self.labels[label], test_fraction, seed)
        return self.subset(train_idx), self.subset(test_idx)


def moving_digits(digits: ImageDataset, frames: int = 16, canvas: int = 24, digit_size: int = 16,
                  speeds: Sequence[int] = (1, 2), seed: int = 0) -> VideoDataset:
    """One video per digit image: the digit (resized to ``digit_size``) moves across a ``canvas`` square.

    Each video draws a direction (8 classes, :data:`DIRECTIONS`), a speed multiplier from ``speeds`` and a start
    position; frame t+1 is frame t shifted by speed * (dx, dy) pixels with wrap-around, so direction and speed
    stay constant. Labels: ``direction``, ``speed`` (motion) and ``digit`` (appearance).
    """
    if digits.images.shape[1] != 1:
        raise ValueError("moving digits needs single-channel digit images")
    if not 2 <= digit_size <= canvas:
        raise ValueError(f"digit_size must be between 2 and the canvas size {canvas}, got {digit_size}")
    if frames < 2 or not speeds or min(speeds) <= 0:
        raise ValueError("need at least 2 frames and positive speeds")
    rng = np.random.default_rng(seed)
    n = len(digits)
    small = F.interpolate(digits.images.float(), size=(digit_size, digit_size), mode="bilinear",
                          antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
    direction = rng.integers(len(DIRECTIONS), size=n)
    speed = rng.integers(len(speeds), size=n)
    start = rng.integers(canvas, size=(n, 2))
    steps = np.asarray(DIRECTIONS)[direction] * np.asarray(speeds)[speed][:, None]  # (n, 2) as (dx, dy)
    t = torch.arange(frames)
    pixels = torch.arange(canvas)
    shift = torch.from_numpy(start)[:, None, :] + torch.from_numpy(steps)[:, None, :] * t[None, :, None]  # (n, T, 2)
    # output pixel p of frame t shows base pixel (p - shift_t) mod canvas: gather rows, then columns
    rows = (pixels - shift[..., 1:2]) % canvas  # (n, T, canvas)
    cols = (pixels - shift[..., 0:1]) % canvas
    base = torch.zeros(n, 1, canvas, canvas, dtype=torch.uint8)
    base[:, 0, :digit_size, :digit_size] = small[:, 0]
    base = base.expand(n, frames, canvas, canvas)
    videos = base.gather(2, rows[..., None].expand(n, frames, canvas, canvas))
    videos = videos.gather(3, cols[:, :, None, :].expand(n, frames, canvas, canvas)).unsqueeze(2).contiguous()
    labels = {"direction": torch.from_numpy(direction), "speed": torch.from_numpy(speed), "digit": digits.labels.clone()}
    classes = {"direction": list(DIRECTION_NAMES), "speed": [f"{s}px/frame" for s in speeds], "digit": digits.classes}
    return VideoDataset(videos, labels, classes)


def _resample(frames: list[np.ndarray], count: int, source: Path) -> np.ndarray:
    if len(frames) < count:
        raise ValueError(f"{source} has {len(frames)} frames; at least {count} are needed")
    keep = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return np.stack([frames[i] for i in keep])


def _frame(img, size: int, channels: int) -> np.ndarray:
    from PIL import Image

    img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def read_video(path: Path, frames: int, size: int, channels: int) -> np.ndarray:
    """A folder of frame images (sorted by name) or a multi-frame GIF/TIFF/WebP as uint8 (frames, C, size, size).

    Longer videos are subsampled evenly to ``frames`` frames. Other containers (mp4, avi) need a decoder that
    is not installed; convert them first, e.g. ``ffmpeg -i v.mp4 v/%05d.png``.
    """
    from PIL import Image, ImageSequence

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        images = []
        for file in files:
            with Image.open(file) as img:
                images.append(_frame(img, size, channels))
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        with Image.open(path) as img:
            images = [_frame(frame, size, channels) for frame in ImageSequence.Iterator(img)]
    else:
        raise ValueError(f"cannot decode {path}: use a folder of frames or a {'/'.join(VIDEO_SUFFIXES)} file "
                         "(convert other formats with: ffmpeg -i video.mp4 video/%05d.png)")
    return _resample(images, frames, path)


def load_video_folder(root: str | Path, frames: int = 16, size: int = 32, channels: int = 3) -> VideoDataset:
    """Videos laid out as ``root/<class>/<video>``, each a frame folder or a multi-frame image file."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    videos, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for entry in sorted(class_dir.iterdir()):
            if entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES:
                videos.append(read_video(entry, frames, size, channels))
                labels.append(label)
    if not videos:
        raise ValueError(f"no videos found: expected {root}/<class>/<video folder or .gif>")
    return VideoDataset(torch.from_numpy(np.stack(videos)), {"class": torch.tensor(labels)},
                        {"class": [p.name for p in class_dirs]})
