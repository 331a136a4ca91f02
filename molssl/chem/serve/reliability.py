"""What a fine-tuned model keeps about its data so that predictions can say how far to trust them.

Written into ``model.pt`` beside the weights when a model is fine-tuned (``train_model`` calls
:func:`reliability_extras`): the validation split's molecules, labels and the model's predictions
(``calibration``: conformal intervals, Platt scaling, :mod:`molssl.chem.serve.uncertainty`) and the
training molecules' packed ECFP4, rows, SMILES, atom kinds, descriptor ranges and the similarity
threshold chosen on validation (``domain``: :mod:`molssl.chem.serve.domain`). A digest over both is
checked when the file is read, as the weights' is, so changed numbers are refused, never used; so are records
that do not fit together. A cross-validation fold member's record also marks which of its molecules the scaffold
split validates on (``like_test``), what an ensemble of fold members calibrates on (:func:`like_test_subset`).
Model files written before this have neither: they predict without intervals or domain columns.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence

import numpy as np
import torch

from molssl.chem.serve.domain import FINGERPRINT_BYTES, domain_record, similarity_threshold
from molssl.core.checkpoint import CorruptFileError

KEYS = ("calibration", "domain")
DIGEST_KEY = "reliability_digest"
LIKE_TEST = "like_test"  # in a fold member's calibration record: which molecules the scaffold split validates on


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
    """Refuse a file whose calibration or domain data do not match the digest written with them, or do not fit
    together (a digest is no signature: a file made to mislead can carry a matching one)."""
    present = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    if present and record_digest(present) != meta.get(DIGEST_KEY):
        raise CorruptFileError(f"{path} is corrupted: its calibration / applicability-domain data do not match "
                               "the digest recorded when it was written; re-download or re-train it")
    problem = _shape_problem(present, len(meta.get("tasks") or ()))
    if problem:
        raise CorruptFileError(f"{path} is corrupted: its calibration / applicability-domain data do not fit "
                               f"together ({problem}); re-download or re-train it")


def _shape_problem(records: dict, tasks: int) -> str:
    """What in ``records`` does not fit together ("" when all does): one entry per validation molecule in the
    calibration record, one per training molecule in the domain, a threshold in [0, 1]."""
    try:
        record = records.get("calibration")
        if isinstance(record, dict):
            n = len(record["rows"])
            y_true, y_pred = np.asarray(record["y_true"]), np.asarray(record["y_pred"])
            if len(record["smiles"]) != n or y_true.shape != (n, tasks) or y_pred.shape != y_true.shape:
                return f"{n} validation rows, {len(record['smiles'])} SMILES, labels {y_true.shape}, " \
                       f"predictions {y_pred.shape} for {tasks} tasks"
            if record.get(LIKE_TEST) is not None:
                mask = np.asarray(record[LIKE_TEST])
                if mask.dtype != bool or mask.shape != (n,):
                    return f"a {mask.dtype} mask of shape {mask.shape} for {n} validation molecules"
        domain = records.get("domain")
        if isinstance(domain, dict):
            size = np.asarray(domain["fingerprints"]).size
            n = len(domain["smiles"])
            if size != n * FINGERPRINT_BYTES or len(domain["rows"]) != n:
                return f"{size} fingerprint bytes and {len(domain['rows'])} rows for {n} training molecules"
            threshold = float(domain["threshold"])
            if not 0.0 <= threshold <= 1.0:
                return f"similarity threshold {threshold}"
    except (KeyError, TypeError, ValueError) as exc:
        return f"unreadable entry: {exc}"
    return ""


def reliability_extras(data: Any, split: Any, labels: np.ndarray, valid_predictions: np.ndarray,
                       like_test: Optional[np.ndarray] = None) -> dict:
    """The ``model.pt`` entries of a model fine-tuned on ``data`` (a LabelledData) with ``split``.

    ``labels`` (molecules, model tasks) are the model's label columns; ``valid_predictions`` the
    model's predictions on ``split.valid`` (probabilities or target units), in that order.
    ``like_test``: for a cross-validation fold (``--folds``), the store positions of the ordinary scaffold split's
    validation part; the record marks which of its molecules lie there (:func:`like_test_subset` says why).
    """
    valid = np.asarray(split.valid, dtype=np.int64)
    train = np.asarray(split.train, dtype=np.int64)
    valid_smiles = data.store.smiles(valid)
    calibration = {"version": 1, "split": "valid", "rows": np.asarray(data.rows)[valid], "smiles": valid_smiles,
                   "y_true": np.asarray(labels, dtype=np.float64)[valid],
                   "y_pred": np.asarray(valid_predictions, dtype=np.float64)}
    if like_test is not None:
        calibration[LIKE_TEST] = torch.from_numpy(np.isin(valid, np.asarray(like_test, dtype=np.int64)))
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
POOLED_THRESHOLD_RULE = ("5th percentile of the nearest-training-molecule similarity of the scaffold split's "
                         "validation molecules in the members' folds, each to its own member's training set")


def marked(meta: dict, like_test: np.ndarray) -> dict:
    """``meta``'s reliability entries with the calibration record's LIKE_TEST mask set, digest renewed (for fold
    runs fine-tuned before molssl wrote the mask: the export finds it from the data); ``meta`` is not changed."""
    records = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    records["calibration"] = {**records["calibration"], LIKE_TEST: torch.from_numpy(np.asarray(like_test, dtype=bool))}
    return with_digest(records)


def restricted(meta: dict, keep: np.ndarray) -> dict:
    """``meta``'s reliability entries with the calibration record, and the domain's validation similarities, cut to
    the molecules where ``keep`` (a mask over the record) is true (its ``split`` says so), digest renewed; ``meta``
    itself is not changed."""
    records = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    record = records.get("calibration")
    if record is not None:
        keep = np.asarray(keep, dtype=bool)
        # tensors, not numpy arrays: a member may keep none, and an empty numpy array pickles as a call to
        # bytes(), which the safe loader (rightly) refuses
        cut = {key: torch.from_numpy(np.ascontiguousarray(np.asarray(record[key])[keep]))
               for key in ("rows", "y_true", "y_pred")}
        records["calibration"] = {**{k: v for k, v in record.items() if k != LIKE_TEST}, **cut, "split": SCAFFOLD_VALID,
                                  "smiles": [s for s, k in zip(record["smiles"], keep) if k]}
        domain = records.get("domain")
        similarity = None if domain is None else domain.get("valid_similarity")
        if similarity is not None and len(similarity) == keep.size:  # one per validation molecule, in its order
            records["domain"] = {**domain, "valid_similarity": torch.from_numpy(
                np.ascontiguousarray(np.asarray(similarity, dtype=np.float32)[keep]))}
    return with_digest(records)


def pooled_threshold(metas: Sequence[dict]) -> Optional[float]:
    """One similarity threshold for fold members whose domain records were cut (:func:`restricted`): chosen on
    their validation molecules pooled. None when a member has no domain record."""
    domains = [meta.get("domain") for meta in metas]
    if not domains or not all(isinstance(d, dict) and d.get("valid_similarity") is not None for d in domains):
        return None
    return similarity_threshold(np.concatenate([np.asarray(d["valid_similarity"], dtype=np.float64).ravel()
                                                for d in domains]))


def like_test_subset(metas: Sequence[dict]) -> tuple[list[dict], str]:
    """(the members' reliability entries as an ensemble uses them, a sentence for its card). Fold members (their
    records carry LIKE_TEST) keep only the molecules of the scaffold split's validation part, each predicted by the
    member whose fold holds it, and one domain threshold chosen on them (:func:`pooled_threshold`), unless some
    task would keep fewer than MIN_LABELS labels: then their whole folds. Other members are returned as they are.

    Why: a cross-validation member is validated on its scaffold fold, mostly the common scaffolds, which it
    predicts better than the rare scaffolds of a scaffold split's test part; the molecules of the ordinary
    split's validation part are drawn like that test part (DeepChem's splitter fills both with the smallest
    scaffold sets), so intervals, probabilities and the domain threshold set on them hold for test-like molecules.
    """
    from molssl.chem.serve.uncertainty import MIN_LABELS

    metas = list(metas)
    records = [meta.get("calibration") for meta in metas]
    if not records or not all(isinstance(r, dict) and r.get(LIKE_TEST) is not None for r in records):
        return metas, ""
    masks = [np.asarray(record[LIKE_TEST], dtype=bool) for record in records]
    labels: dict[str, int] = {}
    for meta, record, mask in zip(metas, records, masks):
        y = np.asarray(record["y_true"], dtype=np.float64)[mask]
        for j, task in enumerate(meta["tasks"]):
            labels[task] = labels.get(task, 0) + int((~np.isnan(y[:, j])).sum())
    fewest = min(labels.values())
    if fewest < MIN_LABELS:
        return metas, (f"Calibrated on the members' whole validation folds: only {fewest} labels of the scaffold "
                       f"split's validation molecules lie in them (fewer than {MIN_LABELS}).")
    cut = [{**meta, **restricted(meta, mask)} for meta, mask in zip(metas, masks)]
    threshold = pooled_threshold(cut)
    if threshold is not None:
        cut = [{**meta, **with_threshold(meta, threshold, POOLED_THRESHOLD_RULE)} for meta in cut]
    return cut, (f"Calibrated only on the scaffold split's validation molecules in the members' validation folds "
                 f"({sum(int(mask.sum()) for mask in masks)}), each held out from the member that predicts it: drawn "
                 "like the test molecules (rare scaffolds), unlike the rest of the folds (common scaffolds, easier). "
                 "The applicability domain's similarity threshold is chosen on the same molecules.")


def with_threshold(meta: dict, threshold: float, rule: str) -> dict:
    """``meta``'s reliability entries with the domain's similarity threshold (and the rule that chose it)
    replaced, digest renewed; ``meta`` itself is not changed. For an ensemble whose members share one
    threshold chosen on their pooled validation molecules (:func:`pooled_threshold`)."""
    records = {k: meta[k] for k in KEYS if meta.get(k) is not None}
    if "domain" in records:
        records["domain"] = {**records["domain"], "threshold": float(threshold), "threshold_rule": rule}
    return with_digest(records)
