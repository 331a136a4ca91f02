"""Batched, device-agnostic view augmentations built from kornia ops (SimCLR recipe, Chen et al. 2020, App. A).

Inputs are float images in [0, 1], shape (B, C, H, W), on any device; every sample gets its own random
parameters. The same op list also builds the temporally consistent video augmentation (molssl.video).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from molssl.vision.data import to_unit_float


@dataclass
class AugmentConfig:
    """SimCLR defaults: crop, flip, colour jitter (strength s) with p=0.8, grey p=0.2, blur p=0.5.

    ``crop_scale`` defaults to (0.2, 1) rather than ImageNet's (0.08, 1) because the images here are small.
    Hue and saturation jitter and grayscale only apply to RGB images. With ``affine_p`` > 0 a random
    rotation (up to ``rotation_degrees``), translation (up to ``translate`` of the side) and scaling
    (``scale``) follow the crop, the transformations of Exemplar CNN (Dosovitskiy et al. 2014).
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    flip_p: float = 0.5
    jitter_strength: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    affine_p: float = 0.0
    rotation_degrees: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("crop_scale", "blur_sigma", "scale"):
            setattr(self, name, tuple(getattr(self, name)))


def blur_kernel_size(image_size: tuple[int, int]) -> int:
    """An odd kernel about 10% of the shorter side, at least 3 (SimCLR)."""
    k = max(3, int(round(0.1 * min(image_size))))
    return k if k % 2 == 1 else k + 1


def augmentation_ops(image_size: tuple[int, int], channels: int, config: AugmentConfig = AugmentConfig()) -> list[nn.Module]:
    """The kornia ops of one view, in SimCLR order, for ``channels``-channel images of ``image_size`` (H, W)."""
    import kornia.augmentation as K

    if channels not in (1, 3):
        raise ValueError(f"augmentations support 1- or 3-channel images, got {channels} channels")
    h, w = int(image_size[0]), int(image_size[1])
    if h < 2 or w < 2:
        raise ValueError(f"images must be at least 2x2 pixels, got {h}x{w}")
    s = config.jitter_strength
    colour = (0.8 * s, 0.2 * s) if channels == 3 else (0.0, 0.0)  # saturation, hue
    ops: list[nn.Module] = [
        K.RandomResizedCrop((h, w), scale=config.crop_scale),
        K.RandomHorizontalFlip(p=config.flip_p),
    ]
    if config.affine_p > 0:
        ops.append(K.RandomAffine(config.rotation_degrees, (config.translate, config.translate), config.scale,
                                  p=config.affine_p))
    ops += [
        K.ColorJitter(0.8 * s, 0.8 * s, colour[0], colour[1], p=config.jitter_p),
    ]
    if channels == 3:
        ops.append(K.RandomGrayscale(p=config.grayscale_p))
    k = blur_kernel_size((h, w))
    ops.append(K.RandomGaussianBlur((k, k), config.blur_sigma, p=config.blur_p))
    return ops


class ImageAugment(nn.Module):
    """One random view per image of a (B, C, H, W) float batch in [0, 1]."""

    def __init__(self, image_size: tuple[int, int], channels: int, config: AugmentConfig = AugmentConfig()) -> None:
        super().__init__()
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.channels = channels
        self.ops = nn.Sequential(*augmentation_ops(self.image_size, channels, config))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels or not x.dtype.is_floating_point:
            raise ValueError(
                f"expected float images (B, {self.channels}, H, W) in [0, 1], got {x.dtype} {tuple(x.shape)}"
            )
        return self.ops(x).clamp_(0.0, 1.0)


class TwoViews(nn.Module):
    """The view maker of two-view methods: ``(view1, view2)``, two independent augmentations of every image
    of a uint8 or float batch. ("Views" is the project's one word for augmented versions of a sample.)"""

    def __init__(self, augment: nn.Module) -> None:
        super().__init__()
        self.augment = augment

    def forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        x = to_unit_float(batch)
        return self.augment(x), self.augment(x)

