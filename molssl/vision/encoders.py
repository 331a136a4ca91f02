"""Small convolutional encoders (2D for images, 3D for video clips) ending in global average pooling."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import Tensor, nn

Stride = Union[int, Sequence[int]]
NORMS = ("batch", "layer")


def default_strides(stages: int) -> tuple[int, ...]:
    """Stride 2 in every stage but the last: (2, 2, 1) for three stages."""
    return (2,) * (stages - 1) + (1,)


class ConvEncoder(nn.Module):
    """Conv-BN-ReLU stages (3x3 or 3x3x3 kernels) then global average pooling to ``widths[-1]`` features.

    Works on any input size, so the same encoder embeds whole images, jigsaw tiles or video clips.
    ``dims=2`` takes (B, C, H, W); ``dims=3`` takes clips (B, C, T, H, W). Default strides: see
    :func:`default_strides`. :meth:`feature_map` gives the last stage's output before pooling.
    ``norm="layer"`` normalizes each sample on its own (GroupNorm with one group) instead of over the
    batch, as CPC v2 does so that no statistic is shared between the patches it contrasts (Henaff et al. 2020).
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        strides: Optional[Sequence[Stride]] = None,
        dims: int = 2,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 (images) or 3 (video clips), got {dims}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        strides = default_strides(len(widths)) if strides is None else strides
        if len(widths) == 0 or len(widths) != len(strides):
            raise ValueError(f"need one stride per stage: {len(widths)} widths, {len(strides)} strides")
        conv, batch_norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d) if dims == 2 else (
            nn.Conv3d, nn.BatchNorm3d, nn.AdaptiveAvgPool3d)
        normalize = batch_norm if norm == "batch" else (lambda width: nn.GroupNorm(1, width))
        layers: list[nn.Module] = []
        channels = in_channels
        for width, stride in zip(widths, strides):
            layers += [conv(channels, width, 3, stride=stride, padding=1, bias=False), normalize(width), nn.ReLU(inplace=True)]
            channels = width
        self.net = nn.Sequential(*layers)
        self.pool = nn.Sequential(pool(1), nn.Flatten())
        self.in_channels = in_channels
        self.dims = dims
        self.feature_dim = channels

    def feature_map(self, x: Tensor) -> Tensor:
        """The last stage's output before global pooling: (B, widths[-1], ...) at the input's reduced size."""
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            layout = "(B, C, H, W)" if self.dims == 2 else "(B, C, T, H, W)"
            raise ValueError(f"expected input {layout} with C={self.in_channels}, got {tuple(x.shape)}")
        return self.net(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.feature_map(x))
