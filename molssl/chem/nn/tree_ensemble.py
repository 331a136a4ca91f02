"""A random forest as plain arrays: evaluated with numpy, stored without pickle, checked before use.

Why: averaging a GNN fold ensemble with forests trained on the same folds classifies SIDER better on cross-validation
(benchmarks/fold_consensus.py), but a scikit-learn forest can only be saved by pickling it, and a model file from
outside must never run code. Here a fitted ``RandomForestClassifier`` (one output or several) becomes six arrays;
:meth:`TreeEnsemble.from_arrays` refuses arrays that could loop, index out of bounds or give probabilities outside
[0, 1], so a damaged or hostile file is an error, not a hang or a confident wrong answer. :meth:`TreeEnsemble.predict`
gives scikit-learn's ``predict_proba`` for class 1 of every output (the same float32 inputs and float64 thresholds,
so the same leaf for every molecule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molssl.errors import CorruptFileError

ARRAYS = ("roots", "left", "right", "feature", "threshold", "value")
LEAF_LEVELS = 255  # stored leaf probabilities are multiples of 1/255 (uint8)


def rounded_down(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for a float32 input ``x <= t`` exactly when ``x <= result``."""
    single = np.asarray(threshold, dtype=np.float64).astype(np.float32)
    above = single.astype(np.float64) > threshold
    return np.where(above, np.nextafter(single, np.float32(-np.inf)), single)


@dataclass(frozen=True)
class TreeEnsemble:
    """Trees laid end to end: tree ``i`` holds nodes ``roots[i]`` to ``roots[i + 1] - 1`` (the last to the end).

    ``left``/``right``: children as global node indices, -1 at leaves; ``feature``/``threshold``: the split
    ``x[feature] <= threshold`` goes left; ``value`` (n_nodes, n_outputs): P(class 1) of each output at that node.
    """

    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    n_features: int

    @classmethod
    def from_forest(cls, forest) -> "TreeEnsemble":
        """The arrays of a fitted scikit-learn ``RandomForestClassifier`` (classes 0/1; an output trained on one
        class gives that class's probability, 0 or 1)."""
        classes = forest.classes_ if isinstance(forest.classes_, list) else [forest.classes_]
        roots, left, right, feature, threshold, value = [], [], [], [], [], []
        start = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            internal = tree.children_left >= 0
            roots.append(start)
            left.append(np.where(internal, tree.children_left + start, -1))
            right.append(np.where(internal, tree.children_right + start, -1))
            feature.append(np.where(internal, tree.feature, 0))
            threshold.append(np.where(internal, tree.threshold, 0.0))
            fractions = np.asarray(tree.value, dtype=np.float64)  # (nodes, outputs, classes)
            per_output = []
            for k, labels in enumerate(classes):
                counts = fractions[:, k, :len(labels)]
                total = counts.sum(axis=1)
                positive = counts[:, list(labels).index(1)] if 1 in labels else np.zeros(len(counts))
                per_output.append(positive / np.where(total > 0, total, 1.0))
            value.append(np.stack(per_output, axis=1))
            start += tree.node_count
        return cls.from_arrays({"roots": np.asarray(roots), "left": np.concatenate(left),
                                "right": np.concatenate(right), "feature": np.concatenate(feature),
                                "threshold": np.concatenate(threshold), "value": np.concatenate(value)},
                               int(forest.n_features_in_))

    @classmethod
    def from_arrays(cls, arrays: dict, n_features: int, source: str = "tree ensemble") -> "TreeEnsemble":
        """The ensemble of :meth:`to_arrays`' output (or of the same arrays with leaf probabilities as floats), after
        checking that it is a set of finite trees (``source`` names the file in the error)."""
        missing = [name for name in ARRAYS if name not in arrays]
        if missing:
            raise CorruptFileError(f"{source}: the tree arrays lack {', '.join(missing)}")
        try:
            roots = np.asarray(arrays["roots"], dtype=np.int64)
            left, right = (np.asarray(arrays[k], dtype=np.int64) for k in ("left", "right"))
            feature = np.asarray(arrays["feature"], dtype=np.int64)
            threshold = np.asarray(arrays["threshold"], dtype=np.float64)
            value = np.asarray(arrays["value"])
            value = value / LEAF_LEVELS if value.dtype == np.uint8 else value.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise CorruptFileError(f"{source}: a tree array is not numeric ({error})") from None
        problem = _structure_problem(roots, left, right, feature, threshold, value, int(n_features))
        if problem:
            raise CorruptFileError(f"{source}: {problem}; the file is damaged or was not written by molssl")
        return cls(roots, left, right, feature, threshold, value, int(n_features))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The stored form: indices as int32, thresholds as float32 rounded down (:func:`rounded_down`: every float32
        input still reaches scikit-learn's leaf), leaf probabilities in steps of 1/255 as uint8 (inner nodes 0)."""
        leaf = (self.left < 0)[:, None]
        return {"roots": self.roots.astype(np.int32), "left": self.left.astype(np.int32),
                "right": self.right.astype(np.int32), "feature": self.feature.astype(np.int32),
                "threshold": rounded_down(self.threshold),
                "value": np.where(leaf, np.rint(self.value * LEAF_LEVELS), 0).astype(np.uint8)}

    @property
    def n_outputs(self) -> int:
        return self.value.shape[1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n_molecules, n_outputs) P(class 1), the mean over trees, as scikit-learn's ``predict_proba`` gives it."""
        x = np.asarray(x, dtype=np.float32)  # scikit-learn's trees compare float32 inputs
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"the trees read {self.n_features} features per molecule, got an array of shape {x.shape}")
        nodes = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        rows = np.arange(len(x))[:, None]
        while True:  # children have larger indices than their parent (checked on load), so this ends
            inner = self.left[nodes] >= 0
            if not inner.any():
                break
            goes_left = x[rows, self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(inner, np.where(goes_left, self.left[nodes], self.right[nodes]), nodes)
        return self.value[nodes].mean(axis=1)


def _structure_problem(roots, left, right, feature, threshold, value, n_features: int) -> str:
    """What makes these arrays unsafe or wrong to evaluate ("" when nothing)."""
    n = len(left)
    if value.ndim != 2 or any(a.ndim != 1 or len(a) != n for a in (right, feature, threshold)) or len(value) != n:
        return "the tree arrays have different lengths"
    if roots.ndim != 1 or not len(roots) or roots[0] != 0 or np.any(np.diff(roots) <= 0) or roots[-1] >= n:
        return "the tree starts are not increasing positions inside the node arrays"
    ends = np.repeat(np.r_[roots[1:], n], np.diff(np.r_[roots, n]))  # one past each node's tree
    index = np.arange(n)
    inner = left >= 0
    if np.any(inner != (right >= 0)):
        return "a node has one child"
    for child in (left, right):
        if np.any(inner & ((child <= index) | (child >= ends))):
            return "a child does not follow its parent inside the same tree"
    if np.any(inner & ((feature < 0) | (feature >= n_features))) or np.any(inner & ~np.isfinite(threshold)):
        return f"a split reads a feature outside 0..{n_features - 1} or has no finite threshold"
    if not np.all(np.isfinite(value)) or np.any((value < 0) | (value > 1)):
        return "a leaf probability is outside [0, 1]"
    return ""
