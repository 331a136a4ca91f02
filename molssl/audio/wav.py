"""Reading and writing WAV files, and loading a folder of them as a labelled clip tensor."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly
from torch import Tensor


def read_wav(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and their rate; resampled to ``sample_rate`` when given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no WAV file at {path}")
    try:
        rate, data = wavfile.read(path)
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable PCM/float WAV file: {exc}") from exc
    if data.dtype.kind == "i":
        samples = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    elif data.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        samples = (data.astype(np.float32) - 128.0) / 128.0
    else:
        samples = data.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if sample_rate is not None and sample_rate != rate:
        g = math.gcd(sample_rate, rate)
        samples = resample_poly(samples, sample_rate // g, rate // g).astype(np.float32)
        rate = sample_rate
    return samples, rate


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float samples (clipped to [-1, 1]) as 16-bit PCM."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"write_wav expects mono samples of shape (n,), got {samples.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)  # read_wav divides by 32768
    wavfile.write(path, sample_rate, pcm)
    return path


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop or symmetrically zero-pad ``samples`` to exactly ``length``."""
    n = samples.shape[0]
    if n >= length:
        start = (n - length) // 2
        return samples[start:start + length]
    left = (length - n) // 2
    return np.pad(samples, (left, length - n - left))


@dataclass
class AudioFolder:
    """Clips of equal length with integer labels taken from their subfolder names."""

    clips: Tensor  # (N, L) float32
    labels: Tensor  # (N,) int64
    classes: list[str]
    paths: list[Path]
    sample_rate: int

    def __len__(self) -> int:
        return self.clips.shape[0]


def load_wav_folder(root: str | Path, sample_rate: int, clip_samples: int) -> AudioFolder:
    """Load ``root/<label>/*.wav`` (sorted, so deterministic) into an :class:`AudioFolder`.

    Every clip is resampled to ``sample_rate`` and centre-cropped or zero-padded to ``clip_samples``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.wav")))
    if not classes:
        raise ValueError(f"{root} has no subfolder with .wav files; expected {root}/<label>/<clip>.wav")
    clips, labels, paths = [], [], []
    for index, name in enumerate(classes):
        for path in sorted((root / name).glob("*.wav")):
            samples, _ = read_wav(path, sample_rate)
            clips.append(fit_length(samples, clip_samples))
            labels.append(index)
            paths.append(path)
    return AudioFolder(
        clips=torch.from_numpy(np.stack(clips)).float(),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=classes,
        paths=paths,
        sample_rate=sample_rate,
    )
