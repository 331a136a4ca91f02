"""Scoring an ensemble on the test split its fine-tuning runs recorded (what model cards and plots report)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from molssl.chem.data.labelled import LabelledData, load_labelled
from molssl.chem.data.sources import StoreBatches
from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.tasks.groups import SPLIT_EXTRAS, make_split, task_groups
from molssl.chem.tasks.metrics import score
from molssl.errors import MolsslError


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
    folders = _folders(run_dirs)
    split_files = sorted(f for d in folders for f in d.rglob("split.json"))
    if not split_files:
        raise MolsslError(f"no split.json in {', '.join(map(str, folders))}; give `molssl finetune` run directories")
    tests = {tuple(json.loads(f.read_text())["test"]) for f in split_files}
    if len(tests) > 1:
        raise MolsslError(f"the models in {', '.join(map(str, folders))} were tested on different splits (several "
                          "targets of a per-target run, or seed-dependent splits); a test plot needs one shared split")
    rows = list(tests.pop())
    data, _ = run_data(folders, ensemble, data_dir)
    position_of_row = {int(r): i for i, r in enumerate(data.rows)}
    missing = [r for r in rows if r not in position_of_row]
    if missing:
        raise MolsslError(f"{folders[0]}: test rows {missing[:5]} of its input can no longer be featurized")
    return predictions_at(data, np.asarray([position_of_row[r] for r in rows], dtype=np.int64), ensemble)


def predictions_at(data: LabelledData, positions: np.ndarray, ensemble: PropertyEnsemble) -> TestPredictions:
    """The ensemble's predictions of the molecules at store ``positions`` of ``data`` (built with the extras
    ``ensemble.features`` names), scored against their labels."""
    batches = StoreBatches(data.store, positions, 256, shuffle=False, drop_last=False, rank=0, world_size=1,
                           features=ensemble.features)
    mean = np.zeros((len(positions), len(ensemble.tasks)))
    std = np.zeros_like(mean)
    start = 0
    for batch in batches.batches(0):
        n = batch.num_graphs
        mean[start:start + n], std[start:start + n] = ensemble.predict_batch(batch)
        start += n
    labels = data.labels[positions][:, [data.tasks.index(t) for t in ensemble.tasks]]
    return TestPredictions(data.store.smiles(positions), labels, mean, std, list(ensemble.tasks), data.task_type,
                           data.metric, score(data.metric, labels, mean))


def _folders(run_dirs: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]


def run_data(run_dirs: str | Path | Sequence[str | Path], ensemble: PropertyEnsemble, data_dir: Optional[str] = None,
             scaffolds: bool = False, extras: Sequence[str] = ()) -> tuple[LabelledData, dict]:
    """The labelled input of ``molssl finetune`` runs, featurized as ``ensemble`` reads it (``scaffolds``: with the
    scaffold keys that splits need; ``extras``: more store extras, e.g. ``ecfp2048``), and the first run's config."""
    folders = _folders(run_dirs)
    config_file = next((f for d in folders for f in d.rglob("config.json")), None)
    if config_file is None:
        raise MolsslError(f"no config.json in {', '.join(map(str, folders))}; give `molssl finetune` run directories")
    config = json.loads(config_file.read_text())
    # the input's absolute path is recorded (newer runs), so the run directory works from any folder:
    # a CSV is read from there, a MoleculeNet set from the folder it was found in
    given = Path(config["input"]) if config.get("input") else None
    csv = str(given) if given is not None and config.get("csv") else config.get("csv")
    if data_dir is None and config.get("dataset") and given is not None and given.is_file():
        data_dir = str(given.parent)
    data = load_labelled(dataset=config.get("dataset"), csv=csv, smiles_column=config.get("smiles_column"),
                         targets=config.get("targets"), task=config.get("task"), metric=config.get("metric"),
                         data_dir=data_dir or config.get("data_dir"), featurizer=ensemble.featurizer,
                         extras=tuple(dict.fromkeys((*ensemble.features, *(SPLIT_EXTRAS["scaffold"] if scaffolds else ()),
                                                     *extras))), progress=False)
    return data, config


def scaffold_validation_rows(data: LabelledData, protocol: str) -> Optional[np.ndarray]:
    """Input rows of the validation part of the DeepChem scaffold split of ``data`` (the split ``molssl finetune``
    makes before any ``--folds``); None when ``protocol`` trains one model per target on several targets."""
    groups = task_groups(data, protocol)
    if len(groups) != 1:
        return None
    return np.asarray(data.rows)[make_split(data, groups[0], "scaffold", 0).valid]


SIMILARITY_BINS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.01)


def test_reliability(ensemble: PropertyEnsemble, test: TestPredictions, coverage: float = 0.9) -> dict:
    """How the ensemble's uncertainty and domain hold up on its test split: interval coverage and width
    (regression) or Brier score and ECE before/after calibration (classification), the share of test
    molecules in the domain, and the error by nearest-training similarity (the evidence for the threshold)."""
    from molssl.chem.serve.domain import describe_smiles
    from molssl.chem.serve.uncertainty import (ConformalIntervals, PlattScaling, brier_score,
                                               expected_calibration_error)

    out: dict = {"test_molecules": test.n_molecules}
    y, mean = test.y_true, test.mean
    calibration = ensemble.calibration
    if isinstance(calibration, ConformalIntervals):
        half = calibration.half_width(test.std, coverage)
        labelled = ~np.isnan(y)
        out.update(coverage=coverage, empirical_coverage=float((np.abs(y - mean) <= half)[labelled].mean()),
                   mean_width=float((2 * half)[labelled].mean()), labelled=int(labelled.sum()))
    if isinstance(calibration, PlattScaling):
        after = calibration.apply(mean)
        for name, p in (("before", mean), ("after", after)):
            out[f"brier_{name}"] = float(np.nanmean([brier_score(p[:, j], y[:, j]) for j in range(y.shape[1])]))
            out[f"ece_{name}"] = float(np.nanmean([expected_calibration_error(p[:, j], y[:, j])
                                                   for j in range(y.shape[1])]))
    if ensemble.domain is not None:
        found = ensemble.domain.assess(describe_smiles(test.smiles))
        error = np.nanmean(np.abs(y - mean), axis=1)  # per molecule, over its labelled tasks
        out["in_domain"] = float(found.in_domain.mean())
        out["error_in_domain"] = float(np.nanmean(error[found.in_domain])) if found.in_domain.any() else None
        out["error_out_of_domain"] = float(np.nanmean(error[~found.in_domain])) if (~found.in_domain).any() else None
        bins = np.digitize(found.similarity, SIMILARITY_BINS) - 1
        out["error_by_similarity"] = [
            {"similarity": f"{SIMILARITY_BINS[b]:.1f}-{min(SIMILARITY_BINS[b + 1], 1.0):.1f}",
             "molecules": int((bins == b).sum()),
             "mean_abs_error": float(np.nanmean(error[bins == b])) if (bins == b).any() else None}
            for b in range(len(SIMILARITY_BINS) - 1)]
    return out
