"""Projection and prediction heads (MLPs on top of an encoder's representation)."""
from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn


def _relu() -> nn.Module:
    return nn.ReLU(inplace=True)


class MLPHead(nn.Module):
    """A stack of Linear layers with an activation (ReLU by default; optional BatchNorm) between them, none after the last."""

    def __init__(self, dims: Sequence[int], batch_norm: bool = False,
                 activation: Callable[[], nn.Module] = _relu) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError("an MLP head needs at least an input and an output size")
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(dims) - 2:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(d_out))
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ProjectionHead(MLPHead):
    """SimCLR/MolCLR projection head: in -> hidden -> ReLU -> out (MolCLR: 512 -> 512 -> 256)."""

    def __init__(self, in_dim: int = 512, hidden_dim: int = 512, out_dim: int = 256, batch_norm: bool = False) -> None:
        super().__init__([in_dim, hidden_dim, out_dim], batch_norm=batch_norm)


class PredictionHead(MLPHead):
    """BYOL / SODA predictor: in -> hidden -> BN -> ReLU -> out."""

    def __init__(self, in_dim: int = 256, hidden_dim: int = 1024, out_dim: int = 256) -> None:
        super().__init__([in_dim, hidden_dim, out_dim], batch_norm=True)
