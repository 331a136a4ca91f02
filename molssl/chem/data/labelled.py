"""Molecules with labels: the one type fine-tuning, baselines and evaluation use, read in one pass.

A labelled file (a MoleculeNet set or your own CSV) goes through the store once: graphs, SMILES
text, label columns, row/line numbers and the requested extras (scaffold keys, fingerprints,
descriptors) come out of the same read and the same RDKit parse. Rows that cannot be featurized
are left out and listed in ``invalid`` with their reasons, never silently dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from molssl.chem.data.datasets import TaskType, check_local_copy, get_spec, resolve
from molssl.chem.data.inputs import read_header
from molssl.chem.data.labels import check_class_labels
from molssl.chem.data.store import MoleculeStore, build_store
from molssl.errors import InputFileError, MolsslError

TASK_TYPES = ("classification", "regression")
METRICS = {"classification": ("roc_auc",), "regression": ("rmse", "mae")}


@dataclass
class LabelledData:
    """The featurized molecules of one file with their labels, in store order.

    ``labels`` (n, n_tasks) has NaN for missing labels; ``rows[i]`` is molecule i's 0-based data row
    in the input file; ``invalid`` lists (data row, SMILES, reason) of the rows left out.
    """

    name: str
    source: Path
    smiles_column: str
    store: MoleculeStore
    tasks: list[str]
    task_type: str
    metric: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.store)

    @cached_property
    def labels(self) -> np.ndarray:
        return np.array(self.store.labels, dtype=np.float64)

    @cached_property
    def rows(self) -> np.ndarray:
        return np.array(self.store.rows, dtype=np.int64)

    @cached_property
    def smiles(self) -> list[str]:
        return self.store.smiles()

    @cached_property
    def invalid(self) -> list[tuple[int, str, str]]:
        return [(line - 2, smiles, reason) for line, smiles, reason in self.store.rejected()]

    def scaffold_keys(self, chiral: bool = False) -> np.ndarray:
        """One 64-bit key per molecule (equal keys = same Bemis-Murcko scaffold)."""
        return np.asarray(self.store.extra("scaffold_chiral" if chiral else "scaffold"))[:, 0]


def check_task(task: Optional[str], metric: Optional[str]) -> str:
    """The metric for ``task`` (default: ROC-AUC / RMSE), or a clear error for a mismatch."""
    if task not in TASK_TYPES:
        raise MolsslError(f"task must be 'classification' or 'regression', not {task!r}")
    metric = metric or METRICS[task][0]
    if metric not in METRICS[task]:
        raise MolsslError(f"metric {metric!r} does not fit a {task} task; use one of {METRICS[task]}")
    return metric


def load_labelled(
    *,
    dataset: Optional[str] = None,
    csv: Optional[str | os.PathLike] = None,
    smiles_column: Optional[str] = None,
    targets: Optional[Sequence[str]] = None,
    task: Optional[str] = None,
    metric: Optional[str] = None,
    data_dir: Optional[str | os.PathLike] = None,
    download: bool = True,
    featurizer: str = "molclr",
    extras: Sequence[str] = ("scaffold",),
    cache_dir: Optional[str | os.PathLike] = None,
    workers: Optional[int] = 1,
    progress: bool = True,
) -> LabelledData:
    """A MoleculeNet ``dataset`` or your own ``csv`` (with ``targets`` and ``task``) as :class:`LabelledData`."""
    if (dataset is None) == (csv is None):
        raise MolsslError("give either a MoleculeNet data set or a CSV file, not both or neither")
    if dataset is not None:
        spec = get_spec(dataset)
        path = resolve(spec.name, data_dir, download=download)
        check_local_copy(path, spec)
        name, column, task, metric = spec.name, spec.smiles_column, spec.task_type, spec.metric
        tasks = list(spec.tasks) if spec.tasks is not None else None
    else:
        metric = check_task(task, metric)
        path = Path(csv).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no file at {path}")
        name, column = Path(path.name.removesuffix(".gz")).stem, smiles_column
        tasks = list(targets or [])
        if not tasks:
            raise MolsslError(f"{path}: give at least one label column (--targets)")
    if tasks is None:  # ToxCast: every column but the SMILES one
        tasks = [c for c in read_header(path) if c != column]
    store = build_store(path, smiles_column=column, extras=extras, featurizer=featurizer, label_columns=tasks,
                        cache_dir=cache_dir, workers=workers, progress=progress)
    column = store.meta["smiles_column"]
    if task == "classification":
        check_class_labels(np.asarray(store.labels), tasks, np.asarray(store.lines), str(path))
    if len(store) == 0:
        raise InputFileError(f"{path}: no row holds a SMILES that can be featurized")
    return LabelledData(name=name, source=path, smiles_column=column, store=store, tasks=tasks, task_type=task,
                        metric=metric)


def load_dataset(name: str, data_dir: Optional[str | os.PathLike] = None, download: bool = True, **kwargs):
    """MoleculeNet data set ``name`` as :class:`~molssl.chem.data.labelled.LabelledData` (see :data:`REGISTRY`).

    Molecules RDKit cannot featurize are left out and listed in ``.invalid`` (MolCLR drops them too).
    A local file whose checksum differs from the registry's is loaded with a warning.
    """
    return load_labelled(dataset=name, data_dir=data_dir, download=download, **kwargs)


def load_csv(path: str | os.PathLike, smiles_column: str, targets: Sequence[str] | str, task: TaskType,
             metric: Optional[str] = None, **kwargs):
    """Your own CSV (plain or gzip) with a SMILES column and label columns, as ``LabelledData``.

    ``task`` is "classification" (labels 0/1, metric ROC-AUC) or "regression" (metric RMSE unless
    ``metric`` says "mae"). Empty cells and NA-like tokens are missing labels (NaN).
    """
    targets = [targets] if isinstance(targets, str) else list(targets)
    return load_labelled(csv=path, smiles_column=smiles_column, targets=targets, task=task, metric=metric, **kwargs)
