"""Training one fine-tuned model (one task group, one seed) on :func:`molssl.core.fit.fit`, or fitting a baseline
on the same split; the run around them is :mod:`molssl.chem.tasks.finetune`."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from molssl import __version__
from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.labelled import LabelledData
from molssl.chem.data.sources import StoreBatches
from molssl.chem.data.splits import Split
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import PropertyModel, feature_extras, masked_loss
from molssl.chem.serve.loading import MODEL_FILE, save_property_model
from molssl.chem.serve.reliability import reliability_extras
from molssl.chem.tasks.baselines import run_baseline
from molssl.chem.tasks.finetune_config import FinetuneConfig
from molssl.chem.tasks.groups import TaskGroup
from molssl.chem.tasks.metrics import HIGHER_IS_BETTER, score, task_scores
from molssl.chem.tasks.reports import describe_score, write_history, write_predictions
from molssl.core.checkpoint import seed_everything
from molssl.core.cputime import cpu_seconds
from molssl.core.device import move_to, resolve_device
from molssl.core.fit import FitConfig, fit
from molssl.core.precision import resolve_precision
from molssl.core.trainer import Selection
from molssl.errors import MolsslError


class FinetuneObjective(nn.Module):
    """The training module :func:`molssl.core.fit.fit` runs: the masked loss of a property model on a batch."""

    def __init__(self, model: PropertyModel, labels: Tensor, task_type: str, metric: str,
                 pos_weight: Optional[Tensor] = None) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("labels", labels)  # (molecules in the store, tasks), NaN = missing
        self.task_type, self.metric = task_type, metric
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(labels.shape[1]))

    def forward(self, batch: GraphBatch) -> Tensor:
        target = self.labels[batch.index]
        if self.task_type == "regression":
            target = (target - self.model.target_mean) / self.model.target_std
        return masked_loss(self.model(batch), target, self.task_type, self.metric, self.pos_weight)


@dataclass
class ModelResult:
    """Scores of one trained model (one group, one seed)."""

    valid: float
    test: float
    best_epoch: int
    test_per_task: dict
    seconds: float  # wall time, every session of an interrupted and resumed model counted
    epochs_run: int = 0
    notes: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0  # the operating system's CPU count, the same way (0: not recorded, results before Dec 5)


def batches_for(data: LabelledData, positions: np.ndarray, batch_size: int, shuffle: bool, seed: int, pin: bool,
                features: Sequence[str] = ()) -> StoreBatches:
    batch_size = min(batch_size, positions.size)
    # MolCLR keeps the last partial batch; one of a single graph would break BatchNorm, so it is dropped
    drop_last = shuffle and positions.size % batch_size == 1
    return StoreBatches(data.store, positions, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                        pin_memory=pin, rank=0, world_size=1, features=features)


@torch.no_grad()
def predict_positions(model: PropertyModel, data: LabelledData, positions: np.ndarray, pin: bool = False) -> np.ndarray:
    """Predictions (probabilities or target units) of the molecules at store ``positions``, in order."""
    model.eval()
    device = next(model.parameters()).device
    batches = batches_for(data, positions, 256, False, 0, pin, model.features).batches(0)
    out = [model.predict_batch(move_to(b, device)).cpu().numpy() for b in batches]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(model.tasks)))


def _check_scorable(data: LabelledData, group: TaskGroup, split: Split) -> None:
    """Refuse an unscorable split; advise another --split only where one can help (a task with two of each class)."""
    labels, tasks, n = data.labels[:, group.task_index], [data.tasks[j] for j in group.task_index], len(group.positions)
    hint = (f"{n} labelled molecule(s) are too few for a train/valid/test split (at least ~10 are needed)" if n else
            f"no molecule has a label in {', '.join(map(repr, tasks))} (all cells empty); check the --targets columns")
    for part in ("train", "valid", "test"):
        positions = getattr(split, part)
        if positions.size == 0:
            raise MolsslError(f"{data.name}/{group.name}: the {part} split is empty: {hint}")
        try:
            score(data.metric, labels[positions], labels[positions]) if part != "train" else None
        except ValueError as exc:
            counts = [(int((k == 1).sum()), int((k == 0).sum())) for k in labels[group.positions].T]
            if data.task_type == "classification" and all(min(c) < 2 for c in counts):
                hint = ("no task has two molecules of each class (" + ", ".join(f"{t!r}: {a} positive, {b} negative"
                        for t, (a, b) in zip(tasks, counts)) + "); no --split can put both classes in valid and test")
            elif data.task_type == "classification" and n >= 50:
                hint = "try another --split (random spreads each class over the splits)"
            raise MolsslError(f"{data.name}/{group.name}: the {part} split cannot be scored ({exc}); {hint}") from None


def train_model(data: LabelledData, group: TaskGroup, split: Split, seed: int, config: FinetuneConfig,
                encoder_config: EncoderConfig, pretrained_state: Optional[dict], out_dir: Path,
                log: Callable[[str], None] = print, like_test: Optional[np.ndarray] = None) -> ModelResult:
    """Train one model with per-epoch validation; keep and save the best-validation weights (``like_test``: see
    :func:`~molssl.chem.serve.reliability.reliability_extras`)."""
    started, cpu_started = time.perf_counter(), cpu_seconds()
    device = resolve_device(config.device)
    labels = data.labels[:, group.task_index]
    _check_scorable(data, group, split)
    seed_everything(seed)
    features = feature_extras(config.features)
    model = PropertyModel(encoder_config, [data.tasks[j] for j in group.task_index], data.task_type,
                          data.smiles_column, config.units, config.freeze_encoder, features=features,
                          descriptor_scaling=config.descriptor_scaling)
    if pretrained_state is not None:
        missing, unexpected = model.encoder.load_state_dict(pretrained_state, strict=False)
        if [k for k in missing if not k.startswith("head.")] or unexpected:
            raise MolsslError(f"the pre-trained encoder does not fit the model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]})")
    notes = model.fit_feature_statistics(np.asarray(data.store.extra("rdkit2d"))[split.train]) if "rdkit2d" in features else {}
    if notes.get("descriptor_values_imputed"):
        log(f"  {data.name}/{group.name}: {notes['molecules_with_imputed_descriptors']} training molecules have "
            f"descriptors RDKit could not compute ({notes['descriptor_values_imputed']} values imputed with the median)")
    train_labels = labels[split.train]
    if data.task_type == "regression":
        std = np.nanstd(train_labels, axis=0)
        model.target_mean.copy_(torch.as_tensor(np.nanmean(train_labels, axis=0), dtype=torch.float32))
        model.target_std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))
    pos_weight = None
    if config.class_weight == "balanced" and data.task_type == "classification":
        positives = np.nansum(train_labels, axis=0)
        negatives = np.sum(~np.isnan(train_labels), axis=0) - positives
        pos_weight = torch.as_tensor(np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0),
                                     dtype=torch.float32)
        notes["pos_weight"] = pos_weight.tolist()
    table = torch.full((len(data), len(group.task_index)), float("nan"))
    table[torch.as_tensor(group.positions)] = torch.as_tensor(labels[group.positions], dtype=torch.float32)
    objective = FinetuneObjective(model, table, data.task_type, data.metric, pos_weight)
    pin = device.type == "cuda"
    train = batches_for(data, split.train, config.batch_size, True, seed, pin, features)
    higher = HIGHER_IS_BETTER[data.metric]
    selection = Selection(data.metric, lambda: score(data.metric, labels[split.valid],
                                                     predict_positions(model, data, split.valid, pin)), higher)
    precision = resolve_precision(config.precision, device)
    fit_config = FitConfig(epochs=config.epochs, lr=config.lr_head, weight_decay=config.weight_decay,
                           warmup_fraction=config.warmup_fraction, schedule=config.schedule, precision=precision,
                           checkpoint_every=None, log_every=max(1, len(train)), progress=False, patience=config.patience or None)
    resuming = config.resume and (out_dir / "checkpoint.pt").is_file()
    run_config = {"finetune": config.to_dict(), "group": group.name, "seed": seed}

    def notice(message: str) -> None:
        log(f"    {data.name}/{group.name} seed {seed}: {message}")

    step_log = notice if config.progress else (lambda m: None)  # --no-progress keeps the notices (interrupted, resumed)
    earlier_probe = (0.0, 0.0)  # the probe stage's cost in earlier sessions of this model
    if config.probe_epochs and not resuming:  # LP-FT: the head alone on the frozen encoder, then everything
        notes["probe"], earlier_probe = _probe_head(model, objective, train, selection, fit_config, config, out_dir,
                                                    device, run_config, step_log, notice)
    elif config.probe_epochs and (out_dir / PROBE_RECORD).is_file():  # finished in an earlier session
        notes["probe"] = json.loads((out_dir / PROBE_RECORD).read_text())
        earlier_probe = (notes["probe"]["seconds"], notes["probe"]["cpu_seconds"])  # all of it was spent then
    trainer = fit(objective, train, out_dir=out_dir, device=device, config=fit_config,
                  params=model.parameter_groups(config.lr_encoder, config.lr_head), selection=selection,
                  run_config=run_config, resume=resuming, resume_may_change=("resume", "precision"),
                  log=step_log, notice=notice)
    state = trainer.state
    test_preds = predict_positions(model, data, split.test, pin)
    result = ModelResult(valid=float(state.best_score), test=float(score(data.metric, labels[split.test], test_preds)),
                         best_epoch=state.best_epoch,
                         seconds=trainer.earlier[0] + earlier_probe[0] + time.perf_counter() - started,
                         epochs_run=state.epoch,
                         test_per_task={model.tasks[j]: _float_or_none(v)
                                        for j, v in enumerate(task_scores(data.metric, labels[split.test], test_preds))},
                         notes=notes, cpu_seconds=trainer.earlier[1] + earlier_probe[1] + cpu_seconds() - cpu_started)
    save_property_model(model, out_dir / MODEL_FILE, {  # reliability: validation record and training domain
        "dataset": data.name, "metric": data.metric, "protocol": config.protocol, "split": config.split, "seed": seed,
        "best_epoch": result.best_epoch, "valid_score": result.valid, "test_score": result.test, "pretrained": config.pretrained,
        "molssl_version": __version__, **reliability_extras(data, split, labels, predict_positions(model, data, split.valid, pin), like_test)})
    write_history(out_dir, data.metric)
    write_predictions(out_dir / "test_predictions.csv", data, split.test, model.tasks, labels[split.test], test_preds)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # model.pt is the product; the checkpoint only served resume
    stopped = f", stopped early after {state.epoch}" if state.stopped_early else ""
    log(f"  {data.name}/{group.name} seed {seed}: best epoch {result.best_epoch + 1}/{config.epochs}{stopped}, "
        f"valid {describe_score(data.metric, result.valid)}, test {describe_score(data.metric, result.test)} "
        f"({result.seconds:.0f} s, {precision})")
    return result


PROBE_RECORD = "probe/result.json"


def _probe_head(model: PropertyModel, objective: FinetuneObjective, train: StoreBatches, selection: Selection,
                fit_config: FitConfig, config: FinetuneConfig, out_dir: Path, device: torch.device, run_config: dict,
                log: Callable[[str], None], notice: Callable[[str], None]) -> tuple[dict, tuple[float, float]]:
    """Train the head only (encoder frozen, BatchNorm statistics fixed) for up to ``config.probe_epochs`` epochs in
    ``out_dir/probe``; the model ends with the best-validation head and a trainable encoder.

    Returns the stage's record (also written to ``probe/result.json``, for a resumed fine-tuning stage) and the wall
    and CPU seconds it spent in earlier sessions, when the probe itself was interrupted and resumed."""
    probe_dir = out_dir / "probe"
    model.freeze_encoder = True
    model.encoder.requires_grad_(False)
    try:
        trainer = fit(objective, train, out_dir=probe_dir, device=device,
                      config=replace(fit_config, epochs=config.probe_epochs),
                      params=model.parameter_groups(config.lr_encoder, config.lr_head), selection=selection,
                      run_config={**run_config, "stage": "probe"},
                      resume=config.resume and (probe_dir / "checkpoint.pt").is_file(),
                      resume_may_change=("resume", "precision"), log=log, notice=notice)
    finally:
        model.freeze_encoder = False
        model.encoder.requires_grad_(True)
    state = trainer.state
    record = {"epochs_run": state.epoch, "best_epoch": state.best_epoch, "valid": float(state.best_score),
              "seconds": state.seconds, "cpu_seconds": state.cpu_seconds}
    (out_dir / PROBE_RECORD).write_text(json.dumps(record))
    (probe_dir / "checkpoint.pt").unlink(missing_ok=True)
    return record, trainer.earlier


def _float_or_none(value: float) -> Optional[float]:
    return None if np.isnan(value) else float(value)


def baseline_model(data: LabelledData, group: TaskGroup, split: Split, seed: int, config: FinetuneConfig,
                   out_dir: Path, log: Callable[[str], None] = lambda _m: None) -> ModelResult:
    """A baseline (:mod:`molssl.chem.tasks.baselines`, or chemprop) on exactly the same molecules and split;
    chemprop's epochs go to ``log`` as progress lines (unless ``config.progress`` is off)."""
    started, cpu_started = time.perf_counter(), cpu_seconds()
    if config.method == "chemprop":
        from molssl.chem.tasks.chemprop_baseline import run_chemprop

        progress = (lambda line: log(f"    {data.name}/{group.name} seed {seed}: {line}")) if config.progress else None
        scores = run_chemprop(data, group.task_index, split, seed, out_dir, threads=config.threads or 1,
                              resume=config.resume, progress=progress)
        started -= scores["earlier_seconds"]  # a resumed chemprop run: its earlier sessions count too
        cpu_started -= scores["earlier_cpu_seconds"]
    else:
        scores = run_baseline(config.method, data, group.task_index, split, seed, n_jobs=config.threads or 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [data.tasks[j] for j in group.task_index]
    test_labels = data.labels[np.ix_(split.test, group.task_index)]
    write_predictions(out_dir / "test_predictions.csv", data, split.test, tasks, test_labels, scores["test_predictions"])
    per_task = task_scores(data.metric, test_labels, scores["test_predictions"])  # comparable with the GNN's, task by task
    return ModelResult(valid=float(scores["valid"]), test=float(scores["test"]), best_epoch=-1,
                       test_per_task={task: _float_or_none(v) for task, v in zip(tasks, per_task)},
                       seconds=time.perf_counter() - started, cpu_seconds=cpu_seconds() - cpu_started)
