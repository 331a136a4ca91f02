"""Contrastive predictive coding on images, CPC v2 style (Oord et al. 2018, Sec. 3.2; Henaff et al. 2020).

Each image is cut into an overlapping grid of patches; a patch encoder (normalizing per sample, not
over the batch: Henaff et al. replace batch norm by layer norm) embeds every patch to ``z_ij``. A
row-causal context network reads the latent grid from the top: its output ``c_ij`` depends only on rows
``<= i``. For each offset ``k = 1..max_offset``, a linear map ``W_k`` predicts ``z_{i+k, j}`` from
``c_ij``; InfoNCE scores the prediction against every patch latent of the batch (other positions of
the same image and patches of other images are the negatives).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.losses import info_nce
from molssl.vision.data import to_unit_float


def patch_grid(x: Tensor, size: int, stride: int) -> Tensor:
    """(B, C, H, W) -> (B, G, G', C, size, size) patches at ``stride`` (overlapping when ``stride < size``)."""
    if x.shape[-1] < size or x.shape[-2] < size:
        raise ValueError(f"patches of {size} pixels do not fit {x.shape[-2]}x{x.shape[-1]} images")
    patches = x.unfold(2, size, stride).unfold(3, size, stride)  # (B, C, G, G', size, size)
    return patches.permute(0, 2, 3, 1, 4, 5)


class PatchGridFeatures(nn.Module):
    """Whole-image features as CPC's encoder sees images: the mean of its patch features over the grid
    (the spatially pooled representation CPC v2 evaluates with a linear classifier)."""

    input_kind = "patches"

    def __init__(self, encoder: nn.Module, size: int, stride: int) -> None:
        super().__init__()
        self.encoder, self.size, self.stride = encoder, size, stride
        self.feature_dim = encoder.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        patches = patch_grid(to_unit_float(x), self.size, self.stride)
        b = patches.shape[0]
        return self.encoder(patches.flatten(0, 2)).view(b, -1, self.feature_dim).mean(dim=1)


class RowCausalContext(nn.Module):
    """A masked-convolution context network over a latent grid (B, D, G, G): output row i sees rows <= i only.

    Each residual block applies a (2 x 3) convolution to the grid padded with one row on top and none at
    the bottom, so it mixes the current and the previous row (and neighbouring columns); ``layers`` blocks
    reach ``layers`` rows up. Nothing below a row can reach it (tested).
    """

    def __init__(self, dim: int, hidden: int, layers: int = 2) -> None:
        super().__init__()
        self.inp = nn.Conv2d(dim, hidden, 1)
        self.blocks = nn.ModuleList(nn.Conv2d(hidden, hidden, (2, 3)) for _ in range(layers))
        self.out = nn.Conv2d(hidden, hidden, 1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.inp(z)
        for conv in self.blocks:
            h = h + conv(F.pad(F.relu(h), (1, 1, 1, 0)))  # pad (left, right, top, bottom)
        return self.out(F.relu(h))


class CPC(nn.Module):
    """CPC v2-style training module on images (see the module docstring).

    Patches of ``patch_size`` at ``patch_stride`` (half overlapping, as in CPC: 64-px patches at 32 px);
    the context network has ``context_layers`` blocks of ``context_dim`` channels; predictions reach
    ``max_offset`` rows below (Oord et al. predict up to five rows of a 7 x 7 grid; three here, of a 6 x 6
    grid on 28-px digits, to bound the cost of scoring every prediction against every patch of the batch).
    ``augment`` is applied to the whole image before it is cut.
    """

    def __init__(self, encoder: nn.Module, augment: nn.Module, patch_size: int = 8, patch_stride: int = 4,
                 context_dim: int = 128, context_layers: int = 2, max_offset: int = 3) -> None:
        super().__init__()
        if max_offset < 1:
            raise ValueError(f"max_offset must be at least 1, got {max_offset}")
        self.encoder = encoder
        self.augment = augment
        self.patch_size, self.patch_stride, self.max_offset = patch_size, patch_stride, max_offset
        self.context = RowCausalContext(encoder.feature_dim, context_dim, context_layers)
        self.predictors = nn.ModuleList(nn.Conv2d(context_dim, encoder.feature_dim, 1) for _ in range(max_offset))

    def latents(self, images: Tensor) -> Tensor:
        """Patch latents as a grid (B, D, G, G')."""
        patches = patch_grid(images, self.patch_size, self.patch_stride)
        b, g, h = patches.shape[:3]
        z = self.encoder(patches.flatten(0, 2))
        return z.view(b, g, h, -1).permute(0, 3, 1, 2)

    def loss_from_latents(self, z: Tensor) -> tuple[Tensor, dict]:
        """InfoNCE of every prediction ``W_k c_ij`` against all latents of the batch, mean over offsets."""
        b, d, g, h = z.shape
        if g <= self.max_offset:
            raise ValueError(f"a grid of {g} rows is too short to predict {self.max_offset} rows ahead; "
                             "use smaller patches or a smaller max_offset")
        context = self.context(z)
        candidates = z.permute(0, 2, 3, 1).reshape(-1, d)  # index: (image * g + row) * h + column
        rows = torch.arange(g, device=z.device).view(1, g, 1)
        cols = torch.arange(h, device=z.device).view(1, 1, h)
        images = torch.arange(b, device=z.device).view(b, 1, 1)
        losses, hits = [], []
        for k, predictor in enumerate(self.predictors, start=1):
            prediction = predictor(context[:, :, :g - k]).permute(0, 2, 3, 1).reshape(-1, d)
            targets = ((images * g + rows[:, :g - k] + k) * h + cols).reshape(-1)
            losses.append(info_nce(prediction, candidates, targets, normalize=False))
            with torch.no_grad():
                hits.append((prediction.float() @ candidates.float().t()).argmax(1).eq(targets).float().mean())
        return torch.stack(losses).mean(), {"acc": float(torch.stack(hits).mean())}

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        return self.loss_from_latents(self.latents(self.augment(to_unit_float(batch))))

    def probe_features(self) -> PatchGridFeatures:
        return PatchGridFeatures(self.encoder, self.patch_size, self.patch_stride)
