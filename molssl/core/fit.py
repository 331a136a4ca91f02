"""The one training recipe every modality and fine-tuning use: Adam, warm-up + cosine, Trainer, resume.

:func:`fit` builds the optimizer (parameter groups may carry their own learning rates), the
schedule, and a :class:`~molssl.core.trainer.Trainer`; resumes an interrupted run after checking
that its saved settings are the ones given now; trains; and, with a
:class:`~molssl.core.trainer.Selection`, loads the best epoch's weights back into the module.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import nn

from molssl.core.checkpoint import load_checkpoint
from molssl.core.device import PRECISIONS
from molssl.core.rundir import refuse_changed_resume
from molssl.core.schedules import warmup_cosine
from molssl.core.trainer import BatchSource, Selection, Trainer, TrainerConfig
from molssl.errors import MolsslError

SCHEDULES = ("cosine", "constant")
# Settings that may change between a run and its resumption: they do not change what is computed.
RESUME_MAY_CHANGE = frozenset({"resume", "progress", "device", "workers", "cache_dir", "threads", "log_every",
                               "checkpoint_every", "out", "out_dir", "n_jobs"})


@dataclass
class FitConfig(TrainerConfig):
    """Optimization settings of one run: the :class:`TrainerConfig` plus the optimizer and schedule.
    ``warmup_fraction`` of the steps warm up linearly, then the learning rate follows a cosine to 0
    (``schedule="cosine"``) or stays (``"constant"``). Messages name settings, not command-line flags
    (``core`` serves every modality and the Python API)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    schedule: str = "cosine"
    unit: str = "sample"

    def __post_init__(self) -> None:
        _positive("epochs", self.epochs)
        if self.max_steps is not None:
            _positive("max_steps", self.max_steps)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise MolsslError(f"the learning rate must be a positive number, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise MolsslError(f"the weight decay must be zero or positive, got {self.weight_decay}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise MolsslError(f"the warm-up fraction must lie in [0, 1), got {self.warmup_fraction}")
        if self.schedule not in SCHEDULES:
            raise MolsslError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise MolsslError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.checkpoint_every is not None:
            _positive("checkpoint_every", self.checkpoint_every)
        if self.patience is not None:
            _positive("patience", self.patience)

    def trainer_config(self) -> TrainerConfig:
        return TrainerConfig(**{f.name: getattr(self, f.name) for f in fields(TrainerConfig)})

    def to_dict(self) -> dict:
        return asdict(self)


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise MolsslError(f"{name} must be a positive whole number, got {value}")


def total_steps(source: BatchSource, epochs: int, max_steps: Optional[int]) -> int:
    """Optimizer steps a run takes (what the Trainer does with ``epochs`` and ``max_steps``)."""
    steps = epochs * len(source)
    return min(steps, max_steps) if max_steps is not None else steps


def make_optimizer(params: Iterable[nn.Parameter] | Sequence[dict], config: FitConfig) -> torch.optim.Adam:
    """Adam over trainable parameters or parameter groups (a group's own ``lr`` overrides ``config.lr``)."""
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = [dict(g, params=[p for p in g["params"] if p.requires_grad]) for g in params]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": [p for p in params if p.requires_grad]}]
    for group in groups:
        lr = group.get("lr", config.lr)
        if not (lr > 0 and math.isfinite(lr)):
            raise MolsslError(f"learning rates must be positive numbers, got {lr}")
    # foreach: one fused kernel per parameter list instead of one per tensor (the CPU default too, stated)
    return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, config: FitConfig, steps: int):
    warmup = int(config.warmup_fraction * steps)
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    return warmup_cosine(optimizer, warmup, steps)


def fit(
    module: nn.Module,
    train: BatchSource,
    valid: Optional[BatchSource] = None,
    *,
    out_dir: str | Path,
    device: torch.device,
    config: FitConfig,
    run_config: Optional[dict] = None,
    params: Optional[Iterable[nn.Parameter] | Sequence[dict]] = None,
    resume: bool = False,
    selection: Optional[Selection] = None,
    resume_may_change: Iterable[str] = (),
    samples_per_step: Optional[int] = None,
    check_config: bool = True,
    log: Callable[[str], None] = print,
    notice: Optional[Callable[[str], None]] = None,
) -> Trainer:
    """Train ``module`` on ``train``; returns the finished :class:`Trainer` (``.state``, ``.best_state``).

    ``out_dir`` receives ``checkpoint.pt`` and ``metrics.jsonl``. With ``resume`` the checkpoint there
    is continued, after checking that ``run_config`` equals the saved one (up to
    :data:`RESUME_MAY_CHANGE` and ``resume_may_change``); a different ``--epochs``, corpus or model
    size is refused with the differences named, since it would silently change the schedule or the
    weights' meaning. With a ``selection`` the module ends holding the best epoch's weights.
    ``samples_per_step``: the global batch, when it may differ from the checkpoint's (torchrun with
    another number of processes): the position and ``max_steps`` are converted so that the same
    number of molecules counts as done and as the total. ``log`` gets the per-epoch lines, ``notice``
    (default: ``log``) the lines a user must see even when those are off: resumed, interrupted.
    """
    if len(train) == 0:
        raise MolsslError("the training set yields no batch: use a smaller --batch-size or more data")
    module.to(device)
    run_config = dict(run_config or {})
    saved = None
    if resume:
        saved = load_checkpoint(Path(out_dir) / Trainer.checkpoint_name)
        if not isinstance(saved.get("config"), dict):
            raise MolsslError(f"{Path(out_dir) / Trainer.checkpoint_name} is not a molssl training checkpoint "
                              "(no run config)")
        if check_config:  # callers that compared already (with older versions' defaults filled in) skip this
            refuse_changed_resume(Path(out_dir), saved["config"], run_config,
                                  set(RESUME_MAY_CHANGE) | set(resume_may_change))
        old = int((saved.get("state") or {}).get("samples_per_step") or 0)
        if config.max_steps is not None and samples_per_step and old and old != samples_per_step:
            # --max-steps counts steps of the run's original global batch: the same number of samples
            config = replace(config, max_steps=config.max_steps * old // samples_per_step)
    steps = total_steps(train, config.epochs, config.max_steps)
    optimizer = make_optimizer(module.parameters() if params is None else params, config)
    scheduler = make_scheduler(optimizer, config, steps)
    trainer = Trainer(module, optimizer, scheduler, out_dir=out_dir, device=device,
                      config=config.trainer_config(), run_config=run_config, log=log, selection=selection,
                      notice=notice)
    if resume:
        trainer.resume(samples_per_step=samples_per_step)
        trainer.notice(f"resumed from step {trainer.state.step}")
    trainer.fit(train, valid)
    if selection is not None:
        trainer.restore_best()
    return trainer
