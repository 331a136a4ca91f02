"""Tiny synthetic audio (tones and chirps written to WAV) and a tiny model config for the audio tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from molssl.audio.model import AugmentConfig, ModelConfig
from molssl.audio.wav import write_wav

RATE = 8000
CLIP_SECONDS = 0.3


def synth(kind: str, rng: np.random.Generator, seconds: float = CLIP_SECONDS, rate: int = RATE) -> np.ndarray:
    """A low tone, a high tone or an upward chirp, with random phase, level and a little noise."""
    t = np.arange(round(seconds * rate)) / rate
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "low":
        wave = np.sin(2 * np.pi * rng.uniform(300, 400) * t + phase)
    elif kind == "high":
        wave = np.sin(2 * np.pi * rng.uniform(2000, 2500) * t + phase)
    else:
        wave = np.sin(2 * np.pi * (500 * t + 0.5 * 6000 * t**2) + phase)  # 500 Hz rising 6 kHz/s
    return (rng.uniform(0.2, 0.6) * wave + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def make_folder(root: Path, per_class: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for kind in ("chirp", "high", "low"):
        for i in range(per_class):
            write_wav(root / kind / f"{kind}_{i}.wav", synth(kind, rng), RATE)
    return root


def tiny_model_config(variant: str = "wave-spec") -> ModelConfig:
    """A model small enough for a few CPU steps in a test: 0.2 s crops at 8 kHz, 32 mels."""
    return ModelConfig.for_rate(variant, RATE, 0.2, n_mels=32, wave_width=4, spec_width=4, embed_dim=16, proj_dim=8,
                                augment=AugmentConfig(mix_ratio=0.3, time_mask_fraction=0.1, freq_mask_bins=4,
                                                      freq_shift_bins=2))
