"""Running a training module with the core Trainer (Adam, warm-up + cosine schedule, checkpoints, resume).

Shared by the image and video pipelines; the checkpoint's ``config`` records how to rebuild the module.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from molssl.core.checkpoint import load_checkpoint, load_weights, seed_everything
from molssl.core.schedules import warmup_cosine
from molssl.core.trainer import BatchSource, Trainer, TrainerConfig, TrainState
from molssl.vision.data import TensorBatchSource


def total_steps(source: BatchSource, epochs: int, max_steps: Optional[int]) -> int:
    """Optimizer steps a run will take (what the Trainer does with ``epochs`` and ``max_steps``)."""
    steps = epochs * len(source)
    return min(steps, max_steps) if max_steps is not None else steps


def run_training(
    module: nn.Module,
    source: BatchSource,
    out_dir: str | Path,
    *,
    device: torch.device,
    run_config: dict,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    warmup_fraction: float = 0.05,
    max_steps: Optional[int] = None,
    precision: str = "fp32",
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainState:
    """Train ``module`` on ``source``; writes ``checkpoint.pt`` and ``metrics.jsonl`` in ``out_dir``.

    With ``resume`` an existing checkpoint in ``out_dir`` is continued; without it, an existing one is an
    error rather than being silently overwritten.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    out_dir = Path(out_dir)
    module.to(device)
    steps = total_steps(source, epochs, max_steps)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, int(warmup_fraction * steps), steps)
    config = TrainerConfig(epochs=epochs, max_steps=max_steps, precision=precision, progress=progress,
                           checkpoint_every=max(1, min(500, steps // 4)), unit="sample")
    trainer = Trainer(module, optimizer, scheduler, out_dir=out_dir, device=device, config=config,
                      run_config=run_config, log=log)
    if trainer.checkpoint_path.is_file():
        if not resume:
            raise FileExistsError(f"{trainer.checkpoint_path} exists; pass --resume to continue it or choose another --out")
        trainer.resume()
        log(f"resumed from step {trainer.state.step}")
    return trainer.fit(source)


def load_run(checkpoint: str | Path, build: Callable[[dict], nn.Module], device: torch.device) -> tuple[nn.Module, dict]:
    """Rebuild a training module from a checkpoint's recorded config and load its weights."""
    ckpt = load_checkpoint(checkpoint, map_location=device)
    config = ckpt.get("config") or {}
    module = build(config)
    load_weights(module, ckpt["model"], checkpoint)
    return module.to(device), config


def pretrain_on_tensors(
    data: torch.Tensor,
    config: dict,
    build: Callable[[dict], nn.Module],
    out_dir: str | Path,
    *,
    device: torch.device,
    resume: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, TrainState]:
    """Build the module of ``config`` (seeded) and pre-train it on ``data`` (images or clips, labels unused)."""
    source = TensorBatchSource(data, config["batch_size"], seed=config["seed"])
    config = {**config, "total_steps": total_steps(source, config["epochs"], config["max_steps"])}
    seed_everything(config["seed"])
    module = build(config)
    state = run_training(module, source, out_dir, device=device, run_config=config, epochs=config["epochs"],
                         lr=config["lr"], max_steps=config["max_steps"], precision=config["precision"],
                         resume=resume, progress=progress)
    return module, state


def load_module_of(checkpoint: str | Path, build: Callable[[dict], nn.Module], modality: str,
                   device: torch.device) -> tuple[nn.Module, dict]:
    """The trained module of a ``modality`` checkpoint and the run config stored with it."""
    module, config = load_run(checkpoint, build, device)
    if config.get("modality") != modality:
        raise ValueError(f"{checkpoint} is not a molssl {modality} checkpoint (modality {config.get('modality')!r})")
    return module, config


def load_encoder_of(checkpoint: str | Path, build: Callable[[dict], nn.Module], modality: str,
                    device: torch.device) -> tuple[nn.Module, dict]:
    """The trained encoder of a ``modality`` checkpoint and the run config stored with it."""
    module, config = load_module_of(checkpoint, build, modality, device)
    return module.encoder, config


def training_seconds(metrics: str | Path, batch_size: int) -> float:
    """Time spent in optimizer steps, summed from the throughput the Trainer logs (survives resumed runs)."""
    seconds, previous = 0.0, 0
    for line in Path(metrics).read_text().splitlines():
        record = json.loads(line)
        if "sample_per_s" in record:
            seconds += (record["step"] - previous) * batch_size / record["sample_per_s"]
            previous = record["step"]
    return seconds
