"""Fine-tuning a (pre-trained) molecular encoder on labelled molecules, MolCLR protocol by default.

Defaults follow MolCLR's ``config_finetune.yaml`` and ``finetune.py`` (github.com/yuyangw/MolCLR):
batch 32, 100 epochs, Adam with lr 5e-4 for the prediction head ("init_lr") and 1e-4 for the
encoder ("init_base_lr", ``feat_lin`` included), weight decay 1e-6, dropout 0.3 in the encoder,
feat_dim 512, a head ``feat -> feat/2 -> feat/2 -> tasks`` with Softplus (its ``pred_n_layer=2``,
``pred_act='softplus'``), scaffold split 80/10/10, and the weights of the epoch with the best
validation metric kept for testing.

Two protocols, named and saved with every run:

- ``molclr-per-target``: MolCLR's. One single-task model per target, trained on the molecules
  whose label for that target is present, with the split computed per target. The data set's
  score is the mean of the per-target scores.
- ``multitask``: one model for all targets; missing labels stay NaN and are masked out of the
  loss and the metric. Molecules with no label at all are left out before splitting.

Deviations from MolCLR, on purpose: classification uses one logit per task with binary cross
entropy (MolCLR: two logits and softmax cross entropy; the same model family for one task);
regression targets are always standardised on the training split (MolCLR: only QM7/QM9); the
loss is L1 when the metric is MAE, else MSE (MolCLR: L1 for QM7/8/9).

A run directory holds ``config.json``, ``invalid.csv`` (rows left out), ``split.json``
(0-based data rows of the input file), ``results.json`` and ``results.md``, and per model a
``model.pt`` (best validation epoch, loadable with :func:`load_property_model`) and
``history.jsonl``.
"""
from __future__ import annotations

import copy
import csv
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.chem.data.batch import GraphBatch
from molssl.chem.tasks.baselines import rf_ecfp_baseline
from molssl.chem.data.datasets import MoleculeNetData, get_spec, load_csv, load_dataset
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.data.featurize import smiles_to_graphs
from molssl.chem.data.inputs import resolve_smiles_column
from molssl.chem.tasks.metrics import HIGHER_IS_BETTER, score, task_scores
from molssl.chem.data.splits import Split, random_scaffold_split, random_split, scaffold_split
from molssl.chem.data.sources import StoreBatches
from molssl.chem.data.store import MoleculeStore, build_store, graphs_to_arrays
from molssl.core.checkpoint import atomic_save, load_checkpoint, seed_everything
from molssl.core.device import move_to, resolve_device
from molssl.core.heads import MLPHead
from molssl.errors import MolsslError

PROTOCOLS = ("molclr-per-target", "multitask")
SPLITS = ("scaffold", "random-scaffold", "random")
METHODS = ("finetune", "rf-ecfp")
MODEL_FILE = "model.pt"
MODEL_FORMAT = "molssl-property-model-v1"


# --------------------------------------------------------------------------- configuration
@dataclass
class FinetuneConfig:
    """One fine-tuning run (all seeds); saved as ``config.json`` and inside ``results.json``.

    Either ``dataset`` (a MoleculeNet name) or ``csv`` + ``targets`` + ``task`` is given.
    ``protocol`` defaults to ``molclr-per-target`` for MoleculeNet sets, ``multitask`` for CSVs.
    ``encoder`` is used only without ``pretrained`` (random initialisation); its dropout is
    replaced by ``dropout`` either way. ``method="rf-ecfp"`` runs the random-forest baseline
    on the same molecules and splits instead of a network. ``threads`` sets torch's CPU threads:
    on a busy machine 1 thread is far faster than oversubscribed ones for batches of 32 molecules.
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
    max_train_molecules: Optional[int] = None
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    workers: Optional[int] = 1
    device: str = "auto"
    threads: Optional[int] = None
    progress: bool = True

    def __post_init__(self) -> None:
        if (self.dataset is None) == (self.csv is None):
            raise MolsslError("give either a MoleculeNet --dataset or your own --csv, not both or neither")
        if self.csv is not None and (not self.targets or self.task is None):
            raise MolsslError("a --csv needs --targets (one or more label columns) and --task classification|regression")
        if self.protocol is None:
            self.protocol = "molclr-per-target" if self.dataset else "multitask"
        for value, allowed, what in ((self.protocol, PROTOCOLS, "protocol"), (self.split, SPLITS, "split"),
                                     (self.method, METHODS, "method")):
            if value not in allowed:
                raise MolsslError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
        if not self.seeds:
            raise MolsslError("give at least one seed")
        if self.epochs < 1 or self.batch_size < 1:
            raise MolsslError("--epochs and --batch-size must be positive")
        if self.max_train_molecules is not None and self.max_train_molecules < 2:
            raise MolsslError("--max-train-molecules must be at least 2")
        self.seeds = [int(s) for s in self.seeds]
        self.targets = list(self.targets) if self.targets else None

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- data
@dataclass
class TaskData:
    """The featurized molecules of one input file with their labels, in store order.

    ``labels`` (n, n_tasks) has NaN for missing labels; ``rows[i]`` is molecule i's 0-based data
    row in the input file; ``invalid`` lists (data row, SMILES, reason) of the rows left out.
    """

    name: str
    source: Path
    smiles_column: str
    store: MoleculeStore
    smiles: list[str]
    labels: np.ndarray
    rows: np.ndarray
    tasks: list[str]
    task_type: str
    metric: str
    invalid: list[tuple[int, str, str]]


def load_task_data(config: FinetuneConfig) -> TaskData:
    """Read labels (via :mod:`molssl.chem.data.datasets`) and featurize the file once into a store."""
    if config.dataset is not None:
        spec = get_spec(config.dataset)
        table = load_dataset(spec.name, config.data_dir)
        column = spec.smiles_column
    else:
        column = resolve_smiles_column(Path(config.csv), config.smiles_column) or "smiles"
        table = load_csv(config.csv, column, config.targets, config.task, config.metric)
    store = build_store(table.source, smiles_column=column, cache_dir=config.cache_dir,
                        workers=config.workers, progress=config.progress)
    if int(store.meta["n_rows"]) != len(table):
        raise MolsslError(f"{table.source}: the featurizer read {store.meta['n_rows']} rows but the label "
                          f"reader {len(table)}; check the file for embedded line breaks")
    rows = np.asarray(store.rows, dtype=np.int64)
    invalid = [(line - 2, smiles, reason) for line, smiles, reason in store.rejected()]
    return TaskData(name=table.name, source=Path(table.source), smiles_column=column, store=store,
                    smiles=[table.smiles[r] for r in rows], labels=table.labels[rows], rows=rows,
                    tasks=list(table.tasks), task_type=table.task_type, metric=table.metric,
                    invalid=invalid)


@dataclass
class TaskGroup:
    """The targets one model learns and the molecules (store positions) it may use."""

    name: str
    task_index: list[int]
    positions: np.ndarray


def task_groups(data: TaskData, protocol: str) -> list[TaskGroup]:
    """One group per target (``molclr-per-target``) or one for all targets (``multitask``)."""
    labelled = ~np.isnan(data.labels)
    if protocol == "multitask":
        return [TaskGroup("all", list(range(len(data.tasks))), np.flatnonzero(labelled.any(axis=1)))]
    return [TaskGroup(task, [j], np.flatnonzero(labelled[:, j])) for j, task in enumerate(data.tasks)]


def group_dir(out: Path, groups: list[TaskGroup], index: int) -> Path:
    """Where a group's models go: the run directory itself for one group, else ``targets/<i>_<name>``."""
    if len(groups) == 1:
        return out
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in groups[index].name)[:60]
    return out / "targets" / f"{index}_{name}"


def make_split(data: TaskData, group: TaskGroup, kind: str, seed: int) -> Split:
    """Train/valid/test store positions of ``group`` (the split is computed on its molecules only)."""
    smiles = [data.smiles[i] for i in group.positions]
    if kind == "scaffold":
        local = scaffold_split(smiles)
    elif kind == "random-scaffold":
        local = random_scaffold_split(smiles, seed=seed)
    else:
        local = random_split(len(smiles), seed=seed)
    return Split(*(group.positions[part] for part in local))


def cap_training_set(split: Split, limit: Optional[int], seed: int) -> Split:
    """Keep at most ``limit`` training molecules (a seeded random subset; valid and test unchanged)."""
    if limit is None or split.train.size <= limit:
        return split
    keep = np.sort(np.random.default_rng(seed).choice(split.train, size=limit, replace=False))
    return split._replace(train=keep)


def split_to_rows(data: TaskData, split: Split) -> dict[str, list[int]]:
    """``split.json`` content: 0-based data rows of the input file."""
    return {part: data.rows[getattr(split, part)].tolist() for part in ("train", "valid", "test")}


# --------------------------------------------------------------------------- model
class PropertyModel(nn.Module):
    """Molecular encoder + task head; ``forward`` gives logits (classification) or standardised values.

    ``target_mean``/``target_std`` (buffers) undo the standardisation of regression targets;
    :meth:`predict_batch` returns probabilities or values in the targets' own units.
    """

    def __init__(self, encoder_config: EncoderConfig, tasks: Sequence[str], task_type: str,
                 smiles_column: str = "smiles", units: Optional[str] = None, freeze_encoder: bool = False) -> None:
        super().__init__()
        if task_type not in ("classification", "regression"):
            raise ValueError(f"task type must be 'classification' or 'regression', got {task_type!r}")
        self.encoder = MolecularEncoder(encoder_config)
        feat = encoder_config.feat_dim
        self.head = MLPHead([feat, feat // 2, feat // 2, len(tasks)], activation=nn.Softplus)
        self.tasks = list(tasks)
        self.task_type = task_type
        self.smiles_column = smiles_column
        self.units = units
        self.freeze_encoder = freeze_encoder
        self.meta: dict = {}  # run information of a loaded model.pt (dataset, protocol, seed, scores, ...)
        self.register_buffer("target_mean", torch.zeros(len(tasks)))
        self.register_buffer("target_std", torch.ones(len(tasks)))
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> "PropertyModel":
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()  # linear probe: BatchNorm statistics and dropout of the encoder stay fixed
        return self

    def forward(self, batch: GraphBatch) -> Tensor:
        return self.head(self.encoder.represent(batch))

    def predict_batch(self, batch: GraphBatch) -> Tensor:
        out = self(batch).float()
        if self.task_type == "classification":
            return torch.sigmoid(out)
        return out * self.target_std + self.target_mean

    def parameter_groups(self, lr_encoder: float, lr_head: float) -> list[dict]:
        """Adam groups: encoder (without its unused projection head) and task head, with their own rates."""
        groups = [{"params": list(self.head.parameters()), "lr": lr_head}]
        if not self.freeze_encoder:
            encoder = [p for name, p in self.encoder.named_parameters() if not name.startswith("head.")]
            groups.insert(0, {"params": encoder, "lr": lr_encoder})
        return groups

    def checkpoint(self, extra: Optional[dict] = None) -> dict:
        """Everything :func:`load_property_model` needs, plus ``extra`` run information."""
        return {"format": MODEL_FORMAT, "encoder_config": self.encoder.config.to_dict(), "tasks": self.tasks,
                "task_type": self.task_type, "smiles_column": self.smiles_column, "units": self.units,
                "freeze_encoder": self.freeze_encoder,
                "head": {"dims": [m.out_features for m in self.head.net if isinstance(m, nn.Linear)],
                         "activation": "softplus"},
                "target_mean": self.target_mean.tolist(), "target_std": self.target_std.tolist(),
                "state_dict": self.state_dict(), **(extra or {})}


def load_property_model(path: str | Path, device: str = "cpu") -> PropertyModel:
    """A fine-tuned model saved by :func:`run_finetune` (``model.pt``), in eval mode."""
    ckpt = load_checkpoint(path, map_location="cpu")
    if not isinstance(ckpt, dict) or ckpt.get("format") != MODEL_FORMAT:
        raise MolsslError(f"{path} is not a fine-tuned molssl model (expected format {MODEL_FORMAT}); "
                          "an encoder.pt from pre-training has no task head")
    model = PropertyModel(EncoderConfig(**ckpt["encoder_config"]), ckpt["tasks"], ckpt["task_type"],
                          ckpt.get("smiles_column", "smiles"), ckpt.get("units"), ckpt.get("freeze_encoder", False))
    model.load_state_dict(ckpt["state_dict"])
    model.meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model.to(resolve_device(device)).eval()


@torch.no_grad()
def predict_batches(model: PropertyModel, batches: Iterable[GraphBatch]) -> np.ndarray:
    """Stacked :meth:`PropertyModel.predict_batch` outputs (n, n_tasks) over ``batches``, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    out = [model.predict_batch(move_to(b, device)).cpu().numpy() for b in batches]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(model.tasks)))


def predict(model: PropertyModel, smiles: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predictions (n, n_tasks), valid mask (n,)) for a list of SMILES; invalid ones get NaN rows.

    Classification predictions are probabilities of class 1; regression ones are in target units.
    """
    graphs = [graph for graph, _ in smiles_to_graphs(smiles)]
    valid = np.array([g is not None for g in graphs], dtype=bool)
    arrays = graphs_to_arrays([g for g in graphs if g is not None])
    n = len(arrays)
    values = predict_batches(model, (arrays.gather(np.arange(i, min(i + batch_size, n)))
                                     for i in range(0, n, batch_size)))
    out = np.full((len(smiles), len(model.tasks)), np.nan)
    out[valid] = values
    return out, valid


# --------------------------------------------------------------------------- training
def masked_loss(out: Tensor, target: Tensor, task_type: str, metric: str) -> Tensor:
    """Mean loss over the labelled entries only (``target`` is NaN where a label is missing)."""
    mask = ~torch.isnan(target)
    filled = torch.where(mask, target, torch.zeros_like(target))
    if task_type == "classification":
        each = F.binary_cross_entropy_with_logits(out, filled, reduction="none")
    elif metric == "mae":
        each = (out - filled).abs()
    else:
        each = (out - filled) ** 2
    return (each * mask).sum() / mask.sum().clamp(min=1)


@dataclass
class ModelResult:
    """Scores of one trained model (one group, one seed)."""

    valid: float
    test: float
    best_epoch: int
    test_per_task: dict
    seconds: float


def _batches(data: TaskData, positions: np.ndarray, batch_size: int, shuffle: bool, seed: int,
             pin: bool) -> StoreBatches:
    batch_size = min(batch_size, positions.size)
    # MolCLR keeps the last partial batch; one of a single graph would break BatchNorm, so it is dropped
    drop_last = shuffle and positions.size % batch_size == 1
    return StoreBatches(data.store, positions, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                        pin_memory=pin, rank=0, world_size=1)


def train_model(data: TaskData, group: TaskGroup, split: Split, seed: int, config: FinetuneConfig,
                encoder_config: EncoderConfig, pretrained_state: Optional[dict], out_dir: Path,
                log: Callable[[str], None] = print) -> ModelResult:
    """Train one model with per-epoch validation; keep and save the best-validation weights."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    labels = data.labels[:, group.task_index]
    for part in ("valid", "test"):
        try:
            score(data.metric, labels[getattr(split, part)], labels[getattr(split, part)])
        except ValueError as exc:
            raise MolsslError(f"{data.name}/{group.name}: the {part} split cannot be scored ({exc}); "
                              "try another --split") from exc
    seed_everything(seed)
    model = PropertyModel(encoder_config, [data.tasks[j] for j in group.task_index], data.task_type,
                          data.smiles_column, config.units, config.freeze_encoder)
    if pretrained_state is not None:
        model.encoder.load_state_dict(pretrained_state)
    if data.task_type == "regression":
        train_labels = labels[split.train]
        mean = np.nanmean(train_labels, axis=0)
        std = np.nanstd(train_labels, axis=0)
        model.target_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.target_std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameter_groups(config.lr_encoder, config.lr_head),
                                 weight_decay=config.weight_decay)
    label_table = torch.as_tensor(labels, dtype=torch.float32)
    pin = device.type == "cuda"
    train = _batches(data, split.train, config.batch_size, True, seed, pin)
    valid = _batches(data, split.valid, 256, False, seed, pin)
    higher = HIGHER_IS_BETTER[data.metric]
    best = (-np.inf if higher else np.inf, -1, None)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "history.jsonl", "w", encoding="utf-8") as history:
        for epoch in range(config.epochs):
            model.train()
            total, count = 0.0, 0
            for batch in train.batches(epoch):
                target = label_table[batch.index].to(device)
                if data.task_type == "regression":
                    target = (target - model.target_mean) / model.target_std
                batch = move_to(batch, device)
                loss = masked_loss(model(batch), target, data.task_type, data.metric)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * batch.num_graphs
                count += batch.num_graphs
            valid_score = score(data.metric, labels[split.valid], predict_batches(model, valid.batches(0)))
            history.write(json.dumps({"epoch": epoch, "train_loss": total / max(count, 1),
                                      f"valid_{data.metric}": valid_score}) + "\n")
            history.flush()
            if (valid_score > best[0]) if higher else (valid_score < best[0]):
                best = (valid_score, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    test_batches = _batches(data, split.test, 256, False, seed, pin).batches(0)
    test_preds = predict_batches(model, test_batches)
    test = score(data.metric, labels[split.test], test_preds)
    per_task = task_scores(data.metric, labels[split.test], test_preds)
    result = ModelResult(valid=float(best[0]), test=float(test), best_epoch=best[1],
                         test_per_task={model.tasks[j]: _float_or_none(v) for j, v in enumerate(per_task)},
                         seconds=time.perf_counter() - started)
    atomic_save(model.checkpoint({"dataset": data.name, "metric": data.metric, "protocol": config.protocol,
                                  "split": config.split, "seed": seed, "best_epoch": result.best_epoch,
                                  "valid_score": result.valid, "test_score": result.test,
                                  "pretrained": config.pretrained}), out_dir / MODEL_FILE)
    log(f"  {data.name}/{group.name} seed {seed}: best epoch {result.best_epoch + 1}/{config.epochs}, "
        f"valid {data.metric} {result.valid:.4f}, test {result.test:.4f} ({result.seconds:.0f} s)")
    return result


def _float_or_none(value: float) -> Optional[float]:
    return None if np.isnan(value) else float(value)


def rf_model(data: TaskData, group: TaskGroup, split: Split, seed: int) -> ModelResult:
    """The RF-on-ECFP4 baseline (:mod:`molssl.chem.tasks.baselines`) on exactly the same molecules and split."""
    started = time.perf_counter()
    positions = np.concatenate([split.train, split.valid, split.test])
    subset = MoleculeNetData(data.name, [data.smiles[i] for i in positions],
                             data.labels[np.ix_(positions, group.task_index)],
                             [data.tasks[j] for j in group.task_index], data.task_type, data.metric,
                             data.rows[positions])
    a, b = split.train.size, split.train.size + split.valid.size
    local = Split(np.arange(a), np.arange(a, b), np.arange(b, positions.size))
    scores = rf_ecfp_baseline(subset, local, seed=seed)
    return ModelResult(valid=scores["valid"], test=scores["test"], best_epoch=-1, test_per_task={},
                       seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- runs
def load_encoder_file(path: str | Path) -> tuple[EncoderConfig, dict]:
    """(config, state_dict) of an ``encoder.pt`` written by ``save_encoder`` or ``molssl convert``."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "encoder_config" not in ckpt or "state_dict" not in ckpt:
        raise MolsslError(f"{path} is not a molssl encoder.pt (no encoder_config/state_dict); "
                          "MolCLR's own model.pth must first go through `molssl convert molclr`")
    return EncoderConfig(**ckpt["encoder_config"]), ckpt["state_dict"]


def aggregate(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation (ddof=1; 0 for a single seed) across seeds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def run_finetune(config: FinetuneConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or fit the baseline) for every group and seed; write the run directory; return ``results``."""
    out = Path(config.out)
    if (out / "results.json").exists():
        raise MolsslError(f"{out} already holds finished results; choose another --out")
    started = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    data = load_task_data(config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    _write_invalid(out / "invalid.csv", data.invalid)
    if data.invalid:
        log(f"{data.name}: {len(data.invalid)} rows left out (listed in {out / 'invalid.csv'})")
    encoder_config, pretrained_state = replace(config.encoder), None
    if config.pretrained is not None and config.method == "finetune":
        encoder_config, pretrained_state = load_encoder_file(config.pretrained)
    encoder_config = replace(encoder_config, dropout=config.dropout)

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
            if config.method == "rf-ecfp":
                result = rf_model(data, group, split, seed)
                log(f"  {data.name}/{group.name} seed {seed}: RF-ECFP valid {result.valid:.4f}, test {result.test:.4f}")
            else:
                result = train_model(data, group, split, seed, config, encoder_config, pretrained_state, seed_dir, log)
            per_seed[seed].append(result)

    results = _summarize(config, data, groups, per_seed, encoder_config, sorted(set(splits_written)),
                         time.perf_counter() - started)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_markdown(results))
    return results


def _summarize(config: FinetuneConfig, data: TaskData, groups: list[TaskGroup], per_seed: dict,
               encoder_config: EncoderConfig, splits: list[str], seconds: float) -> dict:
    seeds = []
    for seed, models in per_seed.items():
        seeds.append({"seed": seed, "valid": float(np.mean([m.valid for m in models])),
                      "test": float(np.mean([m.test for m in models])),
                      "models": {g.name: asdict(m) for g, m in zip(groups, models)}})
    valid_mean, valid_std = aggregate([s["valid"] for s in seeds])
    test_mean, test_std = aggregate([s["test"] for s in seeds])
    return {
        "dataset": data.name, "metric": data.metric, "task_type": data.task_type, "tasks": data.tasks,
        "method": config.method if config.method == "rf-ecfp" else
        ("pretrained" if config.pretrained else "random-init") + ("-frozen" if config.freeze_encoder else ""),
        "protocol": config.protocol, "split": config.split, "split_files": splits,
        "molecules": len(data.smiles), "invalid_rows": len(data.invalid),
        "seeds": seeds, "valid_mean": valid_mean, "valid_std": valid_std,
        "mean": test_mean, "std": test_std, "std_note": "test score across seeds, sample std (ddof=1)",
        "encoder": encoder_config.to_dict() if config.method == "finetune" else None,
        "budget": {"epochs": config.epochs, "batch_size": config.batch_size,
                   "max_train_molecules": config.max_train_molecules, "seeds": list(config.seeds)},
        "seconds": seconds, "config": config.to_dict(),
    }


def format_score(metric: str, value: Optional[float], std: Optional[float] = None) -> str:
    """ROC-AUC in percent (as papers report it), RMSE/MAE as they are (4 decimals below 0.1, e.g. QM8)."""
    if value is None:
        return "-"
    scale, digits = (100.0, 1) if metric == "roc_auc" else (1.0, 3 if abs(value) >= 0.1 else 4)
    text = f"{value * scale:.{digits}f}"
    return text if std is None else f"{text} ± {std * scale:.{digits}f}"


def results_markdown(results: dict) -> str:
    """The run's results as a markdown table (one row per seed plus the mean)."""
    metric = results["metric"]
    unit = "ROC-AUC %" if metric == "roc_auc" else metric.upper()
    lines = [f"# {results['dataset']}: {results['method']} ({results['protocol']}, {results['split']} split)", "",
             f"| seed | valid {unit} | test {unit} |", "|---|---|---|"]
    for seed in results["seeds"]:
        lines.append(f"| {seed['seed']} | {format_score(metric, seed['valid'])} | {format_score(metric, seed['test'])} |")
    lines.append(f"| mean ± std | {format_score(metric, results['valid_mean'], results['valid_std'])} | "
                 f"{format_score(metric, results['mean'], results['std'])} |")
    budget = results["budget"]
    lines += ["", f"{results['molecules']} molecules ({results['invalid_rows']} rows left out), "
              f"{budget['epochs']} epochs, batch {budget['batch_size']}, "
              f"max train molecules {budget['max_train_molecules'] or 'all'}; std is ddof=1 across seeds.", ""]
    return "\n".join(lines)


def _write_invalid(path: Path, invalid: list[tuple[int, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "smiles", "reason"])
        writer.writerows(invalid)
