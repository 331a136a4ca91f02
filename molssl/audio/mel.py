"""Mel scale, triangular mel filterbank and an on-device log-mel spectrogram (``torch.stft``).

Two mel scales are provided: ``"htk"``, m = 2595 log10(1 + f / 700) (O'Shaughnessy 1987, as in HTK),
and ``"slaney"`` (Slaney's Auditory Toolbox): linear, m = 3 f / 200, below 1 kHz and logarithmic,
m = 15 + 27 ln(f / 1000) / ln(6.4), above. ``norm="slaney"`` scales each triangle by 2 / (its width
in Hz) so that every filter has unit area. These conventions match librosa's ``filters.mel``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

MEL_SCALES = ("htk", "slaney")
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _check_scale(scale: str) -> None:
    if scale not in MEL_SCALES:
        raise ValueError(f"mel scale must be one of {MEL_SCALES}, got {scale!r}")


def hz_to_mel(hz: Tensor, scale: str = "htk") -> Tensor:
    """Frequencies in Hz to mels."""
    _check_scale(scale)
    hz = torch.as_tensor(hz, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_HZ_PER_MEL
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    log_part = break_mel + torch.log(hz.clamp_min(_SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return torch.where(hz >= _SLANEY_BREAK_HZ, log_part, linear)


def mel_to_hz(mel: Tensor, scale: str = "htk") -> Tensor:
    """Mels to frequencies in Hz (inverse of :func:`hz_to_mel`)."""
    _check_scale(scale)
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    log_part = _SLANEY_BREAK_HZ * torch.exp(_SLANEY_LOG_STEP * (mel - break_mel))
    return torch.where(mel >= break_mel, log_part, mel * _SLANEY_HZ_PER_MEL)


def mel_filterbank(
    n_fft: int,
    sample_rate: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: str = "htk",
    norm: str | None = None,
) -> Tensor:
    """Triangular filters of shape (n_mels, n_fft // 2 + 1), to multiply a power spectrum with.

    Filter m rises linearly from edge m to its centre m + 1 and falls to edge m + 2, where the
    n_mels + 2 edges are equally spaced on the mel scale between ``f_min`` and ``f_max``.
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}")
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"need n_mels >= 1 and n_fft >= 2, got n_mels={n_mels}, n_fft={n_fft}")
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    bins_hz = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(float(hz_to_mel(f_min, scale)), float(hz_to_mel(f_max, scale)), n_mels + 2,
                               dtype=torch.float64)
    edges_hz = mel_to_hz(edges_mel, scale)
    left, centre, right = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz - left) / (centre - left)
    falling = (right - bins_hz) / (right - centre)
    weights = torch.minimum(rising, falling).clamp_min(0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (right - left))
    return weights.float()


class LogMelSpectrogram(nn.Module):
    """Waveforms (B, T) -> log-mel power spectrograms (B, n_mels, frames), computed on the input's device.

    Hann-windowed ``torch.stft`` with centred, reflect-padded frames; log(mel + ``log_offset``);
    with ``standardize`` each spectrogram is shifted and scaled to zero mean, unit variance.
    """

    window: Tensor
    filterbank: Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        scale: str = "htk",
        log_offset: float = 1e-6,
        standardize: bool = True,
    ) -> None:
        super().__init__()
        if hop_length < 1:
            raise ValueError(f"hop_length must be positive, got {hop_length}")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.log_offset, self.standardize = log_offset, standardize
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filterbank", mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max, scale),
                             persistent=False)

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.hop_length + 1

    def forward(self, waves: Tensor) -> Tensor:
        if waves.dim() != 2:
            raise ValueError(f"expected waveforms of shape (batch, samples), got {tuple(waves.shape)}")
        if waves.shape[1] <= self.n_fft // 2:
            raise ValueError(f"clips of {waves.shape[1]} samples are too short for n_fft={self.n_fft}")
        with torch.autocast(device_type=waves.device.type, enabled=False):
            spec = torch.stft(waves.float(), self.n_fft, self.hop_length, window=self.window, center=True,
                              pad_mode="reflect", return_complex=True)
            power = spec.real.square() + spec.imag.square()
            logmel = torch.log(torch.matmul(self.filterbank, power) + self.log_offset)
            if self.standardize:
                mean = logmel.mean(dim=(1, 2), keepdim=True)
                std = logmel.std(dim=(1, 2), keepdim=True)
                logmel = (logmel - mean) / (std + 1e-5)
        return logmel
