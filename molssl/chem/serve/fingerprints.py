"""Learned molecular fingerprints: the encoder's representation h (``feat_lin`` output) per molecule.

``fingerprint(smiles)`` for plain Python, :class:`MolecularFingerprint` for scikit-learn pipelines.
Featurization and batching are those of training (:mod:`molssl.chem.data.sources`), in the encoder's vocabulary.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from molssl.chem.data.objects import molecules_chunk
from molssl.chem.data.sources import OK, SmilesBatches
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.chem.serve.zoo import DEFAULT_FINGERPRINT_ENCODER
from molssl.core.device import autocast, move_to, resolve_device, torch_threads
from molssl.core.precision import resolve_precision
from molssl.errors import MolsslError

DEFAULT_ENCODER = DEFAULT_FINGERPRINT_ENCODER
ERROR_MODES = ("raise", "nan")


class InvalidSmilesInput(MolsslError, ValueError):
    """Some inputs are not valid molecules; ``.invalid`` lists (position, SMILES, reason)."""

    PYTHON_HINT = "pass errors='nan' to get NaN rows for them"

    def __init__(self, invalid: list[tuple[int, str, str]], hint: str = PYTHON_HINT) -> None:
        self.invalid = invalid
        shown = "; ".join(f"#{i}: {s!r} ({reason})" for i, s, reason in invalid[:10])
        more = f" and {len(invalid) - 10} more" if len(invalid) > 10 else ""
        super().__init__(f"{len(invalid)} invalid SMILES (0-based positions) — {shown}{more}. "
                         f"Fix or remove them, or {hint}.")


def load_encoder(model: str | Path | MolecularEncoder = DEFAULT_ENCODER, device: str = "cpu") -> MolecularEncoder:
    """An encoder in eval mode: a shipped encoder's name, an ``encoder.pt`` (pre-training), a pre-training
    run directory, or a fine-tuned ``model.pt`` (its fine-tuned encoder)."""
    from molssl.chem.serve.loading import resolve_encoder

    if not isinstance(model, (str, Path, MolecularEncoder)):
        raise TypeError(f"model must be a shipped encoder's name, a path or a MolecularEncoder, not a "
                        f"{type(model).__name__}; the molecules come first: fingerprint(molecules, model=...)")
    encoder = model if isinstance(model, MolecularEncoder) else resolve_encoder(model)[0]
    return encoder.to(resolve_device(device)).eval()


@torch.no_grad()
def encode_batches(encoder: MolecularEncoder, batches: SmilesBatches, precision: str = "fp32") -> np.ndarray:
    """(n_inputs, feat_dim) float32 representations; NaN rows where ``batches.status`` is not ok.
    ``precision``: fp32 or bf16 (autocast); resolve ``auto`` first with :func:`molssl.core.precision.resolve_precision`."""
    device = next(encoder.parameters()).device
    out = np.full((len(batches), encoder.config.feat_dim), np.nan, dtype=np.float32)
    encoder.eval()
    for rows, batch in batches:
        with autocast(device, precision):
            out[rows] = encoder.represent(move_to(batch, device)).float().cpu().numpy()
    return out


def encode_smiles(encoder: MolecularEncoder, smiles: Sequence[str], batch_size: int = 256, workers: int = 1,
                  progress: Optional[bool] = None, precision: str = "fp32") -> tuple[np.ndarray, list[str]]:
    """(representations with NaN rows for invalid SMILES, per-input status)."""
    batches = SmilesBatches(smiles, batch_size, workers=workers, progress=progress, desc="fingerprints",
                            featurizer=encoder.config.featurizer)
    return encode_batches(encoder, batches, precision), batches.status


def invalid_inputs(smiles: Sequence[str], status: list[str]) -> list[tuple[int, str, str]]:
    """(position, SMILES, reason) of every input whose status is not ok."""
    return [(i, s, st.removeprefix("invalid: ")) for i, (s, st) in enumerate(zip(smiles, status)) if st != OK]


def _as_smiles_list(molecules: Any) -> list[str]:
    """SMILES of the inputs: strings or RDKit molecules (written as SMILES), one by one, in a sequence, a Series,
    a one-column table, or a DataFrame with a SMILES / ``Mol`` column."""
    from rdkit import Chem

    if isinstance(molecules, (str, Chem.Mol)):
        molecules = [molecules]
    if isinstance(molecules, pd.DataFrame) and molecules.shape[1] > 1:
        return molecules_chunk(molecules).smiles
    array = np.empty(len(molecules), dtype=object) if isinstance(molecules, list) else None
    if array is not None:
        array[:] = molecules  # element by element: a list of Mol objects stays 1-D
    else:
        array = np.asarray(molecules, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # a one-column table (e.g. from ColumnTransformer)
    if array.ndim != 1:
        raise ValueError(f"expected a sequence of SMILES strings (or one column of them), got shape {array.shape}")
    bad = [i for i, s in enumerate(array) if not isinstance(s, (str, Chem.Mol))]
    if bad:
        raise ValueError(f"expected SMILES strings or RDKit molecules; position {bad[0]} holds {array[bad[0]]!r} "
                         f"({type(array[bad[0]]).__name__}){f' and {len(bad) - 1} more' if len(bad) > 1 else ''}")
    return [s if isinstance(s, str) else Chem.MolToSmiles(s) if s.GetNumAtoms() else "" for s in array]


def fingerprint_rows(encoder: MolecularEncoder, reader: Any, batch_size: int = 256, n_jobs: int = 1,
                     progress: Optional[bool] = None, precision: str = "fp32") -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """(fingerprints, status, input table) of every row of a :class:`~molssl.chem.data.inputs.MoleculeReader`,
    featurized and encoded chunk by chunk; rows without a valid molecule get NaN rows and their reason."""
    from molssl.core.progress import Progress

    features, status, tables = [], [], []
    with Progress("fingerprints", total=None, enabled=progress) as bar:
        for chunk in reader.chunks():
            batches = SmilesBatches(chunk.smiles, batch_size, workers=n_jobs, progress=False, desc="fingerprints",
                                    featurizer=encoder.config.featurizer)
            features.append(encode_batches(encoder, batches, precision))
            reasons = chunk.reasons or {}
            status += [f"invalid: {reasons[i]}" if i in reasons else st for i, st in enumerate(batches.status)]
            tables.append(chunk.table)
            bar.update(len(chunk))
    if not tables:
        raise MolsslError(f"{reader.name} contains no molecules")
    return np.concatenate(features), status, pd.concat(tables)


def fingerprint(smiles: Any, model: str | Path | MolecularEncoder = DEFAULT_ENCODER,
                errors: str = "raise", batch_size: int = 256, device: str = "cpu", threads: Optional[int] = None,
                n_jobs: int = 1, progress: Optional[bool] = None, workers: Optional[int] = None,
                precision: str = "fp32") -> np.ndarray:
    """Learned fingerprints, (n, d) float32, rows in input order.

    ``smiles``: SMILES strings or RDKit molecules (one, a sequence, a pandas Series, or a DataFrame
    with a SMILES/``Mol`` column). ``errors="raise"``: invalid SMILES raise
    :class:`InvalidSmilesInput` naming all of them; ``errors="nan"``: they give rows of NaN.
    ``n_jobs > 1`` featurizes in that many processes while the encoder runs (``workers`` is its old
    name); ``threads`` sets torch's CPU threads for the call; ``precision``: fp32 (default: the same
    numbers on every machine), bf16, or auto (bf16 where the CPU has AMX or on CUDA).
    """
    if errors not in ERROR_MODES:
        raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")
    if workers is not None:
        warnings.warn("workers= is now n_jobs= (scikit-learn's name)", DeprecationWarning, stacklevel=2)
        n_jobs = workers
    smiles = _as_smiles_list(smiles)
    encoder = load_encoder(model, device)
    precision = resolve_precision(precision, next(encoder.parameters()).device)
    with torch_threads(threads):
        out, status = encode_smiles(encoder, smiles, batch_size, n_jobs, progress, precision)
    invalid = invalid_inputs(smiles, status)
    if invalid and errors == "raise":
        raise InvalidSmilesInput(invalid)
    return out


class MolecularFingerprint(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: SMILES (1-D, or one column) -> learned fingerprints (n, d).

    ``fit`` loads the encoder (``model``: a shipped encoder name, an ``encoder.pt`` or a fine-tuned
    ``model.pt``) into ``encoder_``; it learns nothing from the data, so pipelines can wrap it
    freely. ``errors="nan"`` turns invalid SMILES into NaN rows (follow it with an imputer);
    ``n_threads``, ``n_jobs`` (featurization processes), ``batch_size`` and ``precision`` (fp32, bf16,
    auto) control speed. RDKit ``Mol``
    objects are accepted as well as SMILES. Pickling keeps the loaded encoder.
    """

    def __init__(self, model: str = DEFAULT_ENCODER, batch_size: int = 256, n_threads: Optional[int] = None,
                 device: str = "cpu", errors: str = "raise", n_jobs: int = 1, precision: str = "fp32") -> None:
        self.model = model
        self.precision = precision
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.device = device
        self.errors = errors
        self.n_jobs = n_jobs

    def fit(self, X, y=None) -> "MolecularFingerprint":  # noqa: N803 - scikit-learn's names
        if self.errors not in ERROR_MODES:
            raise ValueError(f"errors must be one of {ERROR_MODES}, got {self.errors!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        _as_smiles_list(X)
        self.encoder_ = load_encoder(self.model, self.device)
        self.n_features_out_ = self.encoder_.config.feat_dim
        return self

    def transform(self, X) -> np.ndarray:  # noqa: N803
        check_is_fitted(self, "encoder_")
        smiles = _as_smiles_list(X)
        with torch_threads(self.n_threads):
            precision = resolve_precision(self.precision, next(self.encoder_.parameters()).device)
            out, status = encode_smiles(self.encoder_, smiles, self.batch_size, self.n_jobs, False, precision)
        invalid = invalid_inputs(smiles, status)
        if invalid and self.errors == "raise":
            raise InvalidSmilesInput(invalid)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        return np.asarray([f"fp{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = []
        return tags
