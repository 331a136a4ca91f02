"""Fine-tuning a (pre-trained) molecular encoder on labelled molecules, and the baselines on the same splits.

Defaults follow MolCLR's ``config_finetune.yaml`` and ``finetune.py`` (github.com/yuyangw/MolCLR):
batch 32, 100 epochs, Adam with lr 5e-4 for the prediction head ("init_lr") and 1e-4 for the
encoder ("init_base_lr", ``feat_lin`` included), weight decay 1e-6, dropout 0.3 in the encoder,
feat_dim 512, a head ``feat -> feat/2 -> feat/2 -> tasks`` with Softplus (its ``pred_n_layer=2``,
``pred_act='softplus'``), scaffold split 80/10/10, and the weights of the epoch with the best
validation metric kept for testing. The protocols (per target or multitask) are in
:mod:`molssl.chem.tasks.groups`.

Deviations from MolCLR, on purpose: classification uses one logit per task with binary cross
entropy (MolCLR: two logits and softmax cross entropy; the same model family for one task);
regression targets are always standardized on the training split (MolCLR: only QM7/QM9); the
loss is L1 when the metric is MAE, else MSE (MolCLR: L1 for QM7/8/9).

Options beyond MolCLR (each recorded in ``results.json``): ``featurizer`` (``rich``), molecule-level
``features`` concatenated before the head (``rdkit2d``, ``ecfp4``), ``patience`` (stop when the
validation metric has not improved for that many epochs), ``class_weight="balanced"`` (positives
weighted by negatives/positives of the training split, per task), a ``cosine`` learning-rate
schedule with warm-up, and ``precision`` (``auto``: bf16 where the CPU has AMX). Training runs on
:func:`molssl.core.fit.fit`, so an interrupted run continues with ``resume``.

A run directory holds ``config.json``, ``invalid.csv`` (rows left out), ``split.json`` (0-based data
rows of the input file), ``results.json`` and ``results.md``, and per model a ``model.pt`` (best
validation epoch), ``history.jsonl`` (training loss and validation metric per epoch),
``metrics.jsonl`` and ``test_predictions.csv``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from molssl import __version__
from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.inputs import file_sha256
from molssl.chem.data.labelled import LabelledData, load_labelled
from molssl.chem.data.sources import StoreBatches
from molssl.chem.data.splits import Split
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import FEATURE_SETS, PropertyModel, feature_extras, masked_loss
from molssl.chem.serve.loading import MODEL_FILE, resolve_encoder_state, save_property_model
from molssl.chem.serve.reliability import reliability_extras
from molssl.chem.tasks.baselines import BASELINE_EXTRAS, BASELINES, run_baseline
from molssl.chem.tasks.groups import (PROTOCOLS, SPLIT_EXTRAS, SPLITS, TaskGroup, cap_training_set, group_dir,
                                      make_split, split_to_rows, task_groups)
from molssl.chem.tasks.metrics import HIGHER_IS_BETTER, score, task_scores
from molssl.chem.tasks.reports import (describe_score, results_markdown, summarize, write_history, write_invalid,
                                       write_predictions)
from molssl.core.checkpoint import seed_everything
from molssl.core.device import move_to, resolve_device, torch_threads
from molssl.core.fit import SCHEDULES, FitConfig, fit
from molssl.core.precision import CHOICES as PRECISIONS, resolve_precision
from molssl.core.rundir import check_output_dir, locked_run_dir
from molssl.core.trainer import Selection
from molssl.errors import MolsslError

METHODS = ("finetune", *BASELINES, "chemprop")
CLASS_WEIGHTS = ("none", "balanced")
DEFAULT_ENCODER = "molclr-gin"  # what --csv fine-tunes from unless --pretrained says otherwise


@dataclass
class FinetuneConfig:
    """One fine-tuning run (all seeds); saved as ``config.json`` and inside ``results.json``.

    Either ``dataset`` (a MoleculeNet name) or ``csv`` + ``targets`` + ``task`` is given.
    ``protocol`` defaults to ``molclr-per-target`` for MoleculeNet sets, ``multitask`` for CSVs.
    ``pretrained`` names an encoder (shipped name, run directory, ``encoder.pt``) or ``none``;
    unset, a ``--csv`` starts from :data:`DEFAULT_ENCODER` and a ``--dataset`` from random weights.
    ``encoder`` is used only for random initialization; its dropout is replaced by ``dropout``
    either way. ``method`` other than ``finetune`` runs that baseline on the same molecules and splits.
    """

    out: str
    dataset: Optional[str] = None
    csv: Optional[str] = None
    smiles_column: Optional[str] = None
    targets: Optional[Sequence[str]] = None
    task: Optional[str] = None
    metric: Optional[str] = None
    units: Optional[str] = None
    method: str = "finetune"
    pretrained: Optional[str] = None
    protocol: Optional[str] = None
    split: str = "scaffold"
    seeds: Sequence[int] = (0,)
    epochs: int = 100
    batch_size: int = 32
    lr_head: float = 5e-4
    lr_encoder: float = 1e-4
    weight_decay: float = 1e-6
    dropout: float = 0.3
    freeze_encoder: bool = False
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    features: str = "none"
    patience: Optional[int] = None
    class_weight: str = "none"
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    precision: str = "auto"
    max_train_molecules: Optional[int] = None
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    workers: Optional[int] = 1
    device: str = "auto"
    threads: Optional[int] = None
    progress: bool = True
    resume: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        if (self.dataset is None) == (self.csv is None):
            raise MolsslError("give either a MoleculeNet --dataset or your own --csv, not both or neither")
        if self.csv is not None and (not self.targets or self.task is None):
            raise MolsslError("a --csv needs --targets (one or more label columns) and --task classification|regression")
        if self.protocol is None:
            self.protocol = "molclr-per-target" if self.dataset else "multitask"
        if self.csv is not None and self.pretrained is None and self.method == "finetune":
            self.pretrained = DEFAULT_ENCODER
        for value, allowed, what in ((self.protocol, PROTOCOLS, "--protocol"), (self.split, SPLITS, "--split"),
                                     (self.method, METHODS, "method"), (self.features, tuple(FEATURE_SETS), "--features"),
                                     (self.class_weight, CLASS_WEIGHTS, "--class-weight"),
                                     (self.schedule, SCHEDULES, "--schedule"), (self.precision, PRECISIONS, "--precision")):
            if value not in allowed:
                raise MolsslError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
        if not self.seeds:
            raise MolsslError("give at least one seed")
        for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size)):
            if not isinstance(value, int) or value < 1:
                raise MolsslError(f"{flag} must be a positive whole number, got {value}")
        for flag, value in (("--lr-head", self.lr_head), ("--lr-encoder", self.lr_encoder)):
            if not value > 0:
                raise MolsslError(f"{flag} must be a positive learning rate, got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise MolsslError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.threads is not None and self.threads < 1:
            raise MolsslError(f"--threads must be at least 1, got {self.threads}")
        if self.max_train_molecules is not None and self.max_train_molecules < 2:
            raise MolsslError("--max-train-molecules must be at least 2")
        if self.patience is not None and self.patience < 1:
            raise MolsslError(f"--patience must be at least 1 epoch, got {self.patience}")
        if self.pretrained is not None and str(self.pretrained).lower() == "none":
            self.pretrained = None
        self.seeds = [int(s) for s in self.seeds]
        self.targets = list(self.targets) if self.targets else None

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- training one model
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
    seconds: float
    epochs_run: int = 0
    notes: dict = field(default_factory=dict)


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
                log: Callable[[str], None] = print) -> ModelResult:
    """Train one model with per-epoch validation; keep and save the best-validation weights."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    labels = data.labels[:, group.task_index]
    _check_scorable(data, group, split)
    seed_everything(seed)
    features = feature_extras(config.features)
    model = PropertyModel(encoder_config, [data.tasks[j] for j in group.task_index], data.task_type,
                          data.smiles_column, config.units, config.freeze_encoder, features=features)
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
                           checkpoint_every=None, log_every=max(1, len(train)), progress=False, patience=config.patience)
    resuming = config.resume and (out_dir / "checkpoint.pt").is_file()
    trainer = fit(objective, train, out_dir=out_dir, device=device, config=fit_config,
                  params=model.parameter_groups(config.lr_encoder, config.lr_head), selection=selection,
                  run_config={"finetune": config.to_dict(), "group": group.name, "seed": seed}, resume=resuming,
                  resume_may_change=("resume", "precision"),
                  log=(lambda m: log(f"    {data.name}/{group.name} seed {seed}: {m}")) if config.progress else (lambda m: None))
    state = trainer.state
    test_preds = predict_positions(model, data, split.test, pin)
    result = ModelResult(valid=float(state.best_score), test=float(score(data.metric, labels[split.test], test_preds)),
                         best_epoch=state.best_epoch, seconds=time.perf_counter() - started, epochs_run=state.epoch,
                         test_per_task={model.tasks[j]: _float_or_none(v)
                                        for j, v in enumerate(task_scores(data.metric, labels[split.test], test_preds))},
                         notes=notes)
    save_property_model(model, out_dir / MODEL_FILE, {  # reliability: validation record and training domain
        "dataset": data.name, "metric": data.metric, "protocol": config.protocol, "split": config.split, "seed": seed,
        "best_epoch": result.best_epoch, "valid_score": result.valid, "test_score": result.test, "pretrained": config.pretrained,
        "molssl_version": __version__, **reliability_extras(data, split, labels, predict_positions(model, data, split.valid, pin))})
    write_history(out_dir, data.metric)
    write_predictions(out_dir / "test_predictions.csv", data, split.test, model.tasks, labels[split.test], test_preds)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # model.pt is the product; the checkpoint only served resume
    stopped = f", stopped early after {state.epoch}" if state.stopped_early else ""
    log(f"  {data.name}/{group.name} seed {seed}: best epoch {result.best_epoch + 1}/{config.epochs}{stopped}, "
        f"valid {describe_score(data.metric, result.valid)}, test {describe_score(data.metric, result.test)} "
        f"({result.seconds:.0f} s, {precision})")
    return result


def _float_or_none(value: float) -> Optional[float]:
    return None if np.isnan(value) else float(value)


def baseline_model(data: LabelledData, group: TaskGroup, split: Split, seed: int, config: FinetuneConfig,
                   out_dir: Path) -> ModelResult:
    """A baseline (:mod:`molssl.chem.tasks.baselines`, or chemprop) on exactly the same molecules and split."""
    started = time.perf_counter()
    if config.method == "chemprop":
        from molssl.chem.tasks.chemprop_baseline import run_chemprop

        scores = run_chemprop(data, group.task_index, split, seed, out_dir, threads=config.threads or 1)
    else:
        scores = run_baseline(config.method, data, group.task_index, split, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [data.tasks[j] for j in group.task_index]
    write_predictions(out_dir / "test_predictions.csv", data, split.test, tasks,
                       data.labels[np.ix_(split.test, group.task_index)], scores["test_predictions"])
    return ModelResult(valid=float(scores["valid"]), test=float(scores["test"]), best_epoch=-1, test_per_task={},
                       seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- runs
def load_run_data(config: FinetuneConfig, featurizer: str) -> LabelledData:
    """The run's labelled molecules with every extra its method, features and split need."""
    extras = set(SPLIT_EXTRAS[config.split]) | set(feature_extras(config.features))
    extras |= set(BASELINE_EXTRAS.get(config.method, ()))
    return load_labelled(dataset=config.dataset, csv=config.csv, smiles_column=config.smiles_column,
                         targets=config.targets, task=config.task, metric=config.metric, data_dir=config.data_dir,
                         featurizer=featurizer, extras=sorted(extras), cache_dir=config.cache_dir,
                         workers=config.workers, progress=config.progress)


def run_finetune(config: FinetuneConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or fit the baseline) for every group and seed; write the run directory; return ``results``."""
    out = Path(config.out)
    ours = is_finetune_run(out)
    if ours and (out / "results.json").exists():
        raise MolsslError(f"{out} already holds finished results; choose another --out")
    check_output_dir(out, resume=config.resume, holds_run=ours)
    with locked_run_dir(out), torch_threads(config.threads):
        return _run(config, out, log)


def is_finetune_run(out: Path) -> bool:
    try:
        return "molssl_version" in json.loads((out / "config.json").read_text()) and "protocol" in json.loads(
            (out / "config.json").read_text())
    except (OSError, ValueError):
        return False


def _run(config: FinetuneConfig, out: Path, log: Callable[[str], None]) -> dict:
    started = time.perf_counter()
    encoder_config, pretrained_state, source = replace(config.encoder), None, "random initialization"
    if config.pretrained is not None and config.method == "finetune":
        encoder_config, pretrained_state, source = resolve_encoder_state(config.pretrained)
    encoder_config = replace(encoder_config, dropout=config.dropout)
    if config.method == "finetune":
        log(f"encoder: {source} ({encoder_config.kind}, {encoder_config.featurizer} featurizer)")
    data = load_run_data(config, encoder_config.featurizer)
    saved = {**config.to_dict(), "molssl_version": __version__, "input": str(data.source.resolve()),
             "input_sha256": file_sha256(data.source)}
    if config.resume and (out / "config.json").is_file():
        from molssl.core.rundir import refuse_changed_resume

        refuse_changed_resume(out, json.loads((out / "config.json").read_text()), saved,
                              ("resume", "progress", "workers", "cache_dir", "device", "threads", "out"))
    (out / "config.json").write_text(json.dumps(saved, indent=1))
    write_invalid(out / "invalid.csv", data.invalid)
    if data.invalid:
        log(f"{data.name}: {len(data.invalid)} rows left out (listed in {out / 'invalid.csv'})")

    groups = task_groups(data, config.protocol)
    seed_dependent = config.split != "scaffold" or config.max_train_molecules is not None
    per_seed: dict[int, list[ModelResult]] = {seed: [] for seed in config.seeds}
    splits_written: list[str] = []
    for index, group in enumerate(groups):
        folder = group_dir(out, groups, index)
        scaffold = make_split(data, group, "scaffold", 0) if config.split == "scaffold" else None  # seed-free
        for seed in config.seeds:
            split = scaffold if scaffold is not None else make_split(data, group, config.split, seed)
            split = cap_training_set(split, config.max_train_molecules, seed)
            seed_dir = folder / f"seed_{seed}"
            split_dir = seed_dir if seed_dependent else folder
            split_dir.mkdir(parents=True, exist_ok=True)
            (split_dir / "split.json").write_text(json.dumps(split_to_rows(data, split)))
            splits_written.append(str((split_dir / "split.json").relative_to(out)))
            done = seed_dir / "result.json"
            if config.resume and done.is_file():
                result = ModelResult(**json.loads(done.read_text()))
            elif config.method == "finetune":
                result = train_model(data, group, split, seed, config, encoder_config, pretrained_state, seed_dir, log)
            else:
                result = baseline_model(data, group, split, seed, config, seed_dir)
                log(f"  {data.name}/{group.name} seed {seed}: {config.method} valid "
                    f"{describe_score(data.metric, result.valid)}, test {describe_score(data.metric, result.test)}")
            done.write_text(json.dumps(asdict(result)))
            per_seed[seed].append(result)

    results = summarize(config, data, groups, per_seed, encoder_config, source, sorted(set(splits_written)),
                        time.perf_counter() - started)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_markdown(results))
    return results
