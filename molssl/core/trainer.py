"""A small, modality-agnostic training loop: AMP, atomic checkpoints, exact resume, JSON-lines metrics.

A *training module* is an ``nn.Module`` whose ``forward(batch)`` returns the loss (or a
``(loss, metrics)`` pair) and which may define ``after_optimizer_step()`` (momentum updates).
A *batch source* yields the batches of an epoch, deterministically, from any position:
``len(source)`` batches per epoch and ``source.batches(epoch, start)``.

A :class:`Selection` scores the module at the end of every epoch (a validation metric); the
trainer keeps the best-scoring state (also in the checkpoint, so resume keeps it) and stops after
``patience`` epochs without improvement. Most runs are set up through :func:`molssl.core.fit.fit`.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

import torch
from torch import Tensor, nn

from molssl.core import distributed as dist
from molssl.core.checkpoint import (CorruptFileError, atomic_save, load_checkpoint, load_weights, require_keys,
                                    rng_state, seed_everything, set_rng_state, state_digest, verify_digest)
from molssl.core.cputime import cpu_seconds
from molssl.core.device import autocast, move_to
from molssl.core.memory import MemoryGuard, keep_freed_memory
from molssl.core.metrics_file import append_record, drop_records_after
from molssl.core.progress import Progress
from molssl.core.stopping import Terminated, stop_on_sigterm

PROGRESS_EVERY = 60.0  # seconds between progress lines when stderr is not a terminal (a batch job's log)


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batches(self, epoch: int, start: int = 0) -> Iterator[Any]: ...


def batch_size_of(batch: Any) -> int:
    """Number of samples in a batch: ``num_graphs``, a tensor's first dimension, or that of the first element."""
    if hasattr(batch, "num_graphs"):
        return int(batch.num_graphs)
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return batch_size_of(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return batch_size_of(batch[0])
    return len(batch)


def _digested(checkpoint: dict) -> dict:
    """The parts of a training checkpoint its digest covers: weights, optimizer state, best-epoch weights."""
    return {key: checkpoint.get(key) for key in ("model", "optimizer", "best_state")}


def load_training_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """A ``checkpoint.pt`` written by :class:`Trainer`, refused (naming the file) when it is another kind of file
    or its weights changed after writing. Call it before a resumed run writes anything."""
    ckpt = load_checkpoint(path, map_location=map_location)
    require_keys(ckpt, ("model", "optimizer", "state", "rng"), path, "a molssl training checkpoint "
                 "(an encoder.pt or model.pt cannot be resumed)")
    verify_digest(_digested(ckpt), ckpt.get("digest"), path)
    return ckpt


@dataclass
class TrainerConfig:
    """``checkpoint_every``: steps between checkpoints; ``None`` checkpoints at every epoch end instead.
    ``patience``: with a :class:`Selection`, stop after this many epochs without a better score."""

    epochs: int = 1
    max_steps: Optional[int] = None
    precision: str = "fp32"
    grad_clip: Optional[float] = None
    checkpoint_every: Optional[int] = 500
    log_every: int = 10
    progress: bool = True
    unit: str = "sample"
    patience: Optional[int] = None


@dataclass
class Selection:
    """Epoch-end evaluation: ``score()`` of the module in its current state, and which way is better."""

    name: str
    score: Callable[[], float]
    higher_is_better: bool

    def better(self, value: float, best: Optional[float]) -> bool:
        if best is None or math.isnan(best):
            return not math.isnan(value)
        return value > best if self.higher_is_better else value < best


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    samples_per_step: int = 0  # global batch (all ranks) of the last step
    history: list = field(default_factory=list)
    best_score: Optional[float] = None
    best_epoch: int = -1
    epochs_since_best: int = 0
    stopped_early: bool = False
    # the run's cost over all its sessions (an interrupted run resumes its count), up to its last checkpoint
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0  # the operating system's CPU count (molssl.core.cputime)


class Trainer:
    """Runs a training module over a batch source; writes ``checkpoint.pt`` and ``metrics.jsonl`` in ``out_dir``."""

    checkpoint_name = "checkpoint.pt"
    metrics_name = "metrics.jsonl"

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
        *,
        out_dir: str | Path,
        device: torch.device,
        config: TrainerConfig = TrainerConfig(),
        run_config: Optional[dict] = None,
        log: Callable[[str], None] = print,
        selection: Optional[Selection] = None,
        notice: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.module = module
        self.model = dist.wrap_ddp(module, device)  # DDP when running under torchrun, else the module itself
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device
        self.config = config
        self.run_config = run_config or {}
        self.out_dir = Path(out_dir)
        self.log = log if dist.is_main_process() else (lambda _msg: None)
        # what the user must see even when per-epoch lines are off (interruptions, changed checkpoints)
        self.notice = (notice or log) if dist.is_main_process() else (lambda _msg: None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
        self.state = TrainState()
        self.earlier = (0.0, 0.0)  # wall and CPU seconds of the sessions before this one (set by resume)
        self._clock = (time.perf_counter(), cpu_seconds())
        self.selection = selection
        self.best_state: Optional[dict] = None  # CPU copy of the module's state at the best-scoring epoch
        keep_freed_memory()  # each step reuses the last one's memory instead of page-faulting it in again
        self.memory = MemoryGuard()  # ... and gives it back when the process has grown (molssl.core.memory)

    # ----------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / self.checkpoint_name

    def save_checkpoint(self, all_ranks: bool = True) -> None:
        """Rank 0 writes; with ``all_ranks`` (every rank calling) the RNG state of each rank is kept too.

        The file records a digest of its weights and optimizer state, checked on resume.
        """
        rngs = dist.all_gather_object(rng_state()) if all_ranks else None
        if not dist.is_main_process():
            return
        self.state.seconds, self.state.cpu_seconds = self.elapsed()
        payload = {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(),
            "state": vars(self.state),
            "rng": rng_state(),
            "rng_per_rank": rngs,
            "config": self.run_config,
            "world_size": dist.world_size(),
            "best_state": self.best_state,
        }
        payload["digest"] = state_digest(_digested(payload))
        atomic_save(payload, self.checkpoint_path)

    def resume(self, samples_per_step: Optional[int] = None) -> bool:
        """Restore model, optimizer, scheduler, RNG and position from ``checkpoint.pt``; False if none exists.

        ``samples_per_step``: the global batch of the continued run. When it differs from the
        checkpoint's (another number of ranks or batch size), the position is converted so that the
        same number of samples counts as done (see :meth:`_rescale_position`). A file that is not a
        training checkpoint, or whose contents were changed after writing, is refused naming the file.
        """
        if not self.checkpoint_path.is_file():
            return False
        path = self.checkpoint_path
        ckpt = load_training_checkpoint(path)  # on the CPU: load_state_dict moves weights and optimizer state
        load_weights(self.module, ckpt["model"], path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.scheduler and ckpt.get("scheduler"):
                self.scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler") is not None:
                self.scaler.load_state_dict(ckpt["scaler"])
            self.state = TrainState(**ckpt["state"])
            self.earlier = (float(self.state.seconds), float(self.state.cpu_seconds))
            self.best_state = ckpt.get("best_state")
            self._restore_rng(ckpt)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            raise CorruptFileError(f"{path} cannot be resumed: its optimizer, schedule, position or random "
                                   f"state is malformed ({type(exc).__name__}: {exc})") from None
        self._truncate_metrics(self.state.step, self.state.epoch)
        old = self.state.samples_per_step
        if samples_per_step is not None and old and samples_per_step != old:
            self._rescale_position(old, samples_per_step)
            self.notice(f"checkpoint steps were of {old} samples, now {samples_per_step}: "
                     f"continuing at step {self.state.step}, batch {self.state.batch_in_epoch} of epoch {self.state.epoch + 1}")
        return True

    def elapsed(self) -> tuple[float, float]:
        """Wall and CPU seconds of the whole run: the sessions before a resume and this one so far."""
        wall, cpu = self._clock
        return self.earlier[0] + time.perf_counter() - wall, self.earlier[1] + cpu_seconds() - cpu

    def _restore_rng(self, ckpt: dict) -> None:
        """Each rank gets its own saved stream back; with another world size, rank 0's stream, decorrelated per rank."""
        per_rank = ckpt.get("rng_per_rank")
        if per_rank and len(per_rank) == dist.world_size():
            set_rng_state(per_rank[dist.rank()])
            return
        set_rng_state(ckpt["rng"])
        if dist.rank() > 0:
            seed_everything(int(torch.randint(2**62, ())) + dist.rank())

    def _rescale_position(self, old: int, new: int) -> None:
        """Convert step and batch-in-epoch from steps of ``old`` samples to steps of ``new`` samples.

        Rounded down, so no sample of the epoch is skipped (up to one step's worth is seen again);
        the scheduler moves to the converted step.
        """
        st = self.state
        st.batch_in_epoch = st.batch_in_epoch * old // new
        st.step = st.step * old // new
        st.samples_per_step = new
        if self.scheduler is not None:
            self.scheduler.last_epoch = st.step - 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
                self.scheduler.step()

    # ----------------------------------------------------------------- metrics
    def _truncate_metrics(self, step: int, epoch: int) -> None:
        if dist.is_main_process():
            drop_records_after(self.out_dir / self.metrics_name, step, epoch)

    def _write_metrics(self, record: dict) -> None:
        self.state.history.append(record)
        if dist.is_main_process():
            append_record(self.out_dir / self.metrics_name, record)

    # ----------------------------------------------------------------- steps
    def _loss(self, batch: Any) -> tuple[Tensor, dict]:
        with autocast(self.device, self.config.precision):
            out = self.model(batch)
        loss, extra = out if isinstance(out, tuple) else (out, {})
        return loss.float(), extra

    def train_step(self, batch: Any) -> tuple[float, dict]:
        self.model.train()
        batch = move_to(batch, self.device)
        loss, extra = self._loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.state.step}; lower --lr or use fp32")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.module.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        hook = getattr(self.module, "after_optimizer_step", None)
        if hook is not None:
            hook()
        self.memory.after_step()
        return loss.item(), {k: float(v) for k, v in extra.items()}

    @torch.no_grad()
    def evaluate(self, source: BatchSource, seed: int = 12345) -> float:
        """Mean loss over ``source`` in eval mode, with a fixed RNG so epochs are comparable."""
        self.model.eval()
        total, count = 0.0, 0
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for batch in source.batches(0):
                n = batch_size_of(batch)
                loss, _ = self._loss(move_to(batch, self.device))
                total += loss.item() * n
                count += n
        total_t = torch.tensor([total, count], dtype=torch.float64, device=self.device)
        dist.all_reduce_sum(total_t)
        return float(total_t[0] / max(total_t[1], 1))

    def _end_epoch(self, valid: Optional[BatchSource]) -> None:
        """Validation loss and/or the selection score of the finished epoch; best state, patience, checkpoint."""
        st, cfg = self.state, self.config
        record: dict = {"step": st.step, "epoch": st.epoch}
        text = []
        if valid is not None and len(valid) > 0:
            record["val_loss"] = self.evaluate(valid)
            text.append(f"validation loss {record['val_loss']:.4f}")
        if self.selection is not None:
            value = float(self.selection.score())
            record[f"valid_{self.selection.name}"] = value
            if self.selection.better(value, st.best_score):
                st.best_score, st.best_epoch, st.epochs_since_best = value, st.epoch, 0
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}
            else:
                st.epochs_since_best += 1
            text.append(f"valid {self.selection.name} {value:.4f} (best {st.best_score:.4f} at epoch "
                        f"{st.best_epoch + 1})")
            if cfg.patience is not None and st.epochs_since_best >= cfg.patience:
                st.stopped_early = True
                text.append(f"no improvement for {cfg.patience} epochs: stopping")
        if len(record) > 2:
            self._write_metrics(record)
            self.log(f"epoch {st.epoch + 1}/{cfg.epochs}: " + "; ".join(text))
        st.epoch += 1
        st.batch_in_epoch = 0
        if cfg.checkpoint_every is None:
            self.save_checkpoint()

    def restore_best(self) -> None:
        """Load the best-scoring epoch's state into the module (no-op without a selection)."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)

    def fit(self, train: BatchSource, valid: Optional[BatchSource] = None) -> TrainState:
        cfg = self.config
        steps_per_epoch = len(train)
        if steps_per_epoch == 0:
            raise ValueError("the training set yields no batch: use a smaller --batch-size or more data")
        total = cfg.epochs * steps_per_epoch
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        st = self.state
        self._truncate_metrics(st.step, st.epoch)  # a fresh run: drop what a killed attempt logged before its first checkpoint
        bar = Progress("training", total=total, unit="steps", initial=min(st.step, total), every=PROGRESS_EVERY,
                       enabled=cfg.progress and dist.is_main_process())
        with stop_on_sigterm():  # a stopped job keeps its progress: SIGTERM checkpoints like Ctrl-C
            try:
                self._train_until(total, train, valid, bar)
            except (KeyboardInterrupt, Terminated):  # Ctrl-C, or SIGTERM from a scheduler, timeout or kill
                self.save_checkpoint(all_ranks=False)  # ranks may be interrupted at different points: no collective
                self.notice(f"interrupted at step {st.step}; checkpoint saved, continue with --resume")
                raise
            finally:
                bar.close()
        self.save_checkpoint()
        return st

    def _train_until(self, total: int, train: BatchSource, valid: Optional[BatchSource], bar: Progress) -> None:
        """Steps, epoch ends and metrics records until ``total`` steps, the last epoch, or early stopping."""
        st, cfg, steps_per_epoch = self.state, self.config, len(train)
        window_samples, window_start, window_loss, window_steps = 0, time.perf_counter(), 0.0, 0
        while st.step < total and st.epoch < cfg.epochs and not st.stopped_early:
            for batch in train.batches(st.epoch, st.batch_in_epoch):
                n = batch_size_of(batch) * dist.world_size()
                loss, extra = self.train_step(batch)
                st.step += 1
                st.batch_in_epoch += 1
                st.samples_per_step = n
                window_samples += n
                window_loss += loss
                window_steps += 1
                if st.step % cfg.log_every == 0 or st.step == total or st.batch_in_epoch == steps_per_epoch:
                    elapsed = time.perf_counter() - window_start
                    rate = window_samples / elapsed if elapsed > 0 else math.nan
                    lr = self.optimizer.param_groups[0]["lr"]
                    mean_loss = window_loss / window_steps  # mean over the steps since the last record
                    self._write_metrics({"step": st.step, "epoch": st.epoch, "loss": mean_loss, "lr": lr,
                                         f"{cfg.unit}_per_s": rate, **extra})
                    bar.note(f"loss {mean_loss:.4f}, {rate:.0f} {cfg.unit}/s")
                    window_samples, window_start, window_loss, window_steps = 0, time.perf_counter(), 0.0, 0
                bar.update(1)
                if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if st.step >= total:
                    break
            if st.batch_in_epoch >= steps_per_epoch:
                self._end_epoch(valid)
                if st.stopped_early:
                    break
