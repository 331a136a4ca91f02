"""Contrastive pre-training of molecular encoders (MolCLR) on a SMILES corpus."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.data.batch import GraphBatch
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.data.sources import StoreBatches, train_valid_indices
from molssl.chem.data.store import open_corpus
from molssl.core import distributed as dist
from molssl.core.checkpoint import atomic_save, seed_everything
from molssl.core.losses import nt_xent
from molssl.core.schedules import warmup_cosine
from molssl.core.trainer import Trainer, TrainerConfig
from molssl.errors import MolsslError

ENCODER_FILE = "encoder.pt"


class MolCLR(nn.Module):
    """MolCLR objective: two independently augmented views of each molecule, NT-Xent between their projections."""

    def __init__(self, encoder: MolecularEncoder, augmentation: MolecularAugmentation, temperature: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.augmentation = augmentation
        self.temperature = temperature

    def views(self, batch: GraphBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(h1, z1, h2, z2) of two augmented views; each view gets its own forward pass (own BatchNorm statistics)."""
        h1, z1 = self.encoder(self.augmentation(batch))
        h2, z2 = self.encoder(self.augmentation(batch))
        return h1, z1, h2, z2

    def forward(self, batch: GraphBatch) -> Tensor:
        _, z1, _, z2 = self.views(batch)
        return nt_xent(dist.gather_with_grad(z1), dist.gather_with_grad(z2), self.temperature)


# Objectives defined in other modules are named "module:attribute" and imported on use (no import cycle).
OBJECTIVES: dict[str, Callable[..., nn.Module] | str] = {"molclr": MolCLR, "imolclr": "molssl.chem.nn.imolclr:IMolCLR"}
STORE_EXTRAS: dict[str, tuple[str, ...]] = {"molclr": (), "imolclr": ("ecfp", "fragments")}


@dataclass
class PretrainConfig:
    """Everything a pre-training run needs; saved as ``config.json`` in the run directory.

    Defaults follow MolCLR's pre-training configuration (batch 512, Adam lr 5e-4, weight decay 1e-5,
    NT-Xent temperature 0.1, 25% masking and deletion) except the epoch count, which a CPU run sets.
    """

    smiles: str
    out: str
    smiles_column: Optional[str] = None
    method: str = "molclr"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    augmentations: Sequence[str] = ("mask", "delete")
    mask_rate: float = 0.25
    delete_rate: float = 0.25
    subgraph_rate: float = 0.25
    temperature: float = 0.1
    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 512
    lr: float = 5e-4
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.05
    valid_fraction: float = 0.05
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    checkpoint_every: int = 200
    log_every: int = 10
    skip_invalid: bool = False
    resume: bool = False
    workers: Optional[int] = None
    cache_dir: Optional[str] = None
    progress: bool = True
    method_options: dict = field(default_factory=dict)
    sync_batchnorm: bool = False  # BatchNorm statistics over all ranks' batches (torchrun on GPUs)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["augmentations"] = list(self.augmentations)
        return out


def build_objective(config: PretrainConfig) -> nn.Module:
    if config.method not in OBJECTIVES:
        raise MolsslError(f"unknown pre-training method {config.method!r}; choose from {sorted(OBJECTIVES)}")
    augmentation = MolecularAugmentation(config.augmentations, config.mask_rate, config.delete_rate, config.subgraph_rate)
    encoder = MolecularEncoder(config.encoder)
    objective = OBJECTIVES[config.method]
    if isinstance(objective, str):
        module, attr = objective.split(":")
        objective = getattr(import_module(module), attr)
    return objective(encoder, augmentation, config.temperature, **config.method_options)


def save_encoder(encoder: MolecularEncoder, path: str | Path, meta: Optional[dict] = None) -> Path:
    """Encoder weights plus the config needed to rebuild it (what fine-tuning and fingerprints load)."""
    return atomic_save({"encoder_config": encoder.config.to_dict(), "state_dict": encoder.state_dict(),
                        "meta": meta or {}}, path)


def pretrain(config: PretrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) a pre-training job; returns a summary dict (also written to ``summary.json``).

    Under ``torchrun`` every process calls this: it joins the process group (NCCL on CUDA, Gloo on
    CPU), trains its shard of each global batch of ``batch_size * world_size`` molecules, and only
    rank 0 logs and writes files.
    """
    with dist.process_group(config.device) as device:
        return _pretrain(config, device, log if dist.is_main_process() else (lambda _msg: None))


def _even_validation(valid_idx: np.ndarray, batch_size: int) -> np.ndarray:
    """Drop the last few validation molecules when fewer than one per rank would remain in the last batch.

    Evaluation runs collectives (gathered negatives), so every rank must take part in every batch.
    """
    remainder = valid_idx.size % (batch_size * dist.world_size())
    return valid_idx[:valid_idx.size - remainder] if 0 < remainder < dist.world_size() else valid_idx


def _pretrain(config: PretrainConfig, device: torch.device, log: Callable[[str], None]) -> dict:
    out = Path(config.out)
    checkpoint = out / Trainer.checkpoint_name
    if checkpoint.exists() and not config.resume:
        raise MolsslError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if config.resume and not checkpoint.exists():
        raise MolsslError(f"nothing to resume: {checkpoint} does not exist")
    seed_everything(config.seed + dist.rank())
    main = dist.is_main_process()
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=1))

    store = dist.main_process_first(lambda: open_corpus(
        config.smiles, smiles_column=config.smiles_column, extras=STORE_EXTRAS.get(config.method, ()),
        skip_invalid=config.skip_invalid, rejected_out=out / "rejected.csv" if main else None, workers=config.workers,
        cache_dir=config.cache_dir, progress=config.progress and main))
    train_idx, valid_idx = train_valid_indices(len(store), config.valid_fraction, config.seed)
    pin = device.type == "cuda"
    batch_size = min(config.batch_size, max(2, train_idx.size // dist.world_size()))
    valid_idx = _even_validation(valid_idx, batch_size)
    train = StoreBatches(store, train_idx, batch_size, seed=config.seed, pin_memory=pin)
    valid = StoreBatches(store, valid_idx, batch_size, shuffle=False, drop_last=False, pin_memory=pin)
    log(f"{len(store):,} molecules ({store.n_invalid:,} invalid rows skipped), {train_idx.size:,} for training, "
        f"{valid_idx.size:,} for validation; {len(train):,} steps/epoch of {train.global_batch_size} on {device}")

    module = build_objective(config)
    if config.sync_batchnorm:
        module = dist.convert_sync_batchnorm(module, device)
    module = module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * len(train) if config.max_steps is None else min(config.max_steps, config.epochs * len(train))
    scheduler = warmup_cosine(optimizer, int(config.warmup_fraction * total), total)
    trainer = Trainer(
        module, optimizer, scheduler, out_dir=out, device=device, log=log,
        config=TrainerConfig(epochs=config.epochs, max_steps=config.max_steps, precision=config.precision,
                             checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                             progress=config.progress, unit="mol"),
        run_config={"pretrain": config.to_dict()},
    )
    if config.resume:
        trainer.resume(samples_per_step=train.global_batch_size)
        log(f"resumed from step {trainer.state.step}")
    started = time.perf_counter()
    steps_before = trainer.state.step
    state = trainer.fit(train, valid)
    elapsed = time.perf_counter() - started
    losses = [r["loss"] for r in state.history if "loss" in r]
    val_losses = [r["val_loss"] for r in state.history if "val_loss" in r]
    summary = {
        "steps": state.step,
        "molecules": len(store),
        "final_loss": losses[-1] if losses else None,
        "final_val_loss": val_losses[-1] if val_losses else None,
        "seconds": elapsed,
        "molecules_per_s": (state.step - steps_before) * train.global_batch_size / elapsed if elapsed > 0 else None,
        "encoder": str(out / ENCODER_FILE),
    }
    if main:
        save_encoder(module.encoder, out / ENCODER_FILE, meta={"pretrain": config.to_dict(), "steps": state.step})
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
