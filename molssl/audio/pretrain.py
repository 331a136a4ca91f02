"""Pre-training a multi-format contrastive model on a folder of WAV files with the core Trainer."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from molssl.audio.batches import ClipBatches
from molssl.audio.model import ModelConfig, MultiFormatContrastive
from molssl.audio.wav import load_wav_folder
from molssl.core.checkpoint import load_checkpoint, load_weights, seed_everything
from molssl.core.device import resolve_device
from molssl.core.schedules import warmup_cosine
from molssl.core.trainer import Trainer, TrainerConfig


@dataclass
class PretrainConfig:
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

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if self.model.crop_samples > self.clip_samples:
            raise ValueError(f"crop of {self.model.crop_samples} samples is longer than the clips "
                             f"({self.clip_samples} samples)")


def pretrain(config: PretrainConfig, resume: bool = False, log: Callable[[str], None] = print) -> Trainer:
    """Train from ``config.data`` (labels ignored) into ``config.out_dir``; returns the finished Trainer."""
    seed_everything(config.seed)
    device = resolve_device(config.device)
    data = load_wav_folder(config.data, config.model.sample_rate, config.clip_samples)
    train = ClipBatches(data.clips, config.batch_size, seed=config.seed)
    if len(train) == 0:
        raise ValueError(f"{len(data)} clips in {config.data} make no batch of {config.batch_size}; "
                         "lower --batch-size")
    module = MultiFormatContrastive(config.model).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * len(train)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    scheduler = warmup_cosine(optimizer, int(config.warmup_fraction * total), total)
    trainer = Trainer(
        module, optimizer, scheduler, out_dir=config.out_dir, device=device,
        config=TrainerConfig(epochs=config.epochs, max_steps=config.max_steps, precision=config.precision,
                             checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                             progress=config.progress, unit="clip"),
        run_config=asdict(config), log=log,
    )
    if resume and trainer.checkpoint_path.is_file():
        saved = load_checkpoint(trainer.checkpoint_path)["config"]["model"]
        if saved != config.model.to_dict():
            raise ValueError(f"{trainer.checkpoint_path} was trained with a different model configuration "
                             f"({saved}); use a new --out directory")
        trainer.resume()
        log(f"resumed from {trainer.checkpoint_path} at step {trainer.state.step}")
    log(f"pre-training {config.model.variant} on {len(data)} clips from {config.data} ({device})")
    trainer.fit(train)
    return trainer


def load_pretrained(
    checkpoint: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[MultiFormatContrastive, PretrainConfig]:
    """Rebuild the model saved in a ``checkpoint.pt`` written by :func:`pretrain`, with its weights, in eval mode."""
    ckpt = load_checkpoint(checkpoint, map_location=map_location)
    try:
        config = PretrainConfig(**ckpt["config"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{checkpoint} is not an audio pre-training checkpoint: {exc}") from exc
    model = MultiFormatContrastive(config.model)
    load_weights(model, ckpt["model"], checkpoint)
    return model.eval(), config
