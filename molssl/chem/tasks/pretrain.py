"""Pre-training of molecular encoders on a SMILES corpus: contrastive (MolCLR, iMolCLR), descriptor prediction
(physchem), masked-atom reconstruction (attrmask, graphmae), descriptors and attributes together
(physchem-attrmask) or context prediction (contextpred)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from molssl import __version__
from molssl.chem.data.featurizers import get_featurizer
from molssl.chem.data.sources import StoreBatches, train_valid_indices
from molssl.chem.data.store import open_corpus
from molssl.chem.nn.augment import MolecularAugmentation
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.objectives import BATCH_FEATURES, MASKING_METHODS, OBJECTIVES, STORE_EXTRAS
from molssl.chem.nn.physchem import DESCRIPTOR_EXTRA, STATISTICS_SAMPLE, PhysChem
from molssl.chem.serve.loading import ENCODER_FILE, resolve_encoder_state, save_encoder
from molssl.core import distributed as dist
from molssl.core.checkpoint import seed_everything, state_digest
from molssl.core.config_compat import VERSION_KEY, DefaultChange, fill_defaults, register_changes
from molssl.core.fit import FitConfig, fit
from molssl.core.precision import resolve_precision
from molssl.core.rundir import check_output_dir, locked_run_dir, refuse_changed_resume
from molssl.core.trainer import load_training_checkpoint
from molssl.errors import MolsslError


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
    precision: str = "auto"
    checkpoint_every: int = 200
    log_every: int = 10
    skip_invalid: bool = False
    resume: bool = False
    workers: Optional[int] = None
    cache_dir: Optional[str] = None
    progress: bool = True
    method_options: dict = field(default_factory=dict)
    sync_batchnorm: bool = False  # BatchNorm statistics over all ranks' batches (torchrun on GPUs)

    max_atoms: int = 1000
    input_sha256: Optional[str] = None  # filled in by pretrain(): a resumed run must read the same corpus
    init_encoder: Optional[str] = None  # continued pre-training: start from this encoder's weights (shipped name, run dir, encoder.pt)
    init_encoder_digest: Optional[str] = None  # filled in by pretrain(): the digest of the weights it started from

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        if self.method not in OBJECTIVES:
            raise MolsslError(f"unknown pre-training method {self.method!r}; choose from {', '.join(OBJECTIVES)}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise MolsslError(f"--batch-size must be at least 2 (contrastive learning needs negatives), got {self.batch_size}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise MolsslError(f"--temperature must be a positive number, got {self.temperature} (0 divides by zero; "
                              "MolCLR uses 0.1)")
        if self.method in MASKING_METHODS and not 0 < self.mask_rate <= 1:
            raise MolsslError(f"--mask-rate must lie in (0, 1] for --method {self.method} (the fraction of atoms whose "
                              f"attributes are predicted), got {self.mask_rate}")
        self.augmentations = tuple(self.augmentations)
        self.fit_config()  # validates epochs, steps, lr, checkpoint interval, precision

    def fit_config(self, precision: Optional[str] = None) -> FitConfig:
        return FitConfig(epochs=self.epochs, max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
                         warmup_fraction=self.warmup_fraction,
                         precision=precision or ("fp32" if self.precision == "auto" else self.precision),
                         checkpoint_every=self.checkpoint_every, log_every=self.log_every, progress=self.progress,
                         unit="mol")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["augmentations"] = list(self.augmentations)
        return out


# may differ between a run and its resumption: where and how fast it runs, not what it computes
RESUME_MAY_CHANGE = ("skip_invalid", "precision", "sync_batchnorm", "batch_size", "molssl_version")
# where a run started from: a resumed run continues from its checkpoint, so these are kept from the saved config
INIT_SETTINGS = ("init_encoder", "init_encoder_digest")
# fields older run configs lack, with the values their molssl used (molssl.core.config_compat)
register_changes("pretrain", [
    DefaultChange("encoder.featurizer", "0.2.0", "molclr"),
    DefaultChange("precision", "0.2.0", "fp32"),
    DefaultChange("max_atoms", "0.2.0", 1000),  # no limit before 0.2.0; a resumed run applies the limit too
])


def build_objective(config: PretrainConfig) -> nn.Module:
    """The training module of ``config.method``, with augmentations in the encoder's vocabulary."""
    spec = get_featurizer(config.encoder.featurizer)
    augmentation = MolecularAugmentation(config.augmentations, config.mask_rate, config.delete_rate,
                                         config.subgraph_rate, mask_values=spec.atom_mask)
    return OBJECTIVES[config.method](MolecularEncoder(config.encoder), augmentation, config.temperature,
                                     **config.method_options)


def pretrain(config: PretrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) a pre-training job; returns a summary dict (also written to ``summary.json``).

    Under ``torchrun`` every process calls this: it joins the process group (NCCL on CUDA, Gloo on
    CPU), trains its shard of each global batch of ``batch_size * world_size`` molecules, and only
    rank 0 logs and writes files.
    """
    with dist.process_group(config.device) as device:
        main = dist.is_main_process()
        log = log if main else (lambda _msg: None)
        init_state = None
        if config.init_encoder and not config.resume:
            config, init_state = _initial_encoder(config, log)
        if not main:
            return _pretrain(config, device, log, init_state)
        out = check_output_dir(config.out, resume=config.resume)
        config = replace(config, input_sha256=_sha256(Path(config.smiles)))
        if config.resume:  # before featurizing or writing anything
            record = load_training_checkpoint(out / "checkpoint.pt").get("config", {})
            saved = record.get("pretrain") if isinstance(record, dict) else None
            if not isinstance(saved, dict):
                raise MolsslError(f"{out / 'checkpoint.pt'} is not a molssl pre-training checkpoint")
            saved = fill_defaults("pretrain", saved, record.get(VERSION_KEY), log, source=str(out))
            # the corpus is compared by content, so its file may move; runs older than 0.2.0 recorded only the path
            moved = ("smiles",) if saved.get("input_sha256") else ("input_sha256",)
            refuse_changed_resume(out, saved, config.to_dict(),
                                  RESUME_MAY_CHANGE + _RUNTIME_SETTINGS + INIT_SETTINGS + moved)
            config = replace(config, **{key: saved.get(key) for key in INIT_SETTINGS})
        with locked_run_dir(out):
            return _pretrain(config, device, log, init_state)


_RUNTIME_SETTINGS = ("resume", "progress", "device", "workers", "cache_dir", "log_every", "checkpoint_every")


def _initial_encoder(config: PretrainConfig, log: Callable[[str], None]) -> tuple[PretrainConfig, dict]:
    """The weights continued pre-training starts from, checked against the run's architecture (so the run's
    config.json describes the encoder it trains), and the config with their digest recorded."""
    source_config, state, source = resolve_encoder_state(config.init_encoder)
    differ = [f"{f.name} {getattr(source_config, f.name)!r} (this run: {getattr(config.encoder, f.name)!r})"
              for f in fields(EncoderConfig)
              if f.name != "dropout" and getattr(source_config, f.name) != getattr(config.encoder, f.name)]
    if differ:
        raise MolsslError(f"--init-encoder {config.init_encoder} has another architecture: {'; '.join(differ)}; "
                          "give the same --encoder, --featurizer, --num-layers, --emb-dim and --feat-dim")
    log(f"starting from the weights of {source}")
    return replace(config, init_encoder_digest=state_digest(state)), state


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise MolsslError(f"cannot read {path}: {'it is a folder' if path.is_dir() else 'no such file'}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _pretrain(config: PretrainConfig, device: torch.device, log: Callable[[str], None],
              init_state: Optional[dict] = None) -> dict:
    out = Path(config.out)
    seed_everything(config.seed + dist.rank())
    main = dist.is_main_process()
    precision = resolve_precision(config.precision, device, log)
    run_config = {"pretrain": config.to_dict(), "molssl_version": __version__, "precision_used": precision}
    if main:
        (out / "config.json").write_text(json.dumps({**config.to_dict(), "molssl_version": __version__,
                                                     "precision_used": precision}, indent=1))
    store = dist.main_process_first(lambda: open_corpus(
        config.smiles, smiles_column=config.smiles_column, extras=STORE_EXTRAS.get(config.method, ()),
        featurizer=config.encoder.featurizer, skip_invalid=config.skip_invalid,
        rejected_out=out / "rejected.csv" if main else None, workers=config.workers, cache_dir=config.cache_dir,
        max_atoms=config.max_atoms, progress=config.progress and main))
    train_idx, valid_idx = train_valid_indices(len(store), config.valid_fraction, config.seed)
    pin = device.type == "cuda"
    batch_size = min(config.batch_size, max(2, train_idx.size // dist.world_size()))
    features = BATCH_FEATURES.get(config.method, ())
    train = StoreBatches(store, train_idx, batch_size, seed=config.seed, pin_memory=pin, features=features)
    valid = StoreBatches(store, valid_idx, batch_size, shuffle=False, drop_last=False, pin_memory=pin,
                         features=features)
    log(f"{len(store):,} molecules ({store.n_invalid:,} invalid rows skipped), {train_idx.size:,} for training, "
        f"{valid_idx.size:,} for validation; {len(train):,} steps/epoch of {train.global_batch_size} on {device} "
        f"({precision})")

    module = build_objective(config)
    if init_state is not None:
        module.encoder.load_state_dict(init_state)
    if isinstance(module, PhysChem):
        _fit_descriptor_statistics(module, store, train_idx, config.seed, log)
    if config.sync_batchnorm:
        module = dist.convert_sync_batchnorm(module, device)
    trainer = fit(module, train, valid, out_dir=out, device=device, config=config.fit_config(precision),
                  run_config=run_config, resume=config.resume, samples_per_step=train.global_batch_size,
                  check_config=False, log=log)  # pretrain() compared the configs before any work
    state = trainer.state
    losses = [r["loss"] for r in state.history if "loss" in r]
    val_losses = [r["val_loss"] for r in state.history if "val_loss" in r]
    summary = {
        "steps": state.step,
        "molecules": len(store),
        "final_loss": losses[-1] if losses else None,
        "final_val_loss": val_losses[-1] if val_losses else None,
        "molecules_seen": state.step * state.samples_per_step,  # the budget: steps x global batch
        "seconds": state.seconds,  # training's wall time over every session (a resumed run continues the count)
        "cpu_hours": state.cpu_seconds / 3600,  # the operating system's count, the same way
        "molecules_per_s": _rate(state.history),
        "precision": precision,
        "encoder": str(out / ENCODER_FILE),
    }
    if main:
        save_encoder(module.encoder, out / ENCODER_FILE, meta={"pretrain": config.to_dict(), "steps": state.step,
                                                                "molssl_version": __version__})
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _fit_descriptor_statistics(module: PhysChem, store, train_idx, seed: int, log: Callable[[str], None]) -> None:
    """Descriptor targets' medians and ranges from (a seeded sample of) the training molecules; every rank
    draws the same sample, so all agree."""
    sample = train_idx
    if sample.size > STATISTICS_SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(train_idx, STATISTICS_SAMPLE, replace=False))
    varying = module.fit_statistics(store.extra(DESCRIPTOR_EXTRA)[sample])
    log(f"descriptor targets: {varying} of {module.centre.numel()} RDKit descriptors vary over {sample.size:,} "
        "training molecules (the rest are left out of the loss)")


def _rate(history: list[dict]) -> Optional[float]:
    """Mean molecules/s over the steps this process ran (from the Trainer's logged throughput)."""
    rates = [r["mol_per_s"] for r in history if "mol_per_s" in r and math.isfinite(r["mol_per_s"])]
    return sum(rates) / len(rates) if rates else None
