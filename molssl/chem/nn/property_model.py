"""Property models: a molecular encoder, optional molecule-level features, and a task head.

A *hybrid* model concatenates the graph representation h with molecule-level vectors computed by
the store (``features``: ``rdkit2d`` = RDKit's 2D descriptor list, ``ecfp2048`` = ECFP4 bits)
before the head. Descriptors are imputed with the training median where RDKit failed, then scaled
with training statistics (``descriptor_scaling``): ``standard`` standardizes and clips to
+-:data:`CLIP` (heavy-tailed descriptors such as Ipc would otherwise dominate); ``quantile`` maps each
descriptor through its training distribution onto a standard normal (:func:`quantile_normal`), the
way chemprop's ``rdkit_2d_normalized`` uses CDFs, so that a rare count or a long tail neither
dominates nor vanishes. Fingerprint bits enter as 0/1. The statistics are buffers, so they travel
inside ``model.pt``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.chem.data.batch import GraphBatch
from molssl.chem.data.descriptors import column_medians
from molssl.chem.data.extras import get_extra
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.forests import Forests, input_width
from molssl.chem.nn.similarity import unpack_bits
from molssl.core.heads import MLPHead

FEATURE_SETS = {"none": (), "rdkit2d": ("rdkit2d",), "ecfp4": ("ecfp2048",), "rdkit2d+ecfp4": ("rdkit2d", "ecfp2048")}
CLIP = 6.0
DESCRIPTOR_SCALINGS = ("standard", "quantile")
QUANTILE_KNOTS = 101  # training-set percentiles 0, 1, ..., 100 of each descriptor
QUANTILE_TAIL = 1e-3  # probabilities are kept in [tail, 1 - tail]: at most +-3.09 after the normal quantile
TASK_TYPES = ("classification", "regression")


def feature_extras(name: str) -> tuple[str, ...]:
    """Store extras behind a ``--features`` choice (``none``, ``rdkit2d``, ``ecfp4``, ``rdkit2d+ecfp4``)."""
    if name not in FEATURE_SETS:
        raise ValueError(f"--features must be one of {', '.join(FEATURE_SETS)}, got {name!r}")
    return FEATURE_SETS[name]


def feature_width(extras: Sequence[str]) -> int:
    """Inputs the head gets from molecule-level features (unpacked bits count 8 per stored byte)."""
    return sum(input_width(e) for e in extras)


class PropertyModel(nn.Module):
    """Molecular encoder + (features) + task head; ``forward`` gives logits (classification) or standardized values.

    ``target_mean``/``target_std`` (buffers) undo the standardization of regression targets;
    :meth:`predict_batch` returns probabilities or values in the targets' own units. A classifier may carry
    random forests (``forests``, :mod:`molssl.chem.nn.forests`) added after training: its probabilities are then
    the plain mean of the network's and each forest's.
    """

    def __init__(self, encoder_config: EncoderConfig, tasks: Sequence[str], task_type: str,
                 smiles_column: str = "smiles", units: Optional[str] = None, freeze_encoder: bool = False,
                 features: Sequence[str] = (), descriptor_scaling: str = "standard",
                 forests: Optional[dict] = None) -> None:
        super().__init__()
        if task_type not in TASK_TYPES:
            raise ValueError(f"task type must be 'classification' or 'regression', got {task_type!r}")
        if descriptor_scaling not in DESCRIPTOR_SCALINGS:
            raise ValueError(f"descriptor scaling must be one of {', '.join(DESCRIPTOR_SCALINGS)}, "
                             f"got {descriptor_scaling!r}")
        self.descriptor_scaling = descriptor_scaling
        self.encoder = MolecularEncoder(encoder_config)
        self.features = tuple(features)
        feat = encoder_config.feat_dim
        self.head = MLPHead([feat + feature_width(self.features), feat // 2, feat // 2, len(tasks)],
                            activation=nn.Softplus)
        self.tasks = list(tasks)
        self.task_type = task_type
        self.smiles_column = smiles_column
        self.units = units
        self.freeze_encoder = freeze_encoder
        self.meta: dict = {}  # run information of a loaded model.pt (dataset, protocol, seed, scores, ...)
        self.register_buffer("target_mean", torch.zeros(len(tasks)))
        self.register_buffer("target_std", torch.ones(len(tasks)))
        if "rdkit2d" in self.features:  # only hybrid models carry descriptor statistics (older files have none)
            n_descriptors = get_extra("rdkit2d").width
            self.register_buffer("descriptor_median", torch.zeros(n_descriptors))
            self.register_buffer("descriptor_mean", torch.zeros(n_descriptors))
            self.register_buffer("descriptor_std", torch.ones(n_descriptors))
            if descriptor_scaling == "quantile":
                knots = torch.linspace(0, 1, QUANTILE_KNOTS).repeat(n_descriptors, 1)
                self.register_buffer("descriptor_knots", knots)
        if forests and task_type != "classification":
            raise ValueError("only classifiers carry forests")
        self.forests = Forests(forests) if forests else None
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Store extras a batch needs for :meth:`predict_batch`: the head's features and the forests' inputs."""
        return tuple(dict.fromkeys((*self.features, *(self.forests.spec if self.forests is not None else ()))))

    def set_forests(self, forests: Optional[Forests]) -> None:
        """Carry ``forests`` (fitted on this model's training molecules) from now on; None removes them."""
        if forests is not None and self.task_type != "classification":
            raise ValueError("only classifiers carry forests")
        self.forests = forests

    def fit_feature_statistics(self, descriptors: Optional[np.ndarray]) -> dict:
        """Set the descriptor median/mean/std from the training molecules' raw descriptors; returns counts."""
        if "rdkit2d" not in self.features:
            return {}
        values = np.asarray(descriptors, dtype=np.float64)
        missing = np.isnan(values)
        median = column_medians(values)
        filled = np.where(missing, median, values)
        std = filled.std(axis=0)
        self.descriptor_median.copy_(torch.as_tensor(median, dtype=torch.float32))
        self.descriptor_mean.copy_(torch.as_tensor(filled.mean(axis=0), dtype=torch.float32))
        self.descriptor_std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))
        if self.descriptor_scaling == "quantile":
            knots = np.quantile(filled.astype(np.float32), np.linspace(0, 1, QUANTILE_KNOTS), axis=0).T
            self.descriptor_knots.copy_(torch.as_tensor(knots, dtype=torch.float32))
        return {"descriptor_values_imputed": int(missing.sum()),
                "molecules_with_imputed_descriptors": int(missing.any(axis=1).sum())}

    def train(self, mode: bool = True) -> "PropertyModel":
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()  # linear probe: BatchNorm statistics and dropout of the encoder stay fixed
        return self

    def molecule_features(self, batch: GraphBatch, dtype: torch.dtype) -> list[Tensor]:
        """The normalized molecule-level inputs of the head, in ``self.features`` order."""
        if not self.features:
            return []
        if batch.features is None or any(name not in batch.features for name in self.features):
            raise ValueError(f"this model needs the molecule features {self.features}; build its batches with "
                             "features=model.features")
        out = []
        for name in self.features:
            values = batch.features[name]
            if name == "rdkit2d":
                values = values.float()
                values = torch.where(torch.isnan(values), self.descriptor_median, values)
                if self.descriptor_scaling == "quantile":
                    values = quantile_normal(values, self.descriptor_knots)
                else:
                    values = ((values - self.descriptor_mean) / self.descriptor_std).clamp(-CLIP, CLIP)
            else:
                values = unpack_bits(values)
            out.append(values.to(dtype))
        return out

    def forward(self, batch: GraphBatch) -> Tensor:
        h = self.encoder.represent(batch).float()
        x = torch.cat([h, *self.molecule_features(batch, h.dtype)], dim=1) if self.features else h
        # The head (a few small layers) stays fp32 under bf16 autocast: a bf16 output has ~3 significant
        # digits, which quantized predictions (0.03 logS steps) and collapsed close ensemble members' spread to 0.
        with torch.autocast(x.device.type, enabled=False):
            return self.head(x)

    def predict_batch(self, batch: GraphBatch) -> Tensor:
        out = self(batch).float()
        if self.task_type == "classification":
            if self.forests is None:
                return torch.sigmoid(out)
            parts = torch.cat([torch.sigmoid(out.double()).cpu()[None], self.forests.predict(batch.features)])
            return parts.mean(dim=0).to(out.device)
        return out * self.target_std + self.target_mean

    def parameter_groups(self, lr_encoder: float, lr_head: float) -> list[dict]:
        """Adam groups: encoder (without its unused projection head) and task head, with their own rates."""
        groups = [{"params": list(self.head.parameters()), "lr": lr_head}]
        if not self.freeze_encoder:
            encoder = [p for name, p in self.encoder.named_parameters() if not name.startswith("head.")]
            groups.insert(0, {"params": encoder, "lr": lr_encoder})
        return groups

    def describe(self) -> dict:
        """What rebuilds this model (saved in ``model.pt`` beside the weights)."""
        return {"encoder_config": self.encoder.config.to_dict(), "tasks": self.tasks, "task_type": self.task_type,
                "smiles_column": self.smiles_column, "units": self.units, "freeze_encoder": self.freeze_encoder,
                "features": list(self.features), "descriptor_scaling": self.descriptor_scaling,
                "head": {"dims": [m.out_features for m in self.head.net if isinstance(m, nn.Linear)],
                         "activation": "softplus"},
                "target_mean": self.target_mean.tolist(), "target_std": self.target_std.tolist(),
                **({"forests": self.forests.describe()} if self.forests is not None else {})}


def quantile_normal(values: Tensor, knots: Tensor) -> Tensor:
    """Each column of ``values`` (n, d) through its training quantiles ``knots`` (d, k, non-decreasing) onto a
    standard normal: the empirical CDF, linear between knots, then the normal quantile.

    A value equal to several knots (a count that is 0 for most training molecules) gets the middle of their
    probabilities, so a common value lands near 0 whichever end of the range it is at (scikit-learn's
    ``QuantileTransformer`` averages the same way inside the range but pins ties at the training minimum
    to its lowest probability, which would read -5.2 for such a count). Values outside the training range
    get the end probabilities; a descriptor constant on the training set gives 0 (the head never saw it vary).
    """
    knots = knots.contiguous()
    columns = values.t().contiguous()  # (d, n): searchsorted runs along each descriptor's knots
    steps = knots.shape[1] - 1
    lo = torch.searchsorted(knots, columns, right=False)  # first knot >= value
    hi = torch.searchsorted(knots, columns, right=True)  # first knot > value
    below = knots.gather(1, (lo - 1).clamp(0, steps))
    above = knots.gather(1, lo.clamp(0, steps))
    gap = above - below
    fraction = ((columns - below) / gap.where(gap > 0, 1.0)).where(gap > 0, 0.0)  # 0 where two knots coincide
    between = (lo - 1).to(columns.dtype) + fraction  # strictly between two knots (lo == hi)
    on_knots = (lo + hi - 1).to(columns.dtype) / 2  # equal to knots lo .. hi - 1
    position = torch.where(hi > lo, on_knots, between).clamp(0, steps)
    probability = (position / steps).clamp(QUANTILE_TAIL, 1 - QUANTILE_TAIL)
    normal = torch.special.ndtri(probability)
    constant = (knots[:, -1] == knots[:, 0]).unsqueeze(1)
    return torch.where(constant, torch.zeros_like(normal), normal).t()


def masked_loss(out: Tensor, target: Tensor, task_type: str, metric: str,
                pos_weight: Optional[Tensor] = None) -> Tensor:
    """Mean loss over the labelled entries only (``target`` is NaN where a label is missing).

    ``pos_weight`` (per task): weight of positive examples in the binary cross entropy, e.g. from
    ``--class-weight balanced``.
    """
    mask = ~torch.isnan(target)
    filled = torch.where(mask, target, torch.zeros_like(target))
    out = out.float()
    if task_type == "classification":
        each = F.binary_cross_entropy_with_logits(out, filled, reduction="none", pos_weight=pos_weight)
    elif metric == "mae":
        each = (out - filled).abs()
    else:
        each = (out - filled) ** 2
    return (each * mask).sum() / mask.sum().clamp(min=1)
