"""Image pre-training runs: build a run from its config, train it with core.fit, load it back, probe it."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from molssl.core.checkpoint import load_weights, seed_everything
from molssl.core.fit import total_steps
from molssl.core.runs import config_from_record, fit_config_of, read_run, run_record, train_run
from molssl.core.trainer import TrainState
from molssl.errors import MolsslError
from molssl.vision.config import UNRECORDED, VisionConfig, make_config
from molssl.vision.data import ImageDataset, TensorBatchSource, load_dataset
from molssl.vision.features import FEATURES, feature_extractor, probe_encoders
from molssl.vision.methods import METHODS, PRETEXT, build_method, spec

MODALITY = "vision"
TILE_TASKS = ("jigsaw", "context")

__all__ = ["METHODS", "PRETEXT", "TILE_TASKS", "FEATURES", "VisionConfig", "make_config", "build_module",
           "split_data", "pretrain", "random_init_module", "random_init_encoder", "load_module", "load_encoder",
           "feature_extractor", "probe_encoders"]


def build_module(config: VisionConfig, steps: int = 0) -> nn.Module:
    """The training module a run config describes (``steps``, the run's length, drives BYOL's momentum schedule)."""
    return build_method(config.method, config.image_size, config.channels, config.widths, config.options,
                        config.augment, steps)


def split_data(config: VisionConfig) -> tuple[ImageDataset, ImageDataset]:
    """The (train, test) split a run config names; pre-training only ever sees the train part."""
    dataset = load_dataset(config.data, config.image_size, config.channels, config.max_images)
    return dataset.split(config.test_fraction, config.split_seed)


def sized_to(config: VisionConfig, images: int) -> VisionConfig:
    """``config`` with the options that default to the number of training images (memory bank, exemplar
    classes) set to ``images``; the record then holds the number the run was built with."""
    unset = {name: images for name in spec(config.method).sized_by_data if config.options.get(name) is None}
    return dataclasses.replace(config, options={**config.options, **unset}) if unset else config


def training_images(config: VisionConfig, train: ImageDataset) -> ImageDataset:
    """What a run trains on: ``train``, or for a method with a ``subset_by`` option set below ``len(train)``
    (Exemplar CNN's number of surrogate classes) a random subset of that size, seeded by the run's seed."""
    name = spec(config.method).subset_by
    count = config.options.get(name) if name else None
    if count is None or count == len(train):
        return train
    if not 2 <= count <= len(train):
        raise MolsslError(f"{name} must be between 2 and the {len(train)} training images, got {count}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))
    return train.subset(order[:count].sort().values)


def pretrain(config: VisionConfig, out_dir: str | Path, *, device: torch.device, resume: bool = False,
             progress: bool = True, train: Optional[ImageDataset] = None,
             log: Callable[[str], None] = print) -> tuple[nn.Module, TrainState]:
    """Pre-train the method of ``config`` on the train split (or ``train``); returns (module, final state).

    Writes ``checkpoint.pt``, ``metrics.jsonl`` and ``config.json`` (the full config and molssl version) in
    ``out_dir``; ``resume`` continues the run there, and is refused if any setting differs.
    """
    if train is None:
        train, _ = split_data(config)
    config = sized_to(config, len(train))
    train = training_images(config, train)
    method = spec(config.method)
    source = TensorBatchSource(train.images, config.batch_size, seed=config.seed, with_index=method.indexed)
    fit_config = fit_config_of(config, steps=total_steps(source, config.epochs, config.max_steps), progress=progress)
    prepare = (lambda module: module.prepare(train.images)) if hasattr(method.cls, "prepare") else None
    module, trainer = train_run(lambda total: build_module(config, total), source, out_dir,
                                record=run_record(MODALITY, config), fit_config=fit_config, seed=config.seed,
                                device=device, resume=resume, prepare=prepare, log=log)
    return module, trainer.state


def random_init_module(config: VisionConfig) -> nn.Module:
    """The training module exactly as the run of ``config`` initialised it before training (same seed, same build)."""
    seed_everything(config.seed)
    return build_module(config)


def random_init_encoder(config: VisionConfig) -> nn.Module:
    """The encoder exactly as the run of ``config`` initialised it before training."""
    return random_init_module(config).encoder


def check_preprocessing(config: VisionConfig, path: str | Path) -> None:
    """Refuse a checkpoint whose method preprocessed its inputs differently from this molssl version."""
    current = spec(config.method).preprocessing
    if config.preprocessing == current:
        return
    if config.preprocessing == UNRECORDED:
        raise MolsslError(f"{path} predates recorded preprocessing versions, and {config.method}'s preprocessing "
                          f"has changed since (now version {current}), so its weights may expect other inputs; "
                          "re-train it with this molssl version")
    raise MolsslError(f"{path} was trained with {config.method} preprocessing version {config.preprocessing}, but "
                      f"this molssl uses version {current}; re-train it or load it with the molssl version that wrote it")


def load_module(checkpoint: str | Path, device: torch.device,
                log: Callable[[str], None] = print) -> tuple[nn.Module, VisionConfig]:
    """The trained module (encoder and method heads) of a vision checkpoint and its run config."""
    weights, record = read_run(checkpoint, MODALITY, device, log)
    try:
        config = config_from_record(VisionConfig, record)
    except (TypeError, ValueError) as exc:
        raise MolsslError(f"{checkpoint} does not hold a usable vision run config: {exc}") from None
    check_preprocessing(config, checkpoint)
    module = build_module(config)
    load_weights(module, weights, checkpoint)
    return module.to(device), config


def load_encoder(checkpoint: str | Path, device: torch.device) -> tuple[nn.Module, VisionConfig]:
    """The trained encoder of a vision checkpoint and its run config."""
    module, config = load_module(checkpoint, device)
    return module.encoder, config
