"""Pre-training a multi-format contrastive model on a folder of WAV files with core.fit."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from molssl.audio.batches import ClipBatches
from molssl.audio.model import ModelConfig, MultiFormatContrastive
from molssl.audio.wav import load_wav_folder
from molssl.core.checkpoint import load_weights
from molssl.core.device import resolve_device
from molssl.core.fit import FitConfig
from molssl.core.runs import config_from_record, read_run, run_record, train_run
from molssl.core.trainer import Trainer
from molssl.errors import MolsslError

MODALITY = "audio"
PREPROCESSING = 1  # version of the front end (resampling, centre crop/pad, log-mel on the device)


@dataclass
class PretrainConfig:
    """Everything a run needs, recorded in full in its checkpoint and ``config.json``."""

    data: str
    out_dir: str
    model: ModelConfig = field(default_factory=ModelConfig)
    clip_samples: int = 16000
    epochs: int = 50
    max_steps: Optional[int] = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_fraction: float = 0.05
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    checkpoint_every: int = 100
    log_every: int = 10
    progress: bool = True
    preprocessing: int = PREPROCESSING

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if self.model.crop_samples > self.clip_samples:
            raise ValueError(f"crop of {self.model.crop_samples} samples is longer than the clips "
                             f"({self.clip_samples} samples)")

    def fit_config(self) -> FitConfig:
        return FitConfig(epochs=self.epochs, max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
                         warmup_fraction=self.warmup_fraction, precision=self.precision,
                         checkpoint_every=self.checkpoint_every, log_every=self.log_every, progress=self.progress,
                         unit="clip")


def pretrain(config: PretrainConfig, resume: bool = False, log: Callable[[str], None] = print) -> Trainer:
    """Train from ``config.data`` (labels ignored) into ``config.out_dir``; returns the finished Trainer.

    ``resume`` continues the run in ``out_dir`` and is refused when a setting differs (``--epochs`` included).
    """
    device = resolve_device(config.device)
    data = load_wav_folder(config.data, config.model.sample_rate, config.clip_samples)
    train = ClipBatches(data.clips, config.batch_size, seed=config.seed)
    if len(train) == 0:
        raise ValueError(f"{len(data)} clips in {config.data} make no batch of {config.batch_size}; "
                         "lower --batch-size")
    log(f"pre-training {config.model.variant} on {len(data)} clips from {config.data} ({device})")
    _, trainer = train_run(lambda _total: MultiFormatContrastive(config.model), train, config.out_dir,
                           record=run_record(MODALITY, config), fit_config=config.fit_config(), seed=config.seed,
                           device=device, resume=resume, log=log)
    return trainer


def load_pretrained(checkpoint: str | Path, map_location: str | torch.device = "cpu",
                    log: Callable[[str], None] = print) -> tuple[MultiFormatContrastive, PretrainConfig]:
    """Rebuild the model saved in a ``checkpoint.pt`` written by :func:`pretrain`, with its weights, in eval mode."""
    weights, record = read_run(checkpoint, MODALITY, map_location, log)
    try:
        config = config_from_record(PretrainConfig, record)
    except (KeyError, TypeError) as exc:
        raise MolsslError(f"{checkpoint} is not an audio pre-training checkpoint: {exc}") from None
    if config.preprocessing != PREPROCESSING:
        raise MolsslError(f"{checkpoint} was trained with audio preprocessing version {config.preprocessing}, but this "
                          f"molssl uses version {PREPROCESSING}; re-train it")
    model = MultiFormatContrastive(config.model)
    load_weights(model, weights, checkpoint)
    return model.eval(), config
