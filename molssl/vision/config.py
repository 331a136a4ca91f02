"""The configuration of an image pre-training run, recorded in full in its checkpoint and ``config.json``.

:class:`VisionConfig` resolves every method option and augmentation setting to its effective value
when it is made, so a run's record never depends on defaults that may change later; older records are
completed by :mod:`molssl.core.config_compat` with the table registered here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from molssl.core.config_compat import DefaultChange, register_changes
from molssl.vision.data import is_smiles_file
from molssl.vision.methods import METHODS, PRETEXT, resolve_augment, resolve_options, spec

DEFAULT_WIDTHS = (32, 64, 128)
BUILTIN_SHAPES = {"mnist": ((28, 28), 1), "digits": ((8, 8), 1)}  # (H, W), channels of the bundled data sets
DEPICTION_SIZE = 64
UNRECORDED = "unrecorded"  # the preprocessing of a file from before preprocessing versions were recorded


def _conv_head_from_weights(_saved: dict, context: dict) -> bool:
    """Files from before ``conv_head`` was recorded: the head had a conv stage iff its weights hold one."""
    return any(str(k).startswith("head_stage.") for k in context.get("weights", {}))


def _unversioned_preprocessing(saved: dict) -> Union[int, str]:
    """Every method's preprocessing is still version 1, except jigsaw's: tiles became standardized before
    versions were recorded, so an unversioned jigsaw file may expect either."""
    return UNRECORDED if spec(saved.get("method", "")).preprocessing != 1 else 1


# Changed defaults of vision run records (molssl.core.config_compat). "0.1.0" is the first version that
# records its version; files without one are older.
register_changes("vision", [
    DefaultChange("options.conv_head", "0.1.0", _conv_head_from_weights,
                  applies=lambda saved: saved.get("method") in PRETEXT),
    DefaultChange("preprocessing", "0.1.0", lambda saved, _context: _unversioned_preprocessing(saved),
                  applies=lambda saved: saved.get("method") in METHODS),
])


@dataclass
class VisionConfig:
    """One image pre-training run. ``options``/``augment`` hold only what differs from the defaults when
    given and every setting after construction. ``max_images``: how many molecules a SMILES file yields
    (depictions; train and test together). ``preprocessing``: the method's preprocessing version (the
    current one unless read from an older file)."""

    method: str
    data: str = "mnist"
    image_size: tuple[int, int] = (32, 32)
    channels: int = 3
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    options: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_fraction: float = 0.05
    seed: int = 0
    max_steps: Optional[int] = None
    precision: str = "fp32"
    test_fraction: float = 0.2
    split_seed: int = 0
    max_images: Optional[int] = None
    preprocessing: Optional[Union[int, str]] = None

    def __post_init__(self) -> None:
        method = spec(self.method)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or min(self.widths) <= 0:
            raise ValueError(f"widths must be positive integers, got {list(self.widths)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2, got {self.batch_size}")
        self.options = resolve_options(self.method, self.options)
        self.augment = resolve_augment(self.method, self.augment)
        if self.preprocessing is None:
            self.preprocessing = method.preprocessing


def make_config(method: str, data: str = "mnist", *, image_size: Optional[Sequence[int]] = None,
                channels: Optional[int] = None, **settings: Any) -> VisionConfig:
    """A complete run config; image size and channels default to the data's own (depictions: 64 px RGB)."""
    if data in BUILTIN_SHAPES:
        image_size, channels = BUILTIN_SHAPES[data]
    elif is_smiles_file(data):
        size = int(image_size[0]) if image_size else DEPICTION_SIZE
        image_size, channels = (size, size), 3
    settings = {k: v for k, v in settings.items() if v is not None or k == "max_steps"}
    return VisionConfig(method=method, data=data, image_size=tuple(image_size or (32, 32)), channels=channels or 3,
                        **settings)
