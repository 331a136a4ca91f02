"""Compact random forests carried inside a property classifier, averaged with its network (a consensus member).

Why: on SIDER's cross-validation folds, the plain mean of a GNN fold ensemble's probabilities with those of small
random forests on ECFP4 bits and on RDKit descriptors, trained on the same fold molecules, classified better than the
GNN alone in every fold (benchmarks/results/quality_ablation.md, twenty-eighth section). The forests are stored as
buffers of the model (:class:`Forests`), so they travel inside its file, are covered by its weights' digest and are
checked as trees (:meth:`molssl.chem.nn.tree_ensemble.TreeEnsemble.from_arrays`) before they are used.

Stored form: :meth:`~molssl.chem.nn.tree_ensemble.TreeEnsemble.to_arrays` (thresholds as float32 rounded down, so
every molecule reaches scikit-learn's leaf; leaf probabilities in steps of 1/255).
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import torch
from torch import Tensor, nn

from molssl.chem.data.extras import get_extra
from molssl.chem.nn.tree_ensemble import ARRAYS, TreeEnsemble
from molssl.errors import CorruptFileError

FOREST_INPUTS = ("ecfp2048", "rdkit2d")  # store extras a forest may read: ECFP4 bits (0/1) or raw RDKit descriptors
INDEX_ARRAYS = ("left", "right", "feature")


def input_width(name: str) -> int:
    """Features per molecule a forest on store extra ``name`` reads (fingerprint bytes unpack to 8 bits)."""
    extra = get_extra(name)
    return extra.width * (8 if extra.dtype == "uint8" else 1)


def forest_inputs(features: Mapping[str, Tensor], name: str, median: Optional[Tensor]) -> np.ndarray:
    """The float32 input of the forest on ``name`` from a batch's molecule features (descriptors NaN -> ``median``)."""
    values = features[name]
    if name == "ecfp2048":
        return np.unpackbits(values.cpu().numpy(), axis=1).astype(np.float32)
    values = values.float()
    return torch.where(torch.isnan(values), median, values).cpu().numpy()


class Forests(nn.Module):
    """Random forests of one classifier, one per input in :data:`FOREST_INPUTS`; ``spec`` gives each forest's size
    (``{"ecfp2048": {"trees": 100, "nodes": 6300, "outputs": 27}, ...}``) so the buffers exist before loading."""

    def __init__(self, spec: Mapping[str, Mapping[str, int]]) -> None:
        super().__init__()
        unknown = sorted(set(spec) - set(FOREST_INPUTS))
        if unknown or not spec:
            raise ValueError(f"forests read {' or '.join(FOREST_INPUTS)}, got {sorted(spec) or 'none'}")
        self.spec = {name: {k: int(spec[name][k]) for k in ("trees", "nodes", "outputs")} for name in FOREST_INPUTS
                     if name in spec}
        if any(size < 1 for sizes in self.spec.values() for size in sizes.values()):
            raise ValueError(f"forest sizes must be positive, got {self.spec}")
        for name, size in self.spec.items():
            self.register_buffer(f"{name}_roots", torch.zeros(size["trees"], dtype=torch.int32))
            for array in INDEX_ARRAYS:
                self.register_buffer(f"{name}_{array}", torch.zeros(size["nodes"], dtype=torch.int32))
            self.register_buffer(f"{name}_threshold", torch.zeros(size["nodes"], dtype=torch.float32))
            self.register_buffer(f"{name}_value", torch.zeros(size["nodes"], size["outputs"], dtype=torch.uint8))
            if name == "rdkit2d":  # the training molecules' descriptor medians, for what RDKit could not compute
                self.register_buffer("rdkit2d_median", torch.zeros(input_width(name)))
        self._trees: Optional[dict[str, TreeEnsemble]] = None

    @classmethod
    def from_ensembles(cls, ensembles: Mapping[str, TreeEnsemble],
                       descriptor_median: Optional[np.ndarray] = None) -> "Forests":
        """The stored form of fitted forests (``descriptor_median``: what a descriptor forest imputes)."""
        forests = cls({name: {"trees": len(t.roots), "nodes": len(t.left), "outputs": t.n_outputs}
                       for name, t in ensembles.items()})
        for name, trees in ensembles.items():
            if trees.n_features != input_width(name):
                raise ValueError(f"a forest on {name} must read {input_width(name)} features, not {trees.n_features}")
            for array, values in trees.to_arrays().items():
                getattr(forests, f"{name}_{array}").copy_(torch.from_numpy(values))
        if "rdkit2d" in forests.spec:
            if descriptor_median is None:
                raise ValueError("a forest on rdkit2d needs the training molecules' descriptor medians")
            forests.rdkit2d_median.copy_(torch.as_tensor(descriptor_median, dtype=torch.float32))
        return forests

    def describe(self) -> dict:
        return {name: dict(size) for name, size in self.spec.items()}

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._trees = None  # checked again before the next prediction

    def check(self, source: str = "model file") -> dict[str, TreeEnsemble]:
        """The forests as :class:`TreeEnsemble` s, after checking that they are finite, well-formed trees
        (:class:`~molssl.errors.CorruptFileError` naming ``source`` otherwise)."""
        if self._trees is None:
            trees = {}
            for name in self.spec:
                arrays = {array: getattr(self, f"{name}_{array}").cpu().numpy() for array in ARRAYS}
                trees[name] = TreeEnsemble.from_arrays(arrays, input_width(name), f"{source}, forest on {name}")
            median = getattr(self, "rdkit2d_median", None)
            if median is not None and not torch.isfinite(median).all():
                raise CorruptFileError(f"{source}: the descriptor forest's medians are not finite")
            self._trees = trees
        return self._trees

    def predict(self, features: Optional[Mapping[str, Tensor]]) -> Tensor:
        """(n_molecules, n_outputs) P(class 1) of every forest, float64, stacked on a first axis (one per forest)."""
        if features is None or any(name not in features for name in self.spec):
            raise ValueError(f"this model's forests read {tuple(self.spec)}; build its batches with features=model.inputs")
        median = getattr(self, "rdkit2d_median", None)
        return torch.stack([torch.from_numpy(trees.predict(forest_inputs(features, name, median)))
                            for name, trees in self.check().items()])
