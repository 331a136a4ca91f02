"""The image SSL methods: what each one is built from, and how a run config becomes its training module.

A :class:`MethodSpec` says which class implements a method, what augmentation it receives (a two-view
maker ``views``, one augmented ``augment``, or none), which encoder it trains, the version of its
preprocessing (recorded in every checkpoint; a mismatch is refused on load), method-specific
augmentation defaults, and whether its batches carry the images' indices. Every keyword of the class
(and of a ViT encoder) is an *option*; a run config records all of them (:func:`resolve_options`).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import nn

from molssl.vision.augment import AugmentConfig, ImageAugment, TwoViews
from molssl.vision.colorization import Colorization
from molssl.vision.contrastive import BYOL, MoCo, SimCLR
from molssl.vision.cpc import CPC
from molssl.vision.encoders import ConvEncoder
from molssl.vision.inpainting import ContextEncoder
from molssl.vision.instance import NPID, PIRL, ExemplarCNN
from molssl.vision.mae import MAE, VisionTransformer, vit_options
from molssl.vision.pretext import JigsawPuzzle, RelativePosition, RotationPrediction

ENCODERS = ("conv", "conv-layer-norm", "lightness", "vit")
# Keywords a method's class takes that are not options: built from the config or known only at run time.
NOT_OPTIONS = frozenset({"self", "encoder", "views", "augment", "total_steps"})
# Exemplar CNN's transformations (Dosovitskiy et al. 2014, Sec. 2.1): translation up to 0.2 of the patch
# size, scaling by 0.7-1.4, rotation up to 20 degrees, plus the colour and contrast jitter all views get.
EXEMPLAR_AUGMENT = {"affine_p": 1.0, "rotation_degrees": 20.0, "translate": 0.2, "scale": (0.7, 1.4),
                    "crop_scale": (0.5, 1.0)}


@dataclass(frozen=True)
class MethodSpec:
    cls: type
    inputs: str = "none"  # "two-views" | "one-view" | "none"
    encoder: str = "conv"
    preprocessing: int = 1
    augment: Mapping[str, Any] = field(default_factory=dict)
    indexed: bool = False  # batches are (images, indices)
    sized_by_data: tuple[str, ...] = ()  # options that default to the number of training images
    subset_by: str = ""  # an option that, set below the number of training images, trains on a random subset
    colour: bool = False  # needs 3-channel images


METHODS: dict[str, MethodSpec] = {
    "simclr": MethodSpec(SimCLR, "two-views"),
    "moco": MethodSpec(MoCo, "two-views"),
    "byol": MethodSpec(BYOL, "two-views"),
    "rotation": MethodSpec(RotationPrediction),
    # preprocessing 2: every tile standardized on its own (before: raw tiles)
    "jigsaw": MethodSpec(JigsawPuzzle, preprocessing=2),
    "context": MethodSpec(RelativePosition),
    "npid": MethodSpec(NPID, "one-view", indexed=True, sized_by_data=("bank_size",)),
    "pirl": MethodSpec(PIRL, "two-views", indexed=True, sized_by_data=("bank_size",)),
    # Dosovitskiy et al. draw N training patches as the surrogate classes: --num-exemplars below the number of
    # training images trains on a seeded random subset of that size
    "exemplar": MethodSpec(ExemplarCNN, "one-view", augment=EXEMPLAR_AUGMENT, indexed=True,
                           sized_by_data=("num_exemplars",), subset_by="num_exemplars"),
    "cpc": MethodSpec(CPC, "one-view", encoder="conv-layer-norm"),
    "mae": MethodSpec(MAE, encoder="vit"),
    "context-encoder": MethodSpec(ContextEncoder),
    "colorization": MethodSpec(Colorization, encoder="lightness", colour=True),
}
PRETEXT = ("rotation", "jigsaw", "context")  # the classifiers with an optional conv stage (conv_head)


def spec(method: str) -> MethodSpec:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[method]


def keyword_defaults(function) -> dict[str, Any]:
    """The keyword options of a constructor with their defaults (leaving out :data:`NOT_OPTIONS`)."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if name not in NOT_OPTIONS and p.kind is p.POSITIONAL_OR_KEYWORD}


def option_defaults(method: str) -> dict[str, Any]:
    """Every option of ``method`` with its default (class keywords, and the ViT's for a ViT encoder)."""
    method_spec = spec(method)
    defaults = keyword_defaults(method_spec.cls.__init__)
    if method_spec.encoder == "vit":
        vit = keyword_defaults(VisionTransformer.__init__)
        defaults.update({name: vit[name] for name in vit_options()})
    return defaults


def resolve_options(method: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The full effective options of an image method: ``given`` over its defaults."""
    return complete_options(method, option_defaults(method), given)


def complete_options(method: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``; an option that is not among the defaults is an error naming the method's options."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{', '.join(unknown)} {'is not an option' if len(unknown) == 1 else 'are not options'} "
                         f"of {method}; its options are {', '.join(defaults) or 'none'}")
    return {**defaults, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in given.items()}}


def resolve_augment(method: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every augmentation setting: ``given`` over the method's own defaults over :class:`AugmentConfig`'s."""
    merged = AugmentConfig(**{**spec(method).augment, **given})
    return {name: (list(v) if isinstance(v, tuple) else v) for name, v in vars(merged).items()}


def build_encoder(method: str, image_size: tuple[int, int], channels: int, widths, options: Mapping) -> nn.Module:
    kind = spec(method).encoder
    if kind == "vit":
        return VisionTransformer(image_size, channels, **{k: options[k] for k in vit_options()})
    if kind == "lightness":
        return ConvEncoder(1, widths)
    return ConvEncoder(channels, widths, norm="layer" if kind == "conv-layer-norm" else "batch")


def build_method(method: str, image_size: tuple[int, int], channels: int, widths, options: Mapping,
                 augment: Mapping, total_steps: int = 0) -> nn.Module:
    """The training module of ``method`` with resolved ``options`` and ``augment`` settings."""
    method_spec = spec(method)
    if method_spec.colour and channels != 3:
        raise ValueError(f"{method} needs colour images (3 channels), got {channels}; render molecules as RDKit "
                         "depictions with --data <SMILES file>")
    kwargs = {k: v for k, v in options.items() if k not in vit_options() or method_spec.encoder != "vit"}
    encoder = build_encoder(method, image_size, channels, widths, options)
    if method_spec.inputs != "none":
        one_view = ImageAugment(image_size, channels, AugmentConfig(**augment))
        kwargs["views" if method_spec.inputs == "two-views" else "augment"] = (
            TwoViews(one_view) if method_spec.inputs == "two-views" else one_view)
    if "total_steps" in inspect.signature(method_spec.cls.__init__).parameters:
        kwargs["total_steps"] = total_steps
    return method_spec.cls(encoder, **kwargs)
