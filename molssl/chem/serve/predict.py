"""Property prediction with fine-tuned models and ensembles: SMILES in, one table row per input out.

Small inputs are featurized in memory (:class:`SmilesBatches`, no disk store); files with more
than :data:`IN_MEMORY_LIMIT` rows go through the cached, parallel :func:`~molssl.chem.data.store.build_store`.
Either way the molecules are batched by the same ``gather`` used in training, every input row
is kept in order, and rows that cannot be featurized get a ``status`` saying why.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from molssl.chem.data.batch import GraphBatch
from molssl.chem.tasks.finetune import PropertyModel, load_property_model
from molssl.chem.data.inputs import SMILES_COLUMN_CANDIDATES, SmilesChunk, iter_smiles, open_text, resolve_smiles_column
from molssl.chem.tasks.metrics import score
from molssl.chem.data.store import GraphArrays, MoleculeStore, build_store
from molssl.chem.data.store import parallel_featurize
from molssl.core.device import move_to, resolve_device
from molssl.errors import InputFileError, MolsslError

IN_MEMORY_LIMIT = 20_000
PROGRESS_MIN_MOLECULES = 2_000
STATUS_COLUMN = "status"
OK = "ok"


# --------------------------------------------------------------------------- featurized inputs
class SmilesBatches:
    """Batches of featurized molecules with their input rows, from SMILES in memory or a store.

    Iterating yields ``(rows, GraphBatch)`` for the valid molecules in input order; ``status``
    (one entry per input: ``"ok"`` or ``"invalid: <reason>"``) is complete once iteration ends.
    From a list, SMILES are featurized chunk by chunk, in ``workers`` processes when above 1 (so
    featurizing the next chunk overlaps with the model working on this one); no disk store.
    """

    def __init__(self, smiles: Sequence[str], batch_size: int = 256, workers: int = 1,
                 chunk_size: Optional[int] = None, progress: Optional[bool] = None, desc: str = "predicting") -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.smiles = list(smiles)
        # one batch per chunk: the model starts after the first batch is featurized, not after a big chunk
        self.batch_size, self.workers, self.chunk_size = batch_size, workers, chunk_size or batch_size
        self.status = [OK] * len(self.smiles)
        self.progress = len(self.smiles) >= PROGRESS_MIN_MOLECULES if progress is None else progress
        self.desc = desc
        self._store: Optional[MoleculeStore] = None

    @classmethod
    def from_store(cls, store: MoleculeStore, status: list[str], batch_size: int = 256,
                   progress: Optional[bool] = None, desc: str = "predicting") -> "SmilesBatches":
        """Batches over an already featurized store (``status`` covers every input row)."""
        out = cls([], batch_size, progress=progress, desc=desc)
        out.status, out._store = status, store
        out.progress = len(status) >= PROGRESS_MIN_MOLECULES if progress is None else progress
        return out

    def __len__(self) -> int:
        return len(self.status)

    def _chunks(self) -> Iterator[tuple[np.ndarray, GraphArrays]]:
        if self._store is not None:
            yield np.asarray(self._store.rows, dtype=np.int64), self._store.graphs
            return
        chunks = (SmilesChunk(list(range(i, min(i + self.chunk_size, len(self.smiles)))),
                              list(range(i, min(i + self.chunk_size, len(self.smiles)))),
                              self.smiles[i:i + self.chunk_size])
                  for i in range(0, len(self.smiles), self.chunk_size))
        for result in parallel_featurize(chunks, (), self.workers):
            for row, _smiles, reason in result.rejected:
                self.status[row] = f"invalid: {reason}"
            yield result.rows, result.graphs

    def __iter__(self) -> Iterator[tuple[np.ndarray, GraphBatch]]:
        with tqdm(total=len(self.status), desc=self.desc, unit=" mol", disable=not self.progress,
                  dynamic_ncols=True, leave=False) as bar:
            for rows, graphs in self._chunks():
                for start in range(0, rows.size, self.batch_size):
                    index = np.arange(start, min(start + self.batch_size, rows.size))
                    yield rows[index], graphs.gather(index)
                    bar.update(index.size)


def file_batches(path: Optional[Path], smiles_column: Optional[str], smiles: list[str], batch_size: int = 256,
                 workers: Optional[int] = None, cache_dir: Optional[str] = None,
                 progress: Optional[bool] = None, desc: str = "predicting") -> SmilesBatches:
    """Batches of a file's molecules: in memory up to :data:`IN_MEMORY_LIMIT` rows, else via the cached store."""
    if len(smiles) <= IN_MEMORY_LIMIT or path is None:
        return SmilesBatches(smiles, batch_size, workers=workers or 1, progress=progress, desc=desc)
    store = build_store(path, smiles_column=smiles_column, cache_dir=cache_dir, workers=workers,
                        progress=progress is not False)
    status = [OK] * len(smiles)
    line_to_row = {line: row for chunk in iter_smiles(path, smiles_column)
                   for line, row in zip(chunk.lines, chunk.rows)}
    for line, _smiles, reason in store.rejected():
        status[line_to_row[line]] = f"invalid: {reason}"
    return SmilesBatches.from_store(store, status, batch_size, progress, desc)


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with ``threads`` intra-op CPU threads (unchanged when ``None``)."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- ensembles
class PropertyEnsemble:
    """Fine-tuned models whose predictions are averaged per task (std over members = uncertainty).

    Members may cover different tasks (a per-target run holds one model per target and seed); a
    task's prediction is the mean over the members that predict it.
    """

    def __init__(self, name: str, members: Sequence[PropertyModel], task_labels: Optional[dict] = None,
                 units: Optional[str] = None) -> None:
        if not members:
            raise MolsslError(f"model {name!r} has no members")
        kinds = {m.task_type for m in members}
        if len(kinds) > 1:
            raise MolsslError(f"model {name!r} mixes classification and regression members")
        self.name = name
        self.members = list(members)
        self.task_type = kinds.pop()
        self.tasks: list[str] = []
        for member in self.members:
            self.tasks += [t for t in member.tasks if t not in self.tasks]
        self._columns = [torch.as_tensor([self.tasks.index(t) for t in m.tasks]) for m in self.members]
        self.task_labels = dict(task_labels or {})
        self.units = units if units is not None else next((m.units for m in self.members if m.units), None)

    @property
    def n_members(self) -> int:
        """Members per task (the largest count; an ensemble when above 1)."""
        counts = np.zeros(len(self.tasks), dtype=int)
        for columns in self._columns:
            counts[columns.numpy()] += 1
        return int(counts.max())

    def to(self, device: torch.device) -> "PropertyEnsemble":
        self.members = [m.to(device).eval() for m in self.members]
        return self

    @torch.no_grad()
    def predict_batch(self, batch: GraphBatch) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members, each (num_graphs, n_tasks); std is 0 where one member predicts."""
        total = torch.zeros(batch.num_graphs, len(self.tasks), dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = torch.zeros(len(self.tasks), dtype=torch.float64)
        for member, columns in zip(self.members, self._columns):
            out = member.predict_batch(batch).double().cpu()
            total[:, columns] += out
            squares[:, columns] += out ** 2
            count[columns] += 1
        mean = total / count
        var = (squares / count - mean ** 2).clamp(min=0)
        return mean.numpy(), var.sqrt().numpy()

    def column(self, task: str, std: bool = False) -> str:
        """Output column name, e.g. ``esol:logS [log10(mol/L)]`` or ``bbbp:P(BBB+) std``."""
        label = self.task_labels.get(task, task)
        units = f" [{self.units}]" if self.units and self.task_type == "regression" else ""
        return f"{self.name}:{label}{' std' if std else ''}{units}"


def load_model(model: str | Path, device: str = "cpu") -> PropertyEnsemble:
    """A shipped model by name (``molssl models``), a ``model.pt``, or a ``molssl finetune`` run directory.

    A run directory gives an ensemble of all its models (every seed, every target).
    """
    from molssl.chem.serve import zoo

    text = str(model)
    if zoo.is_shipped(text):
        card, members = zoo.load_shipped_members(text)
        ensemble = PropertyEnsemble(card.name, members, card.task_labels, card.units)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            files = zoo.run_member_files(path)
            ensemble = PropertyEnsemble(path.name, [load_property_model(p) for p in files])
        elif path.is_file():
            member = load_property_model(path)
            name = member.meta.get("dataset") or path.parent.name or path.stem
            ensemble = PropertyEnsemble(str(name), [member])
        else:
            zoo.model_folder(text)  # raises: names the shipped models
            raise AssertionError("unreachable")
    return ensemble.to(resolve_device(device))


# --------------------------------------------------------------------------- prediction
class Predictor:
    """Predicts with one or more models into one table (see :meth:`predict_smiles`, :meth:`predict_file`)."""

    def __init__(self, models: Sequence[str | Path | PropertyEnsemble], batch_size: int = 256,
                 device: str = "cpu", threads: Optional[int] = None, workers: int = 1,
                 progress: Optional[bool] = None) -> None:
        if not models:
            raise MolsslError("give at least one model")
        if batch_size < 1:
            raise MolsslError(f"batch size must be positive, got {batch_size}")
        self.device = resolve_device(device)
        self.models = [m.to(self.device) if isinstance(m, PropertyEnsemble) else load_model(m, device)
                       for m in models]
        names = [m.name for m in self.models]
        if len(set(names)) < len(names):
            raise MolsslError(f"two models have the same name ({', '.join(names)}); their columns would collide")
        self.batch_size = batch_size
        self.threads = threads
        self.workers = workers
        self.progress = progress

    def columns(self) -> list[str]:
        """The prediction columns, in table order (each task, then its std for ensembles)."""
        out = []
        for model in self.models:
            for task in model.tasks:
                out.append(model.column(task))
                if model.n_members > 1:
                    out.append(model.column(task, std=True))
        return out

    def predict_batches(self, batches: SmilesBatches) -> pd.DataFrame:
        """Prediction columns plus ``status`` for every input row (NaN predictions on invalid rows)."""
        values = {c: np.full(len(batches), np.nan) for c in self.columns()}
        with torch_threads(self.threads):
            for rows, batch in batches:
                batch = move_to(batch, self.device)
                for model in self.models:
                    mean, std = model.predict_batch(batch)
                    for j, task in enumerate(model.tasks):
                        values[model.column(task)][rows] = mean[:, j]
                        if model.n_members > 1:
                            values[model.column(task, std=True)][rows] = std[:, j]
        table = pd.DataFrame(values)
        table[STATUS_COLUMN] = batches.status
        return table

    def predict_smiles(self, smiles: Sequence[str] | str) -> pd.DataFrame:
        """Table with a ``smiles`` column, the predictions and ``status``, one row per input."""
        smiles = [smiles] if isinstance(smiles, str) else list(smiles)
        table = self.predict_batches(SmilesBatches(smiles, self.batch_size, self.workers, progress=self.progress))
        table.insert(0, "smiles", smiles)
        return table

    def predict_file(self, path: str | Path, smiles_column: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> pd.DataFrame:
        """Every column of a CSV (or SMILES and name of a .smi file), then predictions and ``status``."""
        path = Path(path)
        column = resolve_smiles_column(path, smiles_column)
        table = read_input_table(path, column)
        batches = file_batches(path, column, table[column or "smiles"].tolist(), self.batch_size, self.workers,
                               cache_dir, self.progress)
        predictions = self.predict_batches(batches)
        clash = [c for c in predictions.columns if c in table.columns]
        if clash:
            raise InputFileError(f"{path} already has column(s) {', '.join(clash)}; rename them first")
        return pd.concat([table.reset_index(drop=True), predictions], axis=1)


def read_input_table(path: Path, smiles_column: Optional[str]) -> pd.DataFrame:
    """The input as a table of strings, one row per molecule row of the featurizer.

    CSV: all columns, blank lines kept as rows (like :func:`~molssl.chem.data.inputs.iter_smiles`).
    SMILES files: ``smiles`` and ``name`` (the rest of the line, often a name or ID).
    """
    if smiles_column is not None:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputFileError(f"cannot read {path}: {exc}") from exc
    wanted = {line for chunk in iter_smiles(path) for line in chunk.lines}
    smiles, names = [], []
    with open_text(path) as handle:
        for line_number, text in enumerate(handle, start=1):
            if line_number in wanted:
                parts = text.split(maxsplit=1)
                smiles.append(parts[0])
                names.append(parts[1].strip() if len(parts) > 1 else "")
    return pd.DataFrame({"smiles": smiles, "name": names})


def predict(smiles: Sequence[str] | str, model: str | Path | Sequence[str | Path] = "esol",
            batch_size: int = 256, device: str = "cpu") -> pd.DataFrame:
    """``molssl.predict``: a table of predictions (one row per SMILES, invalid ones flagged in ``status``)."""
    models = [model] if isinstance(model, (str, Path)) else list(model)
    return Predictor(models, batch_size=batch_size, device=device).predict_smiles(smiles)


# --------------------------------------------------------------------------- test-split predictions
@dataclass
class TestPredictions:
    """An ensemble's predictions on a fine-tuning run's test split."""

    smiles: list[str]
    y_true: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    tasks: list[str]
    task_type: str
    metric: str
    score: float

    @property
    def n_molecules(self) -> int:
        return len(self.smiles)


def ensemble_test_predictions(run_dirs: str | Path | Sequence[str | Path], ensemble: PropertyEnsemble,
                              data_dir: Optional[str] = None) -> TestPredictions:
    """Predict the test split of ``molssl finetune`` runs and score it.

    ``run_dirs``: one run directory, or several (or a folder holding several), e.g. one run per
    seed; every ``split.json`` found must hold the same test molecules.
    """
    from molssl.chem.data.datasets import load_csv, load_dataset

    folders = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    split_files = sorted(f for d in folders for f in d.rglob("split.json"))
    if not split_files:
        raise MolsslError(f"no split.json in {', '.join(map(str, folders))}; give `molssl finetune` run directories")
    tests = {tuple(json.loads(f.read_text())["test"]) for f in split_files}
    if len(tests) > 1:
        raise MolsslError(f"the models in {', '.join(map(str, folders))} were tested on different splits (several "
                          "targets of a per-target run, or seed-dependent splits); a test plot needs one shared split")
    rows = list(tests.pop())
    config = json.loads(next(f for d in folders for f in d.rglob("config.json")).read_text())
    if config.get("dataset"):
        table = load_dataset(config["dataset"], data_dir or config.get("data_dir"))
    else:
        column = config.get("smiles_column") or _first_smiles_column(Path(config["csv"]))
        table = load_csv(config["csv"], column, config["targets"], config["task"], config.get("metric"))
    smiles = [table.smiles[r] for r in rows]
    batches = SmilesBatches(smiles, progress=False)
    mean = np.zeros((len(rows), len(ensemble.tasks)))
    std = np.zeros_like(mean)
    for index, batch in batches:
        mean[index], std[index] = ensemble.predict_batch(batch)
    if any(status != OK for status in batches.status):
        raise MolsslError(f"{folders[0]}: some test molecules can no longer be featurized")
    labels = table.labels[rows][:, [table.tasks.index(t) for t in ensemble.tasks]]
    return TestPredictions(smiles, labels, mean, std, list(ensemble.tasks), table.task_type, table.metric,
                           score(table.metric, labels, mean))


def _first_smiles_column(path: Path) -> str:
    return resolve_smiles_column(path, None) or SMILES_COLUMN_CANDIDATES[0]
