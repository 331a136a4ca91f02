"""Batched, on-device augmentations for waveforms (B, T) and spectrograms (B, F, T).

Every function draws its randomness from ``generator`` (a ``torch.Generator`` on the input's
device) or, when it is None, from torch's global generator, so seeded calls are reproducible.
The set follows Wang & van den Oord (2021, arXiv:2103.06508): crops at different times, mixing
with another clip, time and frequency masking (SpecAugment, Park et al. 2019) and frequency shift.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def _uniform(shape: tuple[int, ...], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    return torch.rand(shape, device=like.device, generator=generator)


def _randint(high: Tensor | int, shape: tuple[int, ...], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Integers uniform in [0, high) (``high`` may differ per element)."""
    return (_uniform(shape, like, generator) * high).long()


def random_crop_views(
    clips: Tensor, crop_samples: int, generator: Optional[torch.Generator] = None
) -> tuple[Tensor, Tensor]:
    """The two views of each clip (B, T): crops of ``crop_samples`` at independent uniformly drawn start times."""
    if clips.dim() != 2:
        raise ValueError(f"expected clips of shape (batch, samples), got {tuple(clips.shape)}")
    batch, length = clips.shape
    if not 0 < crop_samples <= length:
        raise ValueError(f"crop of {crop_samples} samples does not fit clips of {length} samples")
    offsets = torch.arange(crop_samples, device=clips.device)
    views = []
    for _ in range(2):
        starts = _randint(length - crop_samples + 1, (batch, 1), clips, generator)
        views.append(torch.gather(clips, 1, starts + offsets))
    return views[0], views[1]


def mix_with_other(x: Tensor, max_ratio: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """(1 - r) x_i + r x_j with j != i another clip of the batch and r ~ U[0, max_ratio] per clip.

    The partner of clip i is clip (i - s) mod B for one random shift s in [1, B - 1]; a batch of one
    clip is returned unchanged.
    """
    if not 0.0 <= max_ratio < 1.0:
        raise ValueError(f"max_ratio must be in [0, 1), got {max_ratio}")
    batch = x.shape[0]
    if batch < 2 or max_ratio == 0.0:
        return x
    shift = 1 + int(_randint(batch - 1, (1,), x, generator))
    ratio = _uniform((batch,) + (1,) * (x.dim() - 1), x, generator) * max_ratio
    return (1.0 - ratio) * x + ratio * torch.roll(x, shifts=shift, dims=0)


def _mask_along(x: Tensor, dim: int, max_width: int, fill: float, generator: Optional[torch.Generator]) -> Tensor:
    """Set one span of width ~ U{0..max_width} at a uniform position along ``dim`` to ``fill``, per example."""
    size = x.shape[dim]
    if max_width < 0:
        raise ValueError(f"max mask width must be >= 0, got {max_width}")
    batch = x.shape[0]
    width = _randint(min(max_width, size) + 1, (batch,), x, generator)
    start = _randint(size - width + 1, (batch,), x, generator)
    pos = torch.arange(size, device=x.device)
    mask = (pos >= start[:, None]) & (pos < (start + width)[:, None])  # (B, size)
    shape = [batch] + [1] * (x.dim() - 1)
    shape[dim] = size
    return x.masked_fill(mask.view(shape), fill)


def time_mask(x: Tensor, max_width: int, fill: float = 0.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """Mask one span of up to ``max_width`` steps of the last (time) axis of each example."""
    return _mask_along(x, x.dim() - 1, max_width, fill, generator)


def freq_mask(spec: Tensor, max_width: int, fill: float = 0.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """Mask one band of up to ``max_width`` frequency bins of each spectrogram (B, F, T)."""
    if spec.dim() != 3:
        raise ValueError(f"freq_mask expects spectrograms (batch, freq, time), got {tuple(spec.shape)}")
    return _mask_along(spec, 1, max_width, fill, generator)


def freq_shift(spec: Tensor, max_shift: int, fill: float = 0.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """Shift each spectrogram (B, F, T) up or down by s ~ U{-max_shift..max_shift} bins; vacated bins get ``fill``."""
    if spec.dim() != 3:
        raise ValueError(f"freq_shift expects spectrograms (batch, freq, time), got {tuple(spec.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    batch, n_freq, _ = spec.shape
    shift = _randint(2 * max_shift + 1, (batch,), spec, generator) - max_shift  # (B,)
    source = torch.arange(n_freq, device=spec.device)[None, :] - shift[:, None]  # out[f] = in[f - s]
    valid = (source >= 0) & (source < n_freq)
    index = source.clamp(0, n_freq - 1)[:, :, None].expand_as(spec)
    return torch.gather(spec, 1, index).masked_fill(~valid[:, :, None], fill)
