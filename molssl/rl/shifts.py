"""Visual distribution shifts for classic-control frames: the test environments of the generalization benchmark.

Classic-control tasks render coloured shapes on a plain white background. A *shift* changes how a
frame looks without touching the dynamics or the reward, drawn afresh at every episode from the
wrapper's seeded generator (in the spirit of DMControl-GB's ``color_hard`` and ``video`` settings,
Hansen & Wang 2021):

* ``none``: the training environment.
* ``colour``: a random background colour, and the foreground blended half-way towards a random colour.
* ``background``: the white background replaced by a smooth random texture that drifts one pixel per step.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SHIFTS = ("none", "colour", "background")
_WHITE = 250  # a pixel whose channels are all at least this bright belongs to the background


def smooth_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random (height, width, 3) float texture in [0, 255]: coarse colour blobs plus finer detail."""
    layers = []
    for cells, weight in ((4, 0.7), (12, 0.3)):
        coarse = torch.from_numpy(rng.uniform(0.0, 255.0, size=(1, 3, cells, cells)).astype(np.float32))
        layers.append(weight * F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False))
    return sum(layers)[0].permute(1, 2, 0).clamp(0, 255).numpy()


class FrameShift:
    """One episode's shift, applied to (H, W, 3) uint8 frames; call :meth:`__call__` once per rendered frame."""

    def __init__(self, kind: str, rng: np.random.Generator, height: int, width: int) -> None:
        if kind not in SHIFTS:
            raise ValueError(f"unknown shift {kind!r}; choose one of {SHIFTS}")
        self.kind = kind
        self.t = 0
        if kind == "colour":
            self.background = rng.uniform(0.0, 255.0, size=3)
            self.tint = rng.uniform(0.0, 255.0, size=3)
        elif kind == "background":
            self.texture = smooth_texture(rng, height, width)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return frame
        background = frame.min(axis=2) >= _WHITE
        out = frame.astype(np.float32)
        if self.kind == "colour":
            out[~background] = 0.5 * out[~background] + 0.5 * self.tint
            out[background] = self.background
        else:
            out[background] = np.roll(self.texture, self.t, axis=1)[background]
        self.t += 1
        return np.rint(out).clip(0, 255).astype(np.uint8)
