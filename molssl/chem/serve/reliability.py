"""What a fine-tuned model keeps about its data so that predictions can say how far to trust them.

Written into ``model.pt`` beside the weights when a model is fine-tuned (``train_model`` calls
:func:`reliability_extras`): the validation split's molecules, labels and the model's predictions
(``calibration``: conformal intervals, Platt scaling, :mod:`molssl.chem.serve.uncertainty`) and the
training molecules' packed ECFP4, rows, SMILES, atom kinds, descriptor ranges and the similarity
threshold chosen on validation (``domain``: :mod:`molssl.chem.serve.domain`). A digest over both is
checked when the file is read, as the weights' is, so changed numbers are refused, never used.
Model files written before this have neither: they predict without intervals or domain columns.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

import numpy as np
import torch

from molssl.chem.serve.domain import domain_record
from molssl.core.checkpoint import CorruptFileError

KEYS = ("calibration", "domain")
DIGEST_KEY = "reliability_digest"


def record_digest(records: dict) -> str:
    """sha256 over the names, array bytes and plain values of ``records``, in key order."""
    digest = hashlib.sha256()

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                visit(f"{prefix}.{key}", value[key])
        elif isinstance(value, np.ndarray) or hasattr(value, "numpy"):
            array = np.ascontiguousarray(np.asarray(value))
            digest.update(f"{prefix}|{array.dtype}|{array.shape}|".encode())
            digest.update(array.tobytes())
        else:
            digest.update(f"{prefix}|{json.dumps(value, sort_keys=True, default=str)}|".encode())

    visit("", records)
    return digest.hexdigest()


def with_digest(records: dict) -> dict:
    """``records`` (calibration, domain) plus their digest, ready to be saved in ``model.pt``."""
    present = {k: records[k] for k in KEYS if records.get(k) is not None}
    return {**present, DIGEST_KEY: record_digest(present)} if present else {}


def verify_reliability(meta: dict, path: object) -> None:
    """Refuse a file whose calibration or domain data do not match the digest written with them."""
    present = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    if present and record_digest(present) != meta.get(DIGEST_KEY):
        raise CorruptFileError(f"{path} is corrupted: its calibration / applicability-domain data do not match "
                               "the digest recorded when it was written; re-download or re-train it")


def reliability_extras(data: Any, split: Any, labels: np.ndarray, valid_predictions: np.ndarray) -> dict:
    """The ``model.pt`` entries of a model fine-tuned on ``data`` (a LabelledData) with ``split``.

    ``labels`` (molecules, model tasks) are the model's label columns; ``valid_predictions`` the
    model's predictions on ``split.valid`` (probabilities or target units), in that order.
    """
    valid = np.asarray(split.valid, dtype=np.int64)
    train = np.asarray(split.train, dtype=np.int64)
    valid_smiles = data.store.smiles(valid)
    calibration = {"version": 1, "split": "valid", "rows": np.asarray(data.rows)[valid], "smiles": valid_smiles,
                   "y_true": np.asarray(labels, dtype=np.float64)[valid],
                   "y_pred": np.asarray(valid_predictions, dtype=np.float64)}
    domain = domain_record(data.store.smiles(train), np.asarray(data.rows)[train], valid_smiles)
    return with_digest({"calibration": calibration, "domain": domain})


def refreshed(meta: dict, valid_predictions: Optional[np.ndarray]) -> dict:
    """``meta``'s reliability entries with the validation predictions replaced (e.g. by those of packed
    weights), digest renewed; ``meta`` itself is not changed."""
    records = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    if valid_predictions is not None and "calibration" in records:
        records["calibration"] = {**records["calibration"], "y_pred": np.asarray(valid_predictions, dtype=np.float64)}
    return with_digest(records)


SCAFFOLD_VALID = "valid, only the scaffold split's validation molecules"


def restricted(meta: dict, rows: np.ndarray) -> dict:
    """``meta``'s reliability entries with the calibration record cut to the molecules whose input row is in
    ``rows`` (its ``split`` says so), digest renewed; ``meta`` itself is not changed.

    Why: a cross-validation member is validated on its scaffold fold, mostly the common scaffolds, which it
    predicts better than the rare scaffolds of a scaffold split's test part; the molecules of the ordinary
    split's validation part are drawn like that test part (DeepChem's splitter fills both with the smallest
    scaffold sets), so intervals and probabilities calibrated on them are exchangeable with the test molecules.
    """
    records = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    record = records.get("calibration")
    if record is not None:
        keep = np.isin(np.asarray(record["rows"], dtype=np.int64), np.asarray(rows, dtype=np.int64))
        # tensors, not numpy arrays: a member may keep none, and an empty numpy array pickles as a call to
        # bytes(), which the safe loader (rightly) refuses
        cut = {key: torch.from_numpy(np.ascontiguousarray(np.asarray(record[key])[keep]))
               for key in ("rows", "y_true", "y_pred")}
        records["calibration"] = {**record, **cut, "split": SCAFFOLD_VALID,
                                  "smiles": [s for s, k in zip(record["smiles"], keep) if k]}
    return with_digest(records)
