"""SODA's strong augmentations on stacked frames: random overlay and random convolution.

Observations are float tensors (N, 3k, H, W) with values in [0, 255], k stacked RGB frames per sample.
Every frame of a sample gets the same augmentation, so motion between frames is preserved.
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AUGMENTATIONS = ("overlay", "conv")


def _check_frames(obs: Tensor) -> tuple[int, int, int, int]:
    if obs.ndim != 4 or obs.shape[1] % 3 != 0:
        raise ValueError(f"expected stacked RGB frames (N, 3k, H, W), got shape {tuple(obs.shape)}")
    n, c, h, w = obs.shape
    return n, c, h, w


def random_overlay(obs: Tensor, images: Tensor, alpha: float = 0.5, generator: Optional[torch.Generator] = None) -> Tensor:
    """``(1 - alpha) * obs + alpha * image`` with one image of the pool (M, 3, H, W) drawn per sample.

    Hansen & Wang 2021 (SODA) interpolate with alpha = 0.5 towards Places365 photos.
    """
    n, c, h, w = _check_frames(obs)
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, h, w):
        raise ValueError(f"overlay images must be (M, 3, {h}, {w}), got {tuple(images.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    idx = torch.randint(images.shape[0], (n,), generator=generator).to(images.device)
    overlay = images[idx].to(obs.device, obs.dtype).repeat(1, c // 3, 1, 1)
    return (1.0 - alpha) * obs + alpha * overlay


def random_conv(obs: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Random convolution (Lee et al. 2020, as used by SODA): one random 3x3 RGB->RGB kernel per sample.

    Weights are standard normal; frames are scaled to [0, 1], replicate-padded, filtered and squashed
    back to [0, 255] with a sigmoid.
    """
    n, c, h, w = _check_frames(obs)
    k = c // 3
    weight = torch.randn(n * 3, 3, 3, 3, generator=generator).to(obs.device, obs.dtype)
    frames = obs.reshape(n, k, 3, h, w).transpose(0, 1).reshape(k, n * 3, h, w) / 255.0
    frames = F.pad(frames, (1, 1, 1, 1), mode="replicate")
    out = torch.sigmoid(F.conv2d(frames, weight, groups=n)) * 255.0
    return out.reshape(k, n, 3, h, w).transpose(0, 1).reshape(n, c, h, w)


@functools.lru_cache(maxsize=8)
def _photos(short_side: int) -> tuple[Tensor, ...]:
    """scikit-learn's bundled photos as (3, H, W) float tensors, shrunk so that their short side is ``short_side``."""
    from sklearn.datasets import load_sample_images

    photos = []
    for img in load_sample_images().images:
        photo = torch.from_numpy(img.copy()).permute(2, 0, 1).float()[None]
        scale = short_side / min(photo.shape[-2:])
        size = (round(photo.shape[-2] * scale), round(photo.shape[-1] * scale))
        photos.append(F.interpolate(photo, size=size, mode="bilinear", antialias=True, align_corners=False)[0])
    return tuple(photos)


def overlay_images(size: int, count: int = 64, seed: int = 0) -> Tensor:
    """A pool of (count, 3, size, size) natural-image crops in [0, 255] for :func:`random_overlay`.

    Crops of random position and scale (a quarter to all of the short side) from the two photos bundled
    with scikit-learn (``load_sample_images``): a download-free stand-in for SODA's Places365 images.
    """
    photos = _photos(4 * size)
    gen = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[1:]
        side = int(torch.randint(min(h, w) // 4, min(h, w) + 1, (1,), generator=gen))
        top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
        crop = photo[None, :, top:top + side, left:left + side]
        crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0])
    return torch.stack(crops).clamp(0.0, 255.0)


class Augmentation(nn.Module):
    """``overlay`` or ``conv`` as a module (the overlay pool is a non-persistent buffer that follows ``.to``)."""

    images: Tensor

    def __init__(self, kind: str, image_size: int, alpha: float = 0.5) -> None:
        super().__init__()
        if kind not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {kind!r}; choose one of {AUGMENTATIONS}")
        self.kind = kind
        self.alpha = alpha
        pool = overlay_images(image_size) if kind == "overlay" else torch.empty(0)
        self.register_buffer("images", pool, persistent=False)

    def forward(self, obs: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        if self.kind == "overlay":
            return random_overlay(obs, self.images, self.alpha, generator)
        return random_conv(obs, generator)
