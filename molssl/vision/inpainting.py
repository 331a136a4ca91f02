"""Context encoder: learn features by inpainting masked regions of an image (Pathak et al. 2016).

``mask="central"``: the central square covering a quarter of the image (half its side), Pathak et al.'s
central-region setting. ``mask="random-blocks"``: ``blocks`` squares of a quarter of the side each, placed
at random per image and possibly overlapping, together covering up to a quarter of the image (their
random-block setting; Pathak et al. report that central-region features latch onto the hole's boundary and
learn features with random masks). The masked pixels are replaced by the mean value of the context, the
encoder reads the rest, and a decoder of transposed convolutions on the encoder's feature map reconstructs
the image; the loss is the squared error on the masked pixels only. Left out: the adversarial term (Pathak et al. mix it in with weight 0.001 for
sharper inpaintings; representation learning needs only the reconstruction), the channel-wise fully
connected bottleneck (the decoder reads the spatial feature map directly) and the extra weight on a band
overlapping the context. Probes read the encoder on whole, unmasked images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.vision.data import to_unit_float


def central_mask(height: int, width: int, fraction: float = 0.5, device: torch.device | str = "cpu") -> Tensor:
    """(H, W) bool, True on the central square whose side is ``fraction`` of the shorter image side."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the hole must cover a fraction in (0, 1) of the side, got {fraction}")
    side = max(1, int(round(fraction * min(height, width))))
    top, left = (height - side) // 2, (width - side) // 2
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[top:top + side, left:left + side] = True
    return mask


def random_block_mask(batch: int, height: int, width: int, blocks: int = 4, fraction: float = 0.25,
                      device: torch.device | str = "cpu") -> Tensor:
    """(B, H, W) bool: per image, ``blocks`` squares whose side is ``fraction`` of the shorter side, at uniformly
    drawn positions (they may overlap)."""
    side = max(1, int(round(fraction * min(height, width))))
    top = torch.randint(0, height - side + 1, (batch, blocks, 1, 1), device=device)
    left = torch.randint(0, width - side + 1, (batch, blocks, 1, 1), device=device)
    rows = torch.arange(height, device=device).view(1, 1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, 1, width)
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return inside.any(dim=1)


MASKS = ("central", "random-blocks")


class ContextEncoder(nn.Module):
    """Inpainting training module; ``upsamplings`` transposed convolutions (x2 each) take the encoder's
    feature map back to the image size (2 for the default encoder's 4x reduction)."""

    def __init__(self, encoder: nn.Module, hole_fraction: float = 0.5, decoder_width: int = 64,
                 upsamplings: int = 2, mask: str = "central", blocks: int = 4) -> None:
        super().__init__()
        if not hasattr(encoder, "feature_map"):
            raise ValueError(f"the context encoder needs an encoder with a feature_map, got {type(encoder).__name__}")
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {', '.join(MASKS)}, got {mask!r}")
        self.encoder = encoder
        self.hole_fraction = hole_fraction
        self.mask, self.blocks = mask, blocks
        layers: list[nn.Module] = []
        channels = encoder.feature_dim
        for _ in range(upsamplings):
            layers += [nn.ConvTranspose2d(channels, decoder_width, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(decoder_width), nn.ReLU(inplace=True)]
            channels = decoder_width
        layers.append(nn.Conv2d(channels, encoder.in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*layers)

    def hide(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The images with the masked pixels filled by the mean value of the batch's context pixels (per channel,
        so nothing of the holes leaks into the fill), and the mask (B, H, W; True = hidden)."""
        b, _, h, w = images.shape
        if self.mask == "central":
            mask = central_mask(h, w, self.hole_fraction, images.device).expand(b, h, w)
        else:
            mask = random_block_mask(b, h, w, self.blocks, self.hole_fraction / 2, images.device)
        context = (~mask).unsqueeze(1).to(images.dtype)
        fill = (images * context).sum(dim=(0, 2, 3)) / context.sum()
        return torch.where(mask.unsqueeze(1), fill.view(1, -1, 1, 1), images), mask

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        images = to_unit_float(batch)
        masked, mask = self.hide(images)
        decoded = self.decoder(self.encoder.feature_map(masked))
        if decoded.shape[-2:] != images.shape[-2:]:
            decoded = F.interpolate(decoded, size=images.shape[-2:], mode="bilinear", align_corners=False)
        reconstruction = torch.sigmoid(decoded.float())
        error = (reconstruction - images).pow(2).mean(dim=1)  # (B, H, W)
        loss = error[mask].mean()
        return loss, {"context_mse": float(error[~mask].mean().detach())}
