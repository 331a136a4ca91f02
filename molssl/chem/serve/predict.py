"""Property prediction with fine-tuned models and ensembles: molecules in, one table row per input out.

Inputs are handled in chunks (:class:`~molssl.chem.data.inputs.MoleculeChunk`): each chunk is
featurized (in ``n_jobs`` processes when above 1) by the same featurizer and ``gather`` used in
training, predicted, and handed on, so memory stays flat and output can be written as it comes
(:mod:`molssl.chem.serve.outputs`). Every input row is kept in order; a row that cannot be
predicted gets a ``status`` saying why (``invalid: ...``), including a prediction that is not a
finite number. Models trained with different featurizers (or molecule features) each get the
inputs featurized their way. Beside each prediction: the ensemble spread (``_std``), conformal
interval bounds for regression (``_lower``/``_upper``), calibrated probabilities for
classification (:mod:`~molssl.chem.serve.uncertainty`) and the applicability domain
(:mod:`~molssl.chem.serve.domain`), for models whose files carry the data.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import pandas as pd

from molssl.chem.data.featurize import parse_many
from molssl.chem.data.inputs import MoleculeChunk, MoleculeReader
from molssl.chem.data.objects import molecules_chunk, split_chunk
from molssl.chem.data.sources import OK, SmilesBatches
from molssl.chem.serve.domain import describe
from molssl.chem.serve.ensemble import PropertyEnsemble, load_ensemble
from molssl.chem.serve.uncertainty import ConformalIntervals, PlattScaling, check_coverage
from molssl.core.device import autocast, move_to, resolve_device, torch_threads
from molssl.core.precision import resolve_precision
from molssl.errors import InputFileError, MolsslError

STATUS_COLUMN = "status"
DEFAULT_COVERAGE = 0.9
CHUNK_ROWS = 4096
load_model = load_ensemble  # the public name: ``molssl.load_model``
DOMAIN_COLUMNS = {
    "nearest_similarity": "largest ECFP4 Tanimoto similarity to a training molecule",
    "in_domain": "applicability domain: similarity >= threshold, atoms seen in training, descriptors in training range",
    "nearest_smiles": "SMILES of the most similar training molecule",
    "nearest_row": "0-based data row of that molecule in the model's training file",
    "domain_note": "why a molecule is out of the domain (empty when in)",
}


class Predictor:
    """Predicts with one or more models into one table (:meth:`predict`, :meth:`predict_chunk`).

    ``coverage``: conformal interval of regression models (None: no interval columns); ``domain``:
    add applicability-domain columns; ``nearest``: also the nearest training molecule's SMILES and
    row; ``n_jobs``: featurization processes; ``threads``: torch CPU threads; ``precision``: ``fp32`` (the
    Python default: the same numbers on every machine), ``bf16`` or ``auto`` (bf16 where the CPU has AMX or
    on CUDA, as :func:`molssl.core.precision.resolve_precision` decides; the CLI's default); ``log``: where
    ``auto``'s choice is reported (the CLI's stderr), after the models have loaded.
    """

    def __init__(self, models: Sequence[str | Path | PropertyEnsemble], batch_size: int = 256,
                 device: str = "cpu", threads: Optional[int] = None, n_jobs: int = 1,
                 progress: Optional[bool] = None, coverage: Optional[float] = DEFAULT_COVERAGE, domain: bool = True,
                 nearest: bool = False, workers: Optional[int] = None, precision: str = "fp32",
                 log: Optional[Callable[[str], None]] = None) -> None:
        if isinstance(models, (str, Path, PropertyEnsemble)):
            models = [models]
        if not models:
            raise MolsslError("give at least one model")
        if batch_size < 1:
            raise MolsslError(f"batch size must be positive, got {batch_size}")
        if workers is not None:
            warnings.warn("workers= is now n_jobs= (scikit-learn's name)", DeprecationWarning, stacklevel=2)
            n_jobs = workers
        if n_jobs < 1:
            raise MolsslError(f"n_jobs (featurization processes) must be at least 1, got {n_jobs}")
        self.coverage = check_coverage(coverage) if coverage is not None else None
        self.device = resolve_device(device)
        self.models = [m.to(self.device) if isinstance(m, PropertyEnsemble) else load_ensemble(m, device)
                       for m in models]
        self.precision = resolve_precision(precision, self.device, log=log)  # after the models: a missing one first
        names = [m.name for m in self.models]
        if len(set(names)) < len(names):
            raise MolsslError(f"two models have the same name ({', '.join(names)}); their columns would collide")
        self.batch_size, self.threads, self.n_jobs, self.progress = batch_size, threads, n_jobs, progress
        self.domain, self.nearest = domain, nearest
        columns = self.columns()
        if len(set(columns)) < len(columns):
            raise MolsslError(f"the models {', '.join(names)} would write columns of the same name; rename a run folder")
        self.notes = [note for model in self.models for note in self._notes(model)]

    def _notes(self, model: PropertyEnsemble) -> list[str]:
        notes = []
        if model.calibration is None:
            what = "interval" if model.task_type == "regression" else "probability calibration"
            notes.append(f"{model.name}: its model file(s) hold no validation record (made before molssl recorded "
                         f"one): no {what}")
        if self.domain and model.domain is None:
            notes.append(f"{model.name}: its model file(s) hold no training fingerprints: no applicability-domain columns")
        return notes

    def _intervals(self, model: PropertyEnsemble) -> bool:
        return self.coverage is not None and isinstance(model.calibration, ConformalIntervals)

    def _has_domain(self, model: PropertyEnsemble) -> bool:
        return self.domain and model.domain is not None

    def column_info(self) -> dict[str, dict]:
        """Every prediction column in table order, with what it holds (model, task, kind, units, coverage)."""
        out: dict[str, dict] = {}
        for model in self.models:
            for task in model.tasks:
                base = {"model": model.name, "task": task, "label": model.task_labels.get(task, task)}
                units = model.units if model.task_type == "regression" else "probability"
                kinds = [("", "prediction"), ("std", "std over ensemble members")][:2 if model.n_members > 1 else 1]
                if self._intervals(model):
                    kinds += [("lower", f"lower bound, {self.coverage:g} conformal interval"),
                              ("upper", f"upper bound, {self.coverage:g} conformal interval")]
                for suffix, kind in kinds:
                    calibrated = model.task_type == "classification" and suffix == "" and model.calibration is not None
                    out[model.column(task, suffix)] = {**base, "kind": kind + (" (Platt-calibrated)" if calibrated else ""),
                                                       "units": units}
            if self._has_domain(model):
                kinds = [k for k in DOMAIN_COLUMNS if self.nearest or not k.startswith("nearest_") or
                         k == "nearest_similarity"]
                for kind in kinds:
                    out[model.domain_column(kind)] = {"model": model.name, "kind": DOMAIN_COLUMNS[kind]}
        return out

    def columns(self) -> list[str]:
        """The prediction columns, in table order (before ``status``)."""
        return list(self.column_info())

    def summary(self) -> list[dict]:
        """What each model is and how its uncertainty and domain are computed (for sidecar files)."""
        out = []
        for model in self.models:
            entry = {"name": model.name, "tasks": model.tasks, "task_type": model.task_type, "units": model.units,
                     "members": model.n_members}
            if model.calibration is not None:
                entry["calibration"] = {"method": model.calibration.method,
                                        "per_task": model.calibration.describe(self.coverage or DEFAULT_COVERAGE)}
            if self._has_domain(model):
                entry["domain"] = model.domain.summary()
            out.append(entry)
        return out

    def _groups(self) -> dict[str, tuple[list[PropertyEnsemble], tuple[str, ...]]]:
        """Models by featurizer, with the union of the molecule features they need."""
        groups: dict[str, tuple[list[PropertyEnsemble], tuple[str, ...]]] = {}
        for model in self.models:
            members, features = groups.get(model.featurizer, ([], ()))
            groups[model.featurizer] = (members + [model], tuple(sorted(set(features) | set(model.features))))
        return groups

    def predict_chunk(self, chunk: MoleculeChunk) -> pd.DataFrame:
        """Prediction columns and ``status`` for the rows of ``chunk`` (same index as ``chunk.table``)."""
        n = len(chunk)
        status = [f"invalid: {chunk.reasons[i]}" if chunk.reasons and i in chunk.reasons else OK for i in range(n)]
        raw = {m.name: (np.full((n, len(m.tasks)), np.nan), np.full((n, len(m.tasks)), np.nan)) for m in self.models}
        with torch_threads(self.threads):
            for featurizer, (models, features) in self._groups().items():
                batches = SmilesBatches(chunk.smiles, self.batch_size, self.n_jobs, progress=False,
                                        featurizer=featurizer, features=features)
                for rows, batch in batches:
                    batch = move_to(batch, self.device)
                    with autocast(self.device, self.precision):
                        for model in models:
                            raw[model.name][0][rows], raw[model.name][1][rows] = model.predict_batch(batch)
                status = [a if a != OK else b for a, b in zip(status, batches.status)]
            ok = np.array([s == OK for s in status], dtype=bool)
            molecules = describe(_molecules(chunk, ok)) if any(self._has_domain(m) for m in self.models) else None
            columns: dict[str, Any] = {}
            for model in self.models:
                mean, std = raw[model.name]
                bad = ok & ~np.isfinite(np.concatenate([mean, std], axis=1)).all(axis=1)
                for i in np.flatnonzero(bad):
                    status[i] = f"invalid: non-finite prediction from model {model.name}"
                mean[~ok | bad], std[~ok | bad] = np.nan, np.nan
                columns.update(self._model_columns(model, mean, std))
                if self._has_domain(model):
                    columns.update(self._domain_columns(model, molecules))
        table = pd.DataFrame(columns, index=chunk.table.index)
        table[STATUS_COLUMN] = status
        return table

    def _model_columns(self, model: PropertyEnsemble, mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
        if isinstance(model.calibration, PlattScaling):
            mean = np.where(np.isnan(mean), np.nan, model.calibration.apply(mean))
        half = model.calibration.half_width(std, self.coverage) if self._intervals(model) else None
        out = {}
        for j, task in enumerate(model.tasks):
            out[model.column(task)] = mean[:, j]
            if model.n_members > 1:
                out[model.column(task, "std")] = std[:, j]
            if half is not None:
                out[model.column(task, "lower")] = mean[:, j] - half[:, j]
                out[model.column(task, "upper")] = mean[:, j] + half[:, j]
        return out

    def _domain_columns(self, model: PropertyEnsemble, molecules) -> dict[str, Any]:
        found = model.domain.assess(molecules)
        valid = molecules.valid
        out: dict[str, Any] = {model.domain_column("nearest_similarity"): found.similarity.astype(np.float64),
                               model.domain_column("in_domain"): pd.array(np.where(valid, found.in_domain, None),
                                                                          dtype="boolean")}
        if self.nearest:
            out[model.domain_column("nearest_smiles")] = [model.domain.smiles[i] if v else "" for i, v in
                                                          zip(found.index, valid)]
            out[model.domain_column("nearest_row")] = pd.array(np.where(valid, model.domain.rows[found.index], None),
                                                               dtype="Int64")
        out[model.domain_column("domain_note")] = found.notes
        return out

    def stream(self, chunks: Iterable[MoleculeChunk]) -> Iterator[tuple[MoleculeChunk, pd.DataFrame]]:
        """(chunk, its input columns + predictions + status) for each chunk, refusing a column clash first."""
        for chunk in chunks:
            self.check_clash(list(chunk.table.columns), "the input")
            yield chunk, self.join(chunk.table, self.predict_chunk(chunk))

    def check_clash(self, input_columns: Sequence, source: object) -> None:
        """A clear error when the input already has a column the predictions would add."""
        clash = [c for c in [*self.columns(), STATUS_COLUMN] if c in set(input_columns)]
        if clash:
            raise InputFileError(f"{source} already has column(s) {', '.join(map(repr, clash))}, which the "
                                 "predictions would add; rename them first")

    @staticmethod
    def join(table: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
        """``table`` with the prediction columns added, row by row (also for an index with repeated labels)."""
        out = table.copy()
        for column in predictions.columns:
            out[column] = predictions[column].values
        return out

    def predict(self, molecules: Any, smiles_column: Optional[str] = None) -> pd.DataFrame:
        """Input table (a ``smiles`` column for SMILES/``Mol`` lists; a Series' index; a DataFrame's columns and
        index) with prediction columns and ``status`` added, one row per input."""
        chunk = molecules_chunk(molecules, smiles_column)
        pieces = [table for _, table in self.stream(self._progress(split_chunk(chunk, CHUNK_ROWS), len(chunk)))]
        return pd.concat(pieces) if pieces else self.join(chunk.table, self.predict_chunk(chunk))

    def _progress(self, chunks: Iterable[MoleculeChunk], total: Optional[int]) -> Iterator[MoleculeChunk]:
        from molssl.core.progress import Progress

        with Progress("predicting", total=total, enabled=self.progress) as bar:
            for chunk in chunks:
                yield chunk
                bar.update(len(chunk))

    def write(self, reader: MoleculeReader, sink: Any, log: Callable[[str], None] = lambda _m: None) -> dict:
        """Predict the rows of ``reader`` after those ``sink`` already holds, handing each chunk to ``sink``
        (:mod:`~molssl.chem.serve.outputs`) as soon as it is done; returns counts of rows, invalid and
        out-of-domain rows. If the run stops (an error, Ctrl-C, SIGTERM), ``log`` gets what the output holds."""
        from molssl.core.progress import Progress

        self.check_clash(reader.columns, reader.name)
        counts = {"rows": 0, "invalid": 0, "out_of_domain": 0}
        domain_columns = [m.domain_column("in_domain") for m in self.models if self._has_domain(m)]
        try:
            with Progress("predicting", total=None, enabled=self.progress) as bar:
                for chunk, table in self.stream(reader.chunks(skip=sink.done)):
                    sink.write(table, chunk.mols)
                    counts["rows"] += len(table)
                    counts["invalid"] += int((table[STATUS_COLUMN] != OK).sum())
                    counts["out_of_domain"] += int(sum((table[c] == False).sum() for c in domain_columns))  # noqa: E712
                    bar.update(len(table))
        except BaseException:
            stopped = sink.stop()
            if stopped:
                log(stopped)
            raise
        if counts["rows"] == 0 and sink.done == 0:
            raise InputFileError(f"{reader.name} contains no molecules")
        sink.close()
        return counts

    def predict_smiles(self, smiles: Sequence[str] | str) -> pd.DataFrame:
        """Table with a ``smiles`` column, the predictions and ``status``, one row per input."""
        return self.predict([smiles] if isinstance(smiles, str) else list(smiles))

    def predict_file(self, path: str | Path, smiles_column: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> pd.DataFrame:
        """Every column of a CSV (SMILES and name of a .smi file; name, SMILES and properties of an SD file),
        then predictions and ``status``. (``cache_dir`` is unused: inputs are streamed, not cached.)"""
        reader = MoleculeReader(path, smiles_column, CHUNK_ROWS)
        self.check_clash(reader.columns, reader.name)
        pieces = [table for _, table in self.stream(self._progress(reader, None))]
        if not pieces:
            raise InputFileError(f"{reader.name} contains no molecules")
        return pd.concat(pieces)


def _molecules(chunk: MoleculeChunk, ok: np.ndarray) -> list:
    """RDKit molecules of the rows that were featurized (the input's own where it held molecules)."""
    given = chunk.mols if chunk.mols is not None else [None] * len(chunk)
    todo = [i for i in np.flatnonzero(ok) if given[i] is None]
    parsed = dict(zip(todo, parse_many([chunk.smiles[i] for i in todo])))
    return [(given[i] if given[i] is not None else parsed.get(i)) if ok[i] else None for i in range(len(chunk))]


def predict(molecules: Any, model: str | Path | Sequence[str | Path] = "esol", *, smiles_column: Optional[str] = None,
            coverage: Optional[float] = DEFAULT_COVERAGE, domain: bool = True, nearest: bool = False,
            batch_size: int = 256, device: str = "cpu", n_jobs: int = 1, threads: Optional[int] = None,
            progress: Optional[bool] = None, precision: str = "fp32") -> pd.DataFrame:
    """``molssl.predict``: one row per input (SMILES, RDKit molecules, a pandas Series or DataFrame; index
    kept), prediction columns, and ``status`` (``ok`` or ``invalid: <reason>``). See :class:`Predictor`."""
    models = [model] if isinstance(model, (str, Path)) else list(model)
    if isinstance(molecules, str) and not isinstance(model, (str, Path)):
        from molssl.chem.serve import zoo

        if zoo.is_shipped(molecules):
            raise MolsslError(f"molssl.predict takes the molecules first and the model second: "
                              f"predict(molecules, model={molecules!r})")
    return Predictor(models, batch_size=batch_size, device=device, threads=threads, n_jobs=n_jobs, progress=progress,
                     coverage=coverage, domain=domain, nearest=nearest, precision=precision).predict(molecules, smiles_column)


def predict_member(model, smiles: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predictions (n, n_tasks), valid mask (n,)) of one :class:`~molssl.chem.nn.property_model.PropertyModel`
    for a list of SMILES, raw (no calibration); invalid ones get NaN rows."""
    bare = PropertyEnsemble("model", [model])
    bare.calibration = None  # the member's own output, as it was when its validation record was written
    table = Predictor([bare], batch_size=batch_size, progress=False, coverage=None, domain=False).predict_chunk(
        molecules_chunk(list(smiles)))
    valid = (table[STATUS_COLUMN] == OK).to_numpy()
    return table[[bare.column(t) for t in model.tasks]].to_numpy(dtype=np.float64), valid
