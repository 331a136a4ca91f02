"""Which models a fine-tuning run trains (one per target, or one for all) and the split each one uses.

- ``molclr-per-target``: MolCLR's protocol. One single-task model per target, trained on the
  molecules whose label for that target is present, with the split computed per target.
- ``multitask``: one model for all targets; missing labels stay NaN and are masked out of the loss
  and the metric. Molecules with no label at all are left out before splitting.

Splits come from the scaffold keys the store computed, so nothing is parsed again here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from molssl.chem.data.labelled import LabelledData
from molssl.chem.data.splits import Split, random_scaffold_split, random_split, scaffold_fold, scaffold_split
from molssl.errors import MolsslError

PROTOCOLS = ("molclr-per-target", "multitask")
SPLITS = ("scaffold", "random-scaffold", "random")
SPLIT_EXTRAS = {"scaffold": ("scaffold",), "random-scaffold": ("scaffold_chiral",), "random": ()}


@dataclass
class TaskGroup:
    """The targets one model learns and the molecules (store positions) it may use."""

    name: str
    task_index: list[int]
    positions: np.ndarray


def task_groups(data: LabelledData, protocol: str) -> list[TaskGroup]:
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


def make_split(data: LabelledData, group: TaskGroup, kind: str, seed: int) -> Split:
    """Train/valid/test store positions of ``group`` (the split is computed on its molecules only)."""
    if kind == "scaffold":
        local = scaffold_split(keys=data.scaffold_keys()[group.positions])
    elif kind == "random-scaffold":
        local = random_scaffold_split(keys=data.scaffold_keys(chiral=True)[group.positions], seed=seed)
    else:
        local = random_split(group.positions.size, seed=seed)
    return Split(*(group.positions[part] for part in local))


def fold_of(data: LabelledData, group: TaskGroup, split: Split, folds: int, fold: int,
            acyclic: str = "together") -> Split:
    """``split`` with its validation part replaced by scaffold fold ``fold`` of its training + validation molecules
    (:func:`~molssl.chem.data.splits.scaffold_fold`, ``acyclic`` as there); a group with too few scaffolds is a user error, not a crash."""
    try:
        return scaffold_fold(split, data.scaffold_keys(), folds, fold, acyclic)
    except ValueError as error:
        raise MolsslError(f"{data.name}, {group.name}: --folds {folds}: {error}") from None


def cap_training_set(split: Split, limit: Optional[int], seed: int) -> Split:
    """Keep at most ``limit`` training molecules (a seeded random subset; valid and test unchanged)."""
    if limit is None or split.train.size <= limit:
        return split
    keep = np.sort(np.random.default_rng(seed).choice(split.train, size=limit, replace=False))
    return split._replace(train=keep)


def split_to_rows(data: LabelledData, split: Split) -> dict[str, list[int]]:
    """``split.json`` content: 0-based data rows of the input file."""
    return {part: data.rows[getattr(split, part)].tolist() for part in ("train", "valid", "test")}
