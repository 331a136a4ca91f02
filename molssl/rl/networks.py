"""Pixel SAC networks: a shared convolutional encoder, twin Q critic and squashed-Gaussian actor.

Architecture after SAC-AE (Yarats et al. 2019) as used by SODA (Hansen & Wang 2021): 3x3 convolutions
with 32 filters, a linear + LayerNorm + tanh trunk to a 50-d feature, MLPs on top. The convolutions
belong to the critic; the actor reads them detached. Depth, strides and widths are configurable so
that the network fits a small CPU budget.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.heads import MLPHead

LOG_STD_BOUNDS = (-10.0, 2.0)  # SAC-AE / SODA actor log-std range


class ConvEncoder(nn.Module):
    """Stacked uint8-valued frames (N, C, H, W) -> flattened conv features (N, out_dim); pixels scaled to [0, 1]."""

    def __init__(self, obs_shape: Sequence[int], strides: Sequence[int] = (2, 2), num_filters: int = 32) -> None:
        super().__init__()
        if len(obs_shape) != 3:
            raise ValueError(f"obs_shape must be (C, H, W), got {tuple(obs_shape)}")
        if not strides:
            raise ValueError("the encoder needs at least one convolution (strides is empty)")
        layers: list[nn.Module] = []
        channels = obs_shape[0]
        for stride in strides:
            layers += [nn.Conv2d(channels, num_filters, 3, stride=stride), nn.ReLU()]
            channels = num_filters
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            probe = self.convs(torch.zeros(1, *obs_shape))
        if probe.shape[-1] < 1 or probe.shape[-2] < 1:
            raise ValueError(f"images of {tuple(obs_shape[1:])} are too small for conv strides {tuple(strides)}")
        self.out_dim = probe.numel()

    def forward(self, obs: Tensor) -> Tensor:
        return self.convs(obs / 255.0).flatten(1)


def _trunk(in_dim: int, feature_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


class Critic(nn.Module):
    """Twin Q-networks ``Q_i(trunk(encoder(o)), a)`` that own the shared encoder."""

    def __init__(self, encoder: ConvEncoder, action_dim: int, feature_dim: int = 50, hidden_dim: int = 256) -> None:
        super().__init__()
        self.encoder = encoder
        self.trunk = _trunk(encoder.out_dim, feature_dim)
        self.q1 = MLPHead([feature_dim + action_dim, hidden_dim, hidden_dim, 1])
        self.q2 = MLPHead([feature_dim + action_dim, hidden_dim, hidden_dim, 1])

    def features(self, obs: Tensor) -> Tensor:
        """``trunk(encoder(obs))``: the representation SODA's projection reads."""
        return self.trunk(self.encoder(obs))

    def q_values(self, conv_features: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """Both Q-values from conv features that were already computed (and possibly detached)."""
        h = torch.cat([self.trunk(conv_features), action], dim=1)
        return self.q1(h), self.q2(h)

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        return self.q_values(self.encoder(obs), action)


class Actor(nn.Module):
    """Gaussian policy head on (detached) conv features: returns the mean and bounded log-std of the pre-tanh action."""

    def __init__(self, conv_dim: int, action_dim: int, feature_dim: int = 50, hidden_dim: int = 256) -> None:
        super().__init__()
        self.trunk = _trunk(conv_dim, feature_dim)
        self.head = MLPHead([feature_dim, hidden_dim, hidden_dim, 2 * action_dim])

    def forward(self, conv_features: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw_log_std = self.head(self.trunk(conv_features)).chunk(2, dim=1)
        low, high = LOG_STD_BOUNDS
        log_std = low + 0.5 * (high - low) * (torch.tanh(raw_log_std) + 1.0)
        return mean, log_std


def squashed_gaussian(mean: Tensor, log_std: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
    """Sample ``a = tanh(u)``, ``u ~ N(mean, std)`` (reparameterized), and return ``(a, log pi(a))`` of shape (N, 1).

    ``log pi(a) = log N(u) - sum log(1 - tanh(u)^2)``, the tanh correction written as
    ``2 (log 2 - u - softplus(-2u))`` for numerical stability. ``deterministic`` uses ``u = mean``.
    """
    std = log_std.exp()
    u = mean if deterministic else mean + std * torch.randn_like(mean)
    gaussian = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=1, keepdim=True)
    correction = (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(dim=1, keepdim=True)
    return torch.tanh(u), gaussian - correction
