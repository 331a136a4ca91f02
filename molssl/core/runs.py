"""A run: a config dataclass, its record (full config + modality + molssl version), a locked run directory, core.fit.

:func:`train_run` is what every tensor-based modality (images, video, image-text, audio) calls to
pre-train: it opens ``out_dir`` with :func:`~molssl.core.rundir.open_run_dir`, writes ``config.json``,
seeds, builds the module, and trains it with :func:`~molssl.core.fit.fit` (which refuses a resume
whose settings differ from the saved record, ``--epochs`` included). :func:`read_run` loads a
checkpoint back with the record's older defaults filled in (:mod:`molssl.core.config_compat`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

from molssl.core.checkpoint import atomic_write_text, load_checkpoint, require_keys, seed_everything
from molssl.core.config_compat import VERSION_KEY, fill_defaults, with_version
from molssl.core.fit import FitConfig, fit, total_steps
from molssl.core.rundir import CONFIG_FILE, open_run_dir
from molssl.core.trainer import BatchSource, Trainer
from molssl.errors import MolsslError

MODALITY_KEY = "modality"


def run_record(modality: str, config: Any) -> dict:
    """The JSON-able record of a run: every field of ``config`` (a dataclass), its modality and the molssl version."""
    return with_version({MODALITY_KEY: modality, **json.loads(json.dumps(dataclasses.asdict(config)))})


def config_from_record(cls: type, record: Mapping[str, Any]) -> Any:
    """``cls(**fields)`` from a record; keys that are not fields of ``cls`` (modality, version, keys of
    older versions that are no longer used) are left out."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in record.items() if k in names})


def fit_config_of(config: Any, *, steps: int, progress: bool = True, unit: str = "sample",
                  checkpoint_every: Optional[int] = None) -> FitConfig:
    """The :class:`FitConfig` of a run config that has the usual fields (``epochs``, ``max_steps``, ``lr``,
    ``weight_decay``, ``warmup_fraction``, ``precision``); by default about four checkpoints per run."""
    every = checkpoint_every or max(1, min(500, steps // 4))
    return FitConfig(epochs=config.epochs, max_steps=config.max_steps, lr=config.lr, weight_decay=config.weight_decay,
                     warmup_fraction=config.warmup_fraction, precision=config.precision, checkpoint_every=every,
                     progress=progress, unit=unit)


def write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    """``config.json`` in ``run_dir``, never half written, readable as the user's umask allows."""
    atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(record, indent=2))


def train_run(build: Callable[[int], nn.Module], source: BatchSource, out_dir: str | Path, *, record: dict,
              fit_config: FitConfig, seed: int, device: torch.device, resume: bool = False,
              prepare: Optional[Callable[[nn.Module], None]] = None,
              log: Callable[[str], None] = print) -> tuple[nn.Module, Trainer]:
    """Seed, ``build(total_steps)`` the training module, and train it on ``source`` into ``out_dir``.

    ``prepare(module)`` runs on a fresh start only (e.g. statistics of the training data kept in a
    buffer; a resumed run gets them back from its checkpoint). The molssl version may differ on resume.
    """
    steps = total_steps(source, fit_config.epochs, fit_config.max_steps)
    with open_run_dir(out_dir, resume=resume) as run_dir:
        if not resume:
            write_record(run_dir, record)
        seed_everything(seed)
        module = build(steps)
        if prepare is not None and not resume:
            prepare(module)
        trainer = fit(module, source, out_dir=run_dir, device=device, config=fit_config, run_config=record,
                      resume=resume, resume_may_change={VERSION_KEY}, log=log)
    return module, trainer


def read_run(path: str | Path, modality: str, device: torch.device | str = "cpu",
             log: Callable[[str], None] = print) -> tuple[dict, dict]:
    """``(weights, record)`` of a training checkpoint of ``modality``; the record has the defaults of the
    molssl version that wrote it filled in (:func:`~molssl.core.config_compat.fill_defaults`)."""
    ckpt = load_checkpoint(path, map_location=device)
    require_keys(ckpt, ("model", "config"), path, f"a molssl {modality} checkpoint")
    saved = ckpt["config"]
    if not isinstance(saved, Mapping) or saved.get(MODALITY_KEY, modality) != modality:
        found = saved.get(MODALITY_KEY) if isinstance(saved, Mapping) else None
        raise MolsslError(f"{path} is not a molssl {modality} checkpoint (it holds a {found or 'different'} run)")
    record = fill_defaults(modality, saved, saved.get(VERSION_KEY), log, context={"weights": ckpt["model"]},
                           source=str(path))
    return ckpt["model"], record


def training_seconds(metrics: str | Path, batch_size: int) -> float:
    """Time spent in optimizer steps, summed from the throughput the Trainer logs in ``metrics.jsonl``
    (``<unit>_per_s`` over each logging window; survives resumed runs)."""
    seconds, previous = 0.0, 0
    for line in Path(metrics).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rate = next((v for k, v in record.items() if k.endswith("_per_s")), None)
        if rate:
            seconds += (record["step"] - previous) * batch_size / rate
            previous = record["step"]
    return seconds
