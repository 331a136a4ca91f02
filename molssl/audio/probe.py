"""Linear-probe evaluation of audio encoders: frozen encoder outputs of centre crops, scored by
:mod:`molssl.core.probe` (logistic regression, few-shot probes).

Besides the probe trained on every labelled clip, a *few-shot* probe trained on ``shots`` clips
per class (mean and standard deviation over ``repeats`` seeded draws) separates representations
that a full probe ranks equally.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from molssl.audio.model import MultiFormatContrastive
from molssl.audio.wav import AudioFolder
from molssl.core.probe import few_shot_accuracy, fit_linear_probe


@dataclass
class ProbeResult:
    format: str
    train_accuracy: float
    test_accuracy: float
    num_train: int
    num_test: int
    few_shot: dict = field(default_factory=dict)  # shots -> (mean, std) test accuracy


@torch.no_grad()
def embed_clips(
    model: MultiFormatContrastive, clips: Tensor, fmt: str, batch_size: int = 256, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Encoder outputs (N, embed_dim) of the centre ``crop_samples`` of each clip, in eval mode."""
    crop = model.config.crop_samples
    if clips.shape[1] < crop:
        raise ValueError(f"clips of {clips.shape[1]} samples are shorter than the model's crop ({crop})")
    start = (clips.shape[1] - crop) // 2
    model = model.to(device).eval()
    chunks = [model.represent(clips[i:i + batch_size, start:start + crop].to(device), fmt).float().cpu()
              for i in range(0, clips.shape[0], batch_size)]
    return torch.cat(chunks).numpy()


def linear_probe(
    model: MultiFormatContrastive,
    train: AudioFolder,
    test: AudioFolder,
    fmt: str,
    device: str | torch.device = "cpu",
    shots: tuple[int, ...] = (),
    repeats: int = 10,
    seed: int = 0,
) -> ProbeResult:
    """Probe accuracies of the ``fmt`` encoder: trained on all of ``train`` and on ``shots`` per class."""
    if train.classes != test.classes:
        raise ValueError(f"train and test folders have different classes: {train.classes} vs {test.classes}")
    x_train, x_test = (embed_clips(model, d.clips, fmt, device=device) for d in (train, test))
    y_train, y_test = train.labels.numpy(), test.labels.numpy()
    predict = fit_linear_probe(x_train, y_train)
    return ProbeResult(
        format=fmt,
        train_accuracy=float((predict(x_train) == y_train).mean()),
        test_accuracy=float((predict(x_test) == y_test).mean()),
        num_train=len(train),
        num_test=len(test),
        few_shot={k: few_shot_accuracy(x_train, y_train, x_test, y_test, k, repeats, seed) for k in shots},
    )
