"""Small CNN encoders: a 1-D CNN over raw waveforms and a 2-D CNN over log-mel spectrograms.

Both end in global average + max pooling over time (and frequency), so they accept any input
length and return one vector of ``embed_dim`` per clip.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pool_time(x: Tensor) -> Tensor:
    """Global average + max pooling over every axis after the channels."""
    flat = x.flatten(2)
    return flat.mean(dim=2) + flat.amax(dim=2)


class WaveformEncoder(nn.Module):
    """1-D CNN over raw waveforms (B, T) -> (B, embed_dim), with a learned filterbank front end.

    Each clip is scaled to unit RMS; ``n_filters`` strided 1-D convolutions (``filter_length``
    taps, stride ``filter_stride``) act as band-pass filters whose squared outputs are averaged over
    ``pool`` steps and log-compressed (a learnable analogue of a log filterbank, cf. the time-domain
    filterbanks of Zeghidour et al., ICASSP 2018); 1-D convolutions over time follow. The defaults
    give one frame per 160 samples (10 ms at 16 kHz), the hop of the log-mel format.
    """

    def __init__(self, width: int = 64, embed_dim: int = 128, n_filters: int = 64, filter_length: int = 80,
                 filter_stride: int = 10, pool: int = 16) -> None:
        super().__init__()
        self.filters = nn.Conv1d(1, n_filters, filter_length, filter_stride, bias=False)
        self.pool = pool
        channels = [n_filters, width, 2 * width, embed_dim]
        layers: list[nn.Module] = [nn.BatchNorm1d(n_filters)]
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers += [nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]
            if i < len(channels) - 2:
                layers.append(nn.MaxPool1d(2, ceil_mode=True))
        self.net = nn.Sequential(*layers)
        self.embed_dim = embed_dim
        self.min_samples = filter_length + (pool - 1) * filter_stride

    def forward(self, waves: Tensor) -> Tensor:
        if waves.dim() != 2:
            raise ValueError(f"WaveformEncoder expects (batch, samples), got {tuple(waves.shape)}")
        if waves.shape[1] < self.min_samples:
            raise ValueError(f"WaveformEncoder needs at least {self.min_samples} samples, got {waves.shape[1]}")
        waves = waves / (waves.float().square().mean(dim=1, keepdim=True).sqrt() + 1e-5)
        energy = F.avg_pool1d(self.filters(waves.unsqueeze(1)).square(), self.pool, self.pool)
        return _pool_time(self.net(torch.log(energy + 1e-6)))


class SpectrogramEncoder(nn.Module):
    """3x3 convolutions with 2x2 max pooling over (B, F, T) spectrograms -> (B, embed_dim)."""

    def __init__(self, width: int = 16, embed_dim: int = 128, blocks: int = 4) -> None:
        super().__init__()
        channels = [1] + [width * 2 ** i for i in range(blocks - 1)] + [embed_dim]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            if i < blocks - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.net = nn.Sequential(*layers)
        self.embed_dim = embed_dim

    def forward(self, spec: Tensor) -> Tensor:
        if spec.dim() != 3:
            raise ValueError(f"SpectrogramEncoder expects (batch, freq, time), got {tuple(spec.shape)}")
        return _pool_time(self.net(spec.unsqueeze(1)))
