"""Random forest on ECFP4 fingerprints: the non-learned-representation baseline for fine-tuning.

One scikit-learn forest per task, trained on the train molecules labelled for that task, with
500 trees and, for classification, ``class_weight="balanced"`` (the settings of DeepChem's
MoleculeNet benchmark, ``deepchem/molnet/preset_hyper_parameters.py`` and
``run_benchmark_models.py``). Fingerprints: Morgan radius 2, 2048 bits.

One deviation by default: each split considers sqrt(2048) bits (``max_features="sqrt"``) for
regression as well as classification. DeepChem's regressor considered all bits
(``max_features=1.0``), which took ~17 min per seed on Lipophilicity on 2 busy CPU cores and gave
a lower FreeSolv RMSE (see ``benchmarks/results/rf_ecfp_baseline.md``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from molssl.chem.data.datasets import MoleculeNetData
from molssl.chem.tasks.metrics import score
from molssl.chem.data.splits import Split


def ecfp4(smiles: Sequence[str], n_bits: int = 2048) -> np.ndarray:
    """(n, n_bits) uint8 0/1 ECFP4 bit vectors (:func:`molssl.chem.nn.similarity.ecfp_bits`, radius 2)."""
    from rdkit import Chem, RDLogger

    from molssl.chem.nn.similarity import ecfp_bits

    RDLogger.DisableLog("rdApp.*")
    out = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi) if smi and smi.strip() else None
        if mol is None:
            raise ValueError(f"SMILES at position {i} ({smi!r}) cannot be parsed by RDKit; "
                             "drop invalid molecules first (MoleculeNetData.drop_invalid())")
        out[i] = np.unpackbits(ecfp_bits(mol, n_bits=n_bits, radius=2))
    return out


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray,
                 classification: bool, seed: int, n_estimators: int, n_jobs: int,
                 max_features: str | float) -> np.ndarray:
    """Predictions for ``x_eval`` of one task: P(class 1) for classification, values otherwise."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if classification:
        if len(np.unique(y_train)) < 2:  # one class seen: predict it with certainty
            return np.full(len(x_eval), float(y_train[0]))
        model = RandomForestClassifier(n_estimators=n_estimators, class_weight="balanced",
                                       max_features=max_features, random_state=seed, n_jobs=n_jobs)
        model.fit(x_train, y_train.astype(np.int64))
        return model.predict_proba(x_eval)[:, list(model.classes_).index(1)]
    model = RandomForestRegressor(n_estimators=n_estimators, max_features=max_features,
                                  random_state=seed, n_jobs=n_jobs)
    model.fit(x_train, y_train)
    return model.predict(x_eval)


def rf_ecfp_baseline(data: MoleculeNetData, split: Split, seed: int = 0, n_estimators: int = 500,
                     n_jobs: int = 1, max_features: str | float = "sqrt") -> dict[str, float]:
    """Valid and test scores (``data.metric``) of per-task random forests on ECFP4.

    ``split`` indexes ``data`` (e.g. ``scaffold_split(data.smiles)`` after ``drop_invalid()``).
    """
    if not len(split.train):
        raise ValueError("the split has no training molecules")
    fps = ecfp4(data.smiles)
    classification = data.task_type == "classification"
    x_train = fps[split.train]
    x_eval = fps[np.concatenate([split.valid, split.test])]
    n_valid = len(split.valid)
    preds = np.zeros((len(x_eval), len(data.tasks)))
    untrained = []  # tasks without a labelled training molecule are left out of the score
    for j in range(len(data.tasks)):
        y = data.labels[split.train, j]
        labelled = ~np.isnan(y)
        if not labelled.any():
            untrained.append(j)
            continue
        preds[:, j] = _fit_predict(x_train[labelled], y[labelled], x_eval, classification, seed,
                                   n_estimators, n_jobs, max_features)
    labels = data.labels.copy()
    labels[:, untrained] = np.nan
    return {"valid": score(data.metric, labels[split.valid], preds[:n_valid]),
            "test": score(data.metric, labels[split.test], preds[n_valid:])}
