"""Baselines on exactly the molecules and splits of a fine-tuning run: random forests and Delaney's equation.

- **RF-ECFP4** (``rf-ecfp``): one scikit-learn forest per task on ECFP4 bits (Morgan radius 2, 2048
  bits), trained on the training molecules labelled for that task, 500 trees and, for
  classification, ``class_weight="balanced"`` (DeepChem's MoleculeNet benchmark settings,
  ``deepchem/molnet/preset_hyper_parameters.py``). One deviation: each split considers sqrt(2048)
  bits (``max_features="sqrt"``) for regression as well (DeepChem's regressor considered all bits,
  ~17 min per seed on Lipophilicity here; see ``benchmarks/results/rf_ecfp_baseline.md``).
- **RF-RDKit2D** (``rf-rdkit2d``): the same forests on RDKit's 2D descriptor list (NaN imputed with
  the training median): what many chemists try first.
- **Delaney's ESOL equation** (``delaney``, regression only): logS = 0.16 - 0.63 clogP - 0.0062 MW +
  0.066 RB - 0.74 AP (Delaney, J. Chem. Inf. Comput. Sci. 44, 1000 (2004)), with RDKit's Crippen
  clogP, molecular weight, rotatable bonds and the aromatic proportion of heavy atoms; no fitting.

Fingerprints and descriptors come from the store's extras (computed when the file was featurized).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from molssl.chem.data.descriptors import column_medians
from molssl.chem.data.labelled import LabelledData
from molssl.chem.data.splits import Split
from molssl.chem.tasks.metrics import score

BASELINES = ("rf-ecfp", "rf-rdkit2d", "delaney")
BASELINE_EXTRAS = {"rf-ecfp": ("ecfp2048",), "rf-rdkit2d": ("rdkit2d",), "delaney": ("rdkit2d",)}


def ecfp4(smiles: Sequence[str], n_bits: int = 2048) -> np.ndarray:
    """(n, n_bits) uint8 0/1 ECFP4 bit vectors of SMILES (:func:`molssl.chem.data.descriptors.ecfp_bits`)."""
    from rdkit import Chem, RDLogger

    from molssl.chem.data.descriptors import ecfp_bits

    RDLogger.DisableLog("rdApp.*")
    out = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi) if smi and smi.strip() else None
        if mol is None:
            raise ValueError(f"SMILES at position {i} ({smi!r}) cannot be parsed by RDKit; drop invalid molecules first")
        out[i] = np.unpackbits(ecfp_bits(mol, n_bits=n_bits, radius=2))
    return out


def forest_predict(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, classification: bool, seed: int,
                   n_estimators: int = 500, n_jobs: int = 1, max_features: str | float = "sqrt") -> np.ndarray:
    """The baselines' forest (settings above) fitted on one task: its predictions for ``x_eval``,
    P(class 1) for classification, values otherwise."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if classification:
        if len(np.unique(y_train)) < 2:  # one class seen: predict it with certainty
            return np.full(len(x_eval), float(y_train[0]))
        model = RandomForestClassifier(n_estimators=n_estimators, class_weight="balanced",
                                       max_features=max_features, random_state=seed, n_jobs=n_jobs)
        model.fit(x_train, y_train.astype(np.int64))
        return model.predict_proba(x_eval)[:, list(model.classes_).index(1)]
    model = RandomForestRegressor(n_estimators=n_estimators, max_features=max_features, random_state=seed,
                                  n_jobs=n_jobs)
    model.fit(x_train, y_train)
    return model.predict(x_eval)


def compact_forest(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0, trees: int = 100, leaves: int = 32):
    """One small multi-output forest for every task (``trees`` trees of at most ``leaves`` leaves, unweighted: balanced
    weights would multiply across outputs), fitted; ``y_train`` (molecules, tasks) needs every label present. Small
    enough to ship beside a network (:mod:`molssl.chem.nn.forests`): 6,300 nodes for SIDER's 27 tasks."""
    from sklearn.ensemble import RandomForestClassifier

    if np.isnan(y_train).any():
        raise ValueError("a compact forest needs a label for every task of every training molecule")
    y = y_train.astype(np.int64)
    return RandomForestClassifier(n_estimators=trees, max_leaf_nodes=leaves, random_state=seed).fit(
        x_train, y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y)


def rf_baseline(x: np.ndarray, labels: np.ndarray, split: Split, task_type: str, metric: str, seed: int = 0,
                n_estimators: int = 500, n_jobs: int = 1, max_features: str | float = "sqrt") -> dict:
    """Per-task random forests on features ``x`` (n, d): valid and test scores and test predictions."""
    if not len(split.train):
        raise ValueError("the split has no training molecules")
    classification = task_type == "classification"
    x_train = x[split.train]
    x_eval = x[np.concatenate([split.valid, split.test])]
    n_valid = len(split.valid)
    preds = np.zeros((len(x_eval), labels.shape[1]))
    untrained = []  # tasks without a labelled training molecule are left out of the score
    for j in range(labels.shape[1]):
        y = labels[split.train, j]
        labelled = ~np.isnan(y)
        if not labelled.any():
            untrained.append(j)
            continue
        preds[:, j] = forest_predict(x_train[labelled], y[labelled], x_eval, classification, seed, n_estimators,
                                     n_jobs, max_features)
    labels = labels.copy()
    labels[:, untrained] = np.nan
    return {"valid": score(metric, labels[split.valid], preds[:n_valid]),
            "test": score(metric, labels[split.test], preds[n_valid:]), "test_predictions": preds[n_valid:]}


def forest_features(method: str, data: LabelledData) -> np.ndarray:
    """The input of forest baseline ``method`` for every molecule of ``data``: ECFP4 bits (0/1), or RDKit
    descriptors with NaN where RDKit gave none (impute them with the training rows' medians)."""
    if method == "rf-ecfp":
        return np.unpackbits(np.asarray(data.store.extra("ecfp2048")), axis=1)
    return np.asarray(data.store.extra("rdkit2d"), dtype=np.float64)


def impute_median(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """NaN entries replaced by the training rows' median of their column (0 where all are NaN)."""
    return np.where(np.isnan(x), column_medians(x[train]), x)


def descriptor_column(name: str) -> int:
    from molssl.chem.data.descriptors import RDKIT2D_NAMES

    return RDKIT2D_NAMES.index(name)


def aromatic_proportion(data: LabelledData) -> np.ndarray:
    """Aromatic heavy atoms / heavy atoms per molecule, from the stored graphs (an atom is aromatic
    when one of its bonds is aromatic: bond type 3 in both vocabularies)."""
    graphs = data.store.graphs
    bonds = np.asarray(graphs.bonds)
    atom_ptr, bond_ptr = np.asarray(graphs.atom_ptr), np.asarray(graphs.bond_ptr)
    owner = np.repeat(np.arange(len(data)), np.diff(bond_ptr))
    aromatic = bonds[:, 2] == 3
    flags = np.zeros(atom_ptr[-1], dtype=bool)
    flags[(atom_ptr[owner] + bonds[:, 0])[aromatic]] = True
    flags[(atom_ptr[owner] + bonds[:, 1])[aromatic]] = True
    counts = np.add.reduceat(flags.astype(np.int64), atom_ptr[:-1]) if len(flags) else np.zeros(len(data))
    return counts / np.diff(atom_ptr)


def delaney_logs(data: LabelledData) -> np.ndarray:
    """Delaney's 2004 equation for log10 solubility (mol/L) of every molecule (see the module docstring)."""
    d = np.asarray(data.store.extra("rdkit2d"), dtype=np.float64)
    clogp, mw, rb = (d[:, descriptor_column(n)] for n in ("MolLogP", "MolWt", "NumRotatableBonds"))
    return 0.16 - 0.63 * clogp - 0.0062 * mw + 0.066 * rb - 0.74 * aromatic_proportion(data)


def run_baseline(method: str, data: LabelledData, task_index: list[int], split: Split, seed: int,
                 n_jobs: int = 1) -> dict:
    """Scores (and test predictions) of baseline ``method`` on ``data``'s targets ``task_index`` and ``split``."""
    labels = data.labels[:, task_index]
    if method == "delaney":
        if data.task_type != "regression" or len(task_index) != 1:
            raise ValueError("Delaney's equation predicts one regression target (aqueous solubility, log mol/L)")
        preds = delaney_logs(data)[:, None]
        return {"valid": score(data.metric, labels[split.valid], preds[split.valid]),
                "test": score(data.metric, labels[split.test], preds[split.test]),
                "test_predictions": preds[split.test]}
    if method not in ("rf-ecfp", "rf-rdkit2d"):
        raise ValueError(f"unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
    x = forest_features(method, data)
    if method == "rf-rdkit2d":
        x = impute_median(x, split.train)
    return rf_baseline(x, labels, split, data.task_type, data.metric, seed=seed, n_jobs=n_jobs)
