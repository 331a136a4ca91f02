"""The multi-format contrastive training module (Wang & van den Oord 2021, arXiv:2103.06508).

Two crops of one recording, taken at different times, are each augmented and encoded in a
*format*: ``wave`` (1-D CNN on the raw waveform) or ``spec`` (log-mel spectrogram computed on the
device, then a 2-D CNN). Each format has its own encoder and projection head; NT-Xent
(``molssl.core.nt_xent``) pulls the two views of one recording together against the rest of the
batch. ``wave-spec`` is the paper's cross-format objective; ``wave-wave`` and ``spec-spec`` are the
single-format baselines (one shared encoder for both views).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.audio.augment import freq_mask, freq_shift, mix_with_other, random_crop_views, time_mask
from molssl.audio.encoders import SpectrogramEncoder, WaveformEncoder
from molssl.audio.mel import LogMelSpectrogram
from molssl.core.heads import ProjectionHead
from molssl.core.losses import nt_xent

FORMATS = ("wave", "spec")
VARIANTS = {"wave-spec": ("wave", "spec"), "wave-wave": ("wave", "wave"), "spec-spec": ("spec", "spec")}


@dataclass
class AugmentConfig:
    """Augmentation strengths; a zero switches that augmentation off."""

    mix_ratio: float = 0.3  # weight of the other clip: r ~ U[0, mix_ratio]
    time_mask_fraction: float = 0.15  # longest time mask, as a fraction of the crop
    freq_mask_bins: int = 8  # widest frequency mask, in mel bins
    freq_shift_bins: int = 4  # largest frequency shift, in mel bins


@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`MultiFormatContrastive` (stored in checkpoints)."""

    variant: str = "wave-spec"
    sample_rate: int = 16000
    crop_samples: int = 12000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    wave_width: int = 64
    spec_width: int = 16
    embed_dim: int = 128
    proj_dim: int = 64
    temperature: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_rate(cls, variant: str, sample_rate: int, crop_seconds: float, **kwargs) -> "ModelConfig":
        """A config with 25 ms STFT windows and a 10 ms hop at ``sample_rate``, cropping ``crop_seconds``."""
        if sample_rate < 1000:
            raise ValueError(f"sample rate must be at least 1000 Hz, got {sample_rate}")
        return cls(variant=variant, sample_rate=sample_rate, crop_samples=round(crop_seconds * sample_rate),
                   n_fft=round(0.025 * sample_rate), hop_length=round(0.010 * sample_rate), **kwargs)


class MultiFormatContrastive(nn.Module):
    """Training module for :class:`molssl.core.trainer.Trainer`: ``forward(clips)`` -> (loss, metrics)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.formats = VARIANTS[config.variant]
        self.logmel = LogMelSpectrogram(config.sample_rate, config.n_fft, config.hop_length, config.n_mels)
        builders = {
            "wave": lambda: WaveformEncoder(config.wave_width, config.embed_dim),
            "spec": lambda: SpectrogramEncoder(config.spec_width, config.embed_dim),
        }
        self.encoders = nn.ModuleDict({f: builders[f]() for f in dict.fromkeys(self.formats)})
        self.heads = nn.ModuleDict(
            {f: ProjectionHead(config.embed_dim, config.embed_dim, config.proj_dim, batch_norm=True)
             for f in self.encoders}
        )

    def _check_format(self, fmt: str) -> None:
        if fmt not in self.encoders:
            raise ValueError(f"this {self.config.variant} model has no {fmt!r} encoder; it has {list(self.encoders)}")

    def to_format(self, waves: Tensor, fmt: str, augment: bool, generator: Optional[torch.Generator] = None) -> Tensor:
        """Waveform crops (B, T) -> the encoder input of ``fmt``, augmented (masking, shift) when ``augment``."""
        aug = self.config.augment
        if fmt == "wave":
            width = int(aug.time_mask_fraction * waves.shape[1])
            return time_mask(waves, width, generator=generator) if augment and width > 0 else waves
        spec = self.logmel(waves)
        if augment:
            width = int(aug.time_mask_fraction * spec.shape[2])
            if width > 0:
                spec = time_mask(spec, width, generator=generator)
            if aug.freq_mask_bins > 0:
                spec = freq_mask(spec, aug.freq_mask_bins, generator=generator)
            if aug.freq_shift_bins > 0:
                spec = freq_shift(spec, aug.freq_shift_bins, generator=generator)
        return spec

    def represent(self, waves: Tensor, fmt: str) -> Tensor:
        """Encoder output (B, embed_dim) of un-augmented waveforms in format ``fmt`` (used by the probe)."""
        self._check_format(fmt)
        return self.encoders[fmt](self.to_format(waves, fmt, augment=False))

    def project_views(self, clips: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
        """Crop, augment, encode and project both views of each clip (B, T) -> two (B, proj_dim)."""
        views = random_crop_views(clips, self.config.crop_samples, generator)
        projections = []
        for view, fmt in zip(views, self.formats):
            view = mix_with_other(view, self.config.augment.mix_ratio, generator)
            x = self.to_format(view, fmt, augment=True, generator=generator)
            projections.append(self.heads[fmt](self.encoders[fmt](x)))
        return projections[0], projections[1]

    def forward(self, clips: Tensor) -> tuple[Tensor, dict]:
        if clips.shape[0] < 2:
            raise ValueError("a contrastive batch needs at least 2 clips")
        z1, z2 = self.project_views(clips)
        loss = nt_xent(z1, z2, self.config.temperature)
        with torch.no_grad():
            sim = F.normalize(z1.float(), dim=1) @ F.normalize(z2.float(), dim=1).t()
            top1 = (sim.argmax(dim=1) == torch.arange(sim.shape[0], device=sim.device)).float().mean()
        return loss, {"pos_cosine": sim.diagonal().mean(), "cross_view_top1": top1}
