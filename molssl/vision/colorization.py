"""Colorization as a pretext task: predict an image's colour from its lightness (Zhang et al. 2016).

Images are converted to CIE Lab; the encoder sees the lightness L only. Colour is predicted as a
classification over quantized ab values (grid size 10, Zhang et al. Sec. 2.1) at the resolution of the
encoder's feature map, trained with class rebalancing: a pixel whose colour bin has smoothed empirical
probability p gets weight ``w ~ 1 / ((1 - lambda) p + lambda / Q)``, normalized so E_p[w] = 1, with
lambda = 1/2 and the empirical distribution smoothed by a Gaussian of sigma 5 in ab units (Sec. 2.2,
Eq. 3-4), so that the rare colours of heteroatoms are not drowned by the black and white pixels.
Simplification: the target is the nearest bin of the area-averaged ab (a one-hot target, where the paper
soft-encodes over the 5 nearest bins). Q is the number of bins that occur in the training images (the
paper's 313 in-gamut bins of ImageNet). Needs colour images: RDKit depictions (``--data <SMILES file>``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.vision.data import to_unit_float
from molssl.vision.encoders import ConvEncoder

AB_STEP = 10.0  # Zhang et al.: ab space quantized with grid size 10
AB_LIMIT = 110.0  # bin centres -110 ... 110 cover the ab range of sRGB colours
AB_BINS = int(2 * AB_LIMIT / AB_STEP) + 1  # per axis; AB_BINS**2 classes
GREY_BIN = (AB_BINS // 2) * AB_BINS + AB_BINS // 2  # a = b = 0: black, white and grey pixels


def lab(images: Tensor) -> Tensor:
    """Float RGB images in [0, 1] (B, 3, H, W) -> CIE Lab (L in [0, 100], a and b about [-110, 110])."""
    from kornia.color import rgb_to_lab

    if images.shape[1] != 3:
        raise ValueError(f"colorization needs colour (3-channel) images, got {images.shape[1]} channel(s); "
                         "render molecules as RDKit depictions with --data <SMILES file>")
    return rgb_to_lab(images.float())


def lightness(images: Tensor) -> Tensor:
    """The L channel scaled to [0, 1], (B, 1, H, W): what the colorization encoder reads."""
    return lab(to_unit_float(images))[:, :1] / 100.0


def quantize_ab(ab: Tensor) -> Tensor:
    """(B, 2, H, W) ab values -> (B, H, W) index of the nearest bin centre on the 10-unit grid."""
    index = ((ab.clamp(-AB_LIMIT, AB_LIMIT) + AB_LIMIT) / AB_STEP).round().long()
    return index[:, 0] * AB_BINS + index[:, 1]


def rebalancing_weights(counts: Tensor, mix: float = 0.5, sigma: float = 5.0) -> Tensor:
    """Zhang et al.'s per-bin weights from bin counts (AB_BINS**2,): smooth, mix with uniform, invert, normalize."""
    grid = counts.double().view(1, 1, AB_BINS, AB_BINS)
    radius = max(1, int(3 * sigma / AB_STEP))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64) * AB_STEP
    kernel1d = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = (kernel1d[:, None] * kernel1d[None]).view(1, 1, 2 * radius + 1, 2 * radius + 1)
    smoothed = F.conv2d(grid, kernel / kernel.sum(), padding=radius).flatten()
    seen = counts > 0
    p = smoothed * seen / (smoothed * seen).sum()
    q = int(seen.sum())
    weights = 1.0 / ((1.0 - mix) * p + mix / q)
    weights = weights / (p * weights).sum()
    return (weights * seen).float()


class LightnessFeatures(nn.Module):
    """The colorization encoder on an image's lightness: what probes of a colorization run embed."""

    input_kind = "lightness"

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_dim = encoder.feature_dim

    def forward(self, images: Tensor) -> Tensor:
        return self.encoder(lightness(images))


class Colorization(nn.Module):
    """Colorization training module: ``encoder`` (1 input channel) -> its own conv stage -> 1x1 conv to the
    AB_BINS**2 colour classes at every position of the feature map. :meth:`prepare` counts the colour bins
    of the training images once (kept as a buffer, so resumed runs reuse it)."""

    bin_counts: Tensor

    def __init__(self, encoder: nn.Module, rebalance: float = 0.5) -> None:
        super().__init__()
        if getattr(encoder, "in_channels", 1) != 1:
            raise ValueError("the colorization encoder reads one (lightness) channel")
        self.encoder = encoder
        self.rebalance = rebalance
        width = encoder.feature_dim
        self.head = nn.Sequential(ConvEncoder(width, (width,), (1,)).net, nn.Conv2d(width, AB_BINS ** 2, 1))
        self.register_buffer("bin_counts", torch.ones(AB_BINS ** 2))

    @staticmethod
    def targets(lab_images: Tensor, size: tuple[int, int]) -> Tensor:
        """Colour-bin targets (B, h, w) at ``size``: the nearest bin of the area-averaged ab of Lab images."""
        return quantize_ab(F.adaptive_avg_pool2d(lab_images[:, 1:], size))

    @torch.no_grad()
    def prepare(self, images: Tensor, batch_size: int = 512) -> None:
        """Count the colour bins of the training images (uint8 (N, 3, H, W)) at the output resolution."""
        counts = torch.zeros_like(self.bin_counts)
        device = self.bin_counts.device
        for start in range(0, images.shape[0], batch_size):
            lab_images = lab(to_unit_float(images[start:start + batch_size].to(device)))
            size = self.encoder.feature_map(lab_images[:, :1] / 100.0).shape[-2:]
            target = self.targets(lab_images, size)
            counts += torch.bincount(target.flatten(), minlength=counts.numel()).to(counts.dtype)
        self.bin_counts.copy_(counts)

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        lab_images = lab(to_unit_float(batch))
        logits = self.head(self.encoder.feature_map(lab_images[:, :1] / 100.0))
        target = self.targets(lab_images, logits.shape[-2:])
        weights = rebalancing_weights(self.bin_counts, self.rebalance).to(logits.device)
        per_pixel = F.cross_entropy(logits.float(), target, reduction="none")
        loss = (weights[target] * per_pixel).mean()
        hits = logits.argmax(1) == target
        colour = target != GREY_BIN
        return loss, {"acc": float(hits.float().mean()),
                      "colour_acc": float(hits[colour].float().mean()) if colour.any() else 0.0}

    def image_features(self) -> LightnessFeatures:
        return LightnessFeatures(self.encoder)

    probe_features = image_features
