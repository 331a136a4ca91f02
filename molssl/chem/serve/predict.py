"""Property prediction with fine-tuned models and ensembles: SMILES in, one table row per input out.

Small inputs are featurized in memory; files with more than
:data:`~molssl.chem.data.sources.IN_MEMORY_LIMIT` rows go through the cached, parallel store. Either
way the molecules are batched by the same ``gather`` used in training, every input row is kept in
order, and rows that cannot be featurized get a ``status`` saying why. Models trained with
different featurizers (or molecule features) each get the inputs featurized their way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from molssl.chem.data.inputs import read_input_table, resolve_smiles_column
from molssl.chem.data.sources import SmilesBatches, file_batches
from molssl.chem.serve.ensemble import PropertyEnsemble, load_ensemble
from molssl.core.device import move_to, resolve_device, torch_threads
from molssl.errors import InputFileError, MolsslError

STATUS_COLUMN = "status"
load_model = load_ensemble  # the public name: ``molssl.load_model``


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
        self.models = [m.to(self.device) if isinstance(m, PropertyEnsemble) else load_ensemble(m, device)
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

    def _groups(self) -> dict[str, tuple[list[PropertyEnsemble], tuple[str, ...]]]:
        """Models by featurizer, with the union of the molecule features they need."""
        groups: dict[str, tuple[list[PropertyEnsemble], tuple[str, ...]]] = {}
        for model in self.models:
            members, features = groups.get(model.featurizer, ([], ()))
            groups[model.featurizer] = (members + [model], tuple(sorted(set(features) | set(model.features))))
        return groups

    def _predict(self, make_batches, n: int) -> pd.DataFrame:
        """Prediction columns plus ``status`` for ``n`` input rows; ``make_batches(featurizer, features)``."""
        values = {c: np.full(n, np.nan) for c in self.columns()}
        status = None
        with torch_threads(self.threads):
            for featurizer, (models, features) in self._groups().items():
                batches = make_batches(featurizer, features)
                for rows, batch in batches:
                    batch = move_to(batch, self.device)
                    for model in models:
                        mean, std = model.predict_batch(batch)
                        for j, task in enumerate(model.tasks):
                            values[model.column(task)][rows] = mean[:, j]
                            if model.n_members > 1:
                                values[model.column(task, std=True)][rows] = std[:, j]
                status = batches.status if status is None else [a if a != "ok" else b for a, b in zip(status, batches.status)]
        table = pd.DataFrame(values)
        table[STATUS_COLUMN] = status
        return table

    def predict_smiles(self, smiles: Sequence[str] | str) -> pd.DataFrame:
        """Table with a ``smiles`` column, the predictions and ``status``, one row per input."""
        smiles = [smiles] if isinstance(smiles, str) else list(smiles)
        table = self._predict(lambda featurizer, features: SmilesBatches(
            smiles, self.batch_size, self.workers, progress=self.progress, featurizer=featurizer, features=features),
            len(smiles))
        table.insert(0, "smiles", smiles)
        return table

    def predict_file(self, path: str | Path, smiles_column: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> pd.DataFrame:
        """Every column of a CSV (or SMILES and name of a .smi file), then predictions and ``status``."""
        path = Path(path)
        column = resolve_smiles_column(path, smiles_column)
        table = read_input_table(path, column)
        smiles = table[column or "smiles"].tolist()
        predictions = self._predict(lambda featurizer, features: file_batches(
            path, column, smiles, self.batch_size, self.workers, cache_dir, self.progress, featurizer=featurizer,
            features=features), len(smiles))
        clash = [c for c in predictions.columns if c in table.columns]
        if clash:
            raise InputFileError(f"{path} already has column(s) {', '.join(clash)}; rename them first")
        return pd.concat([table.reset_index(drop=True), predictions], axis=1)


def predict(smiles: Sequence[str] | str, model: str | Path | Sequence[str | Path] = "esol",
            batch_size: int = 256, device: str = "cpu") -> pd.DataFrame:
    """``molssl.predict``: a table of predictions (one row per SMILES, invalid ones flagged in ``status``)."""
    models = [model] if isinstance(model, (str, Path)) else list(model)
    return Predictor(models, batch_size=batch_size, device=device).predict_smiles(smiles)


def predict_member(model, smiles: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predictions (n, n_tasks), valid mask (n,)) of one :class:`~molssl.chem.nn.property_model.PropertyModel`
    for a list of SMILES; invalid ones get NaN rows."""
    table = Predictor([PropertyEnsemble("model", [model])], batch_size=batch_size, progress=False).predict_smiles(smiles)
    valid = (table[STATUS_COLUMN] == "ok").to_numpy()
    return table[[PropertyEnsemble("model", [model]).column(t) for t in model.tasks]].to_numpy(dtype=np.float64), valid
