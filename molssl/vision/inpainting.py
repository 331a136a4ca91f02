"""Context encoder: learn features by inpainting the masked centre of an image (Pathak et al. 2016).

The central square covering a quarter of the image (half its side, Pathak et al.'s central-region
setting) is replaced by the mean pixel value of the context, the encoder reads the rest, and a decoder of transposed
convolutions on the encoder's feature map reconstructs the image; the loss is the squared error on
the masked region only. Left out: the adversarial term (Pathak et al. mix it in with weight 0.001 for
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


class ContextEncoder(nn.Module):
    """Inpainting training module; ``upsamplings`` transposed convolutions (x2 each) take the encoder's
    feature map back to the image size (2 for the default encoder's 4x reduction)."""

    def __init__(self, encoder: nn.Module, hole_fraction: float = 0.5, decoder_width: int = 64,
                 upsamplings: int = 2) -> None:
        super().__init__()
        if not hasattr(encoder, "feature_map"):
            raise ValueError(f"the context encoder needs an encoder with a feature_map, got {type(encoder).__name__}")
        self.encoder = encoder
        self.hole_fraction = hole_fraction
        layers: list[nn.Module] = []
        channels = encoder.feature_dim
        for _ in range(upsamplings):
            layers += [nn.ConvTranspose2d(channels, decoder_width, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(decoder_width), nn.ReLU(inplace=True)]
            channels = decoder_width
        layers.append(nn.Conv2d(channels, encoder.in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*layers)

    def mask_centre(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The images with their centre filled by the mean value of the batch's context pixels (per channel,
        so nothing of the hole leaks into the fill), and the mask."""
        mask = central_mask(images.shape[-2], images.shape[-1], self.hole_fraction, images.device)
        fill = images[:, :, ~mask].mean(dim=(0, 2)).view(1, -1, 1, 1)
        return torch.where(mask, fill, images), mask

    def forward(self, batch: Tensor) -> tuple[Tensor, dict]:
        images = to_unit_float(batch)
        masked, mask = self.mask_centre(images)
        decoded = self.decoder(self.encoder.feature_map(masked))
        if decoded.shape[-2:] != images.shape[-2:]:
            decoded = F.interpolate(decoded, size=images.shape[-2:], mode="bilinear", align_corners=False)
        reconstruction = torch.sigmoid(decoded.float())
        error = (reconstruction - images).pow(2).mean(dim=1)  # (B, H, W)
        loss = error[:, mask].mean()
        return loss, {"context_mse": float(error[:, ~mask].mean().detach())}
