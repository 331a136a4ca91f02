"""Learned molecular fingerprints: the encoder's representation h (``feat_lin`` output) per molecule.

``fingerprint(smiles)`` for plain Python, :class:`MolecularFingerprint` for scikit-learn pipelines.
Featurization and batching are those of training (:mod:`molssl.chem.data.sources`), in the encoder's vocabulary.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from molssl.chem.data.sources import OK, SmilesBatches
from molssl.chem.nn.encoders import MolecularEncoder
from molssl.core.device import move_to, resolve_device, torch_threads
from molssl.errors import MolsslError

DEFAULT_ENCODER = "molclr-gin"
ERROR_MODES = ("raise", "nan")


class InvalidSmilesInput(MolsslError, ValueError):
    """Some inputs are not valid molecules; ``.invalid`` lists (position, SMILES, reason)."""

    def __init__(self, invalid: list[tuple[int, str, str]]) -> None:
        self.invalid = invalid
        shown = "; ".join(f"#{i}: {s!r} ({reason})" for i, s, reason in invalid[:10])
        more = f" and {len(invalid) - 10} more" if len(invalid) > 10 else ""
        super().__init__(f"{len(invalid)} invalid SMILES (0-based positions) — {shown}{more}. "
                         "Fix or remove them, or pass errors='nan' to get NaN rows for them.")


def load_encoder(model: str | Path | MolecularEncoder = DEFAULT_ENCODER, device: str = "cpu") -> MolecularEncoder:
    """An encoder in eval mode: a shipped encoder's name, an ``encoder.pt`` (pre-training), a pre-training
    run directory, or a fine-tuned ``model.pt`` (its fine-tuned encoder)."""
    from molssl.chem.serve.loading import resolve_encoder

    encoder = model if isinstance(model, MolecularEncoder) else resolve_encoder(model)[0]
    return encoder.to(resolve_device(device)).eval()


@torch.no_grad()
def encode_batches(encoder: MolecularEncoder, batches: SmilesBatches) -> np.ndarray:
    """(n_inputs, feat_dim) float32 representations; NaN rows where ``batches.status`` is not ok."""
    device = next(encoder.parameters()).device
    out = np.full((len(batches), encoder.config.feat_dim), np.nan, dtype=np.float32)
    encoder.eval()
    for rows, batch in batches:
        out[rows] = encoder.represent(move_to(batch, device)).float().cpu().numpy()
    return out


def encode_smiles(encoder: MolecularEncoder, smiles: Sequence[str], batch_size: int = 256, workers: int = 1,
                  progress: Optional[bool] = None) -> tuple[np.ndarray, list[str]]:
    """(representations with NaN rows for invalid SMILES, per-input status)."""
    batches = SmilesBatches(smiles, batch_size, workers=workers, progress=progress, desc="fingerprints",
                            featurizer=encoder.config.featurizer)
    return encode_batches(encoder, batches), batches.status


def invalid_inputs(smiles: Sequence[str], status: list[str]) -> list[tuple[int, str, str]]:
    """(position, SMILES, reason) of every input whose status is not ok."""
    return [(i, s, st.removeprefix("invalid: ")) for i, (s, st) in enumerate(zip(smiles, status)) if st != OK]


def _as_smiles_list(smiles: Sequence[str] | str) -> list[str]:
    if isinstance(smiles, str):
        return [smiles]
    array = np.asarray(smiles, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # a one-column table (e.g. from ColumnTransformer)
    if array.ndim != 1:
        raise ValueError(f"expected a sequence of SMILES strings (or one column of them), got shape {array.shape}")
    bad = [i for i, s in enumerate(array) if not isinstance(s, str)]
    if bad:
        raise ValueError(f"expected SMILES strings; position {bad[0]} holds {array[bad[0]]!r} "
                         f"({type(array[bad[0]]).__name__}){f' and {len(bad) - 1} more' if len(bad) > 1 else ''}")
    return array.tolist()


def fingerprint(smiles: Sequence[str] | str, model: str | Path | MolecularEncoder = DEFAULT_ENCODER,
                errors: str = "raise", batch_size: int = 256, device: str = "cpu", threads: Optional[int] = None,
                workers: int = 1, progress: Optional[bool] = None) -> np.ndarray:
    """Learned fingerprints, (n, d) float32, rows in input order.

    ``errors="raise"``: invalid SMILES raise :class:`InvalidSmilesInput` naming all of them;
    ``errors="nan"``: they give rows of NaN. ``workers > 1`` featurizes in that many processes
    while the encoder runs; ``threads`` sets torch's CPU threads for the call.
    """
    if errors not in ERROR_MODES:
        raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")
    smiles = _as_smiles_list(smiles)
    encoder = load_encoder(model, device)
    with torch_threads(threads):
        out, status = encode_smiles(encoder, smiles, batch_size, workers, progress)
    invalid = invalid_inputs(smiles, status)
    if invalid and errors == "raise":
        raise InvalidSmilesInput(invalid)
    return out


class MolecularFingerprint(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: SMILES (1-D, or one column) -> learned fingerprints (n, d).

    ``fit`` loads the encoder (``model``: a shipped encoder name, an ``encoder.pt`` or a fine-tuned
    ``model.pt``) into ``encoder_``; it learns nothing from the data, so pipelines can wrap it
    freely. ``errors="nan"`` turns invalid SMILES into NaN rows (follow it with an imputer);
    ``n_threads`` and ``batch_size`` control speed. Pickling keeps the loaded encoder.
    """

    def __init__(self, model: str = DEFAULT_ENCODER, batch_size: int = 256, n_threads: Optional[int] = None,
                 device: str = "cpu", errors: str = "raise") -> None:
        self.model = model
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.device = device
        self.errors = errors

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
            out, status = encode_smiles(self.encoder_, smiles, self.batch_size, progress=False)
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
