"""Clip sampling and temporally consistent spatial augmentation for video SSL (CVRL, Qian et al. 2021)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from molssl.vision.augment import AugmentConfig, augmentation_ops
from molssl.vision.data import to_unit_float


def to_clips(videos: Tensor) -> Tensor:
    """(B, T, C, H, W) uint8 or float videos to float (B, C, T, H, W) clips in [0, 1]."""
    if videos.dim() != 5:
        raise ValueError(f"videos must be (B, T, C, H, W), got {tuple(videos.shape)}")
    return to_unit_float(videos).permute(0, 2, 1, 3, 4)


def gather_clips(videos: Tensor, starts: Tensor, length: int) -> Tensor:
    """Frames ``starts[i] .. starts[i] + length - 1`` of every video i: (B, length, C, H, W)."""
    index = starts.view(-1, 1) + torch.arange(length, device=videos.device)
    return videos[torch.arange(videos.shape[0], device=videos.device).view(-1, 1), index]


def interval_weights(max_interval: int, c: Optional[float] = None) -> Tensor:
    """CVRL's decreasing linear interval distribution P(t) proportional to c - t + 1 for t = 0..max_interval.

    Qian et al. (2021, Sec. 3.2 and Fig. 3) sample the gap between the two clips' start times from a
    monotonically decreasing distribution (P(t) proportional to -t + c works best): nearby clips are
    common, distant ones rarer. ``c`` defaults to ``max_interval``, so the largest gap keeps weight 1.
    """
    if max_interval < 0:
        raise ValueError("videos must be at least as long as one clip")
    c = float(max_interval) if c is None else float(c)
    if c < max_interval:
        raise ValueError(f"c must be >= the largest interval {max_interval} so every weight is positive, got {c}")
    return c - torch.arange(max_interval + 1, dtype=torch.float64) + 1.0


def sample_clip_starts(batch: int, frames: int, length: int, device: torch.device | str = "cpu",
                       c: Optional[float] = None) -> tuple[Tensor, Tensor]:
    """Start frames of two clips per video: interval t ~ P(t), first start uniform in [0, T - length - t]."""
    max_interval = frames - length
    if max_interval < 0:
        raise ValueError(f"clips of {length} frames do not fit in videos of {frames} frames")
    interval = torch.multinomial(interval_weights(max_interval, c).float(), batch, replacement=True)
    first = (torch.rand(batch) * (max_interval - interval + 1)).long()
    return first.to(device), (first + interval).to(device)


class VideoAugment(nn.Module):
    """The image view augmentation applied to (B, C, T, H, W) clips with ONE parameter set per clip.

    kornia's ``VideoSequential(same_on_frame=True)`` draws crop/flip/jitter/grey/blur parameters once per clip
    and applies them to every frame, as CVRL's temporally consistent augmentation requires.
    """

    def __init__(self, image_size: tuple[int, int], channels: int, config: AugmentConfig = AugmentConfig()) -> None:
        super().__init__()
        import kornia.augmentation as K

        self.channels = channels
        self.ops = K.VideoSequential(*augmentation_ops(image_size, channels, config), data_format="BCTHW",
                                     same_on_frame=True)

    def forward(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5 or clips.shape[1] != self.channels or not clips.dtype.is_floating_point:
            raise ValueError(f"expected float clips (B, {self.channels}, T, H, W) in [0, 1], got {clips.dtype} {tuple(clips.shape)}")
        return self.ops(clips).clamp_(0.0, 1.0)


class ClipViews(nn.Module):
    """CVRL's view maker: ``(view1, view2)``, two ``clip_len``-frame clips of each video, CVRL-sampled apart,
    each augmented consistently over its frames."""

    def __init__(self, clip_len: int, augment: nn.Module, interval_c: Optional[float] = None) -> None:
        super().__init__()
        self.clip_len = clip_len
        self.augment = augment
        self.interval_c = interval_c

    def forward(self, videos: Tensor) -> tuple[Tensor, Tensor]:
        first, second = sample_clip_starts(videos.shape[0], videos.shape[1], self.clip_len, videos.device, self.interval_c)
        return (self.augment(to_clips(gather_clips(videos, first, self.clip_len))),
                self.augment(to_clips(gather_clips(videos, second, self.clip_len))))
