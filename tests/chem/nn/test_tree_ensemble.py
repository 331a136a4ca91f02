"""A forest as arrays: scikit-learn's probabilities from numpy, and arrays that could loop, index out of bounds or
give impossible probabilities refused on load."""
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from molssl.chem.nn.tree_ensemble import LEAF_LEVELS, TreeEnsemble
from molssl.errors import CorruptFileError


def _data(seed=0, n=300, d=12, binary=False):
    rng = np.random.default_rng(seed)
    x = (rng.uniform(size=(n, d)) < 0.3).astype(float) if binary else rng.normal(size=(n, d)) * 10
    y = np.stack([x[:, 0] + x[:, 1] > (0.5 if binary else 0), x[:, 2] > x[:, 3], rng.uniform(size=n) < 0.2], axis=1)
    return x, y.astype(int)


@pytest.mark.parametrize("binary", [False, True])
def test_the_arrays_give_scikit_learns_probabilities(binary):
    x, y = _data(binary=binary)
    multi = RandomForestClassifier(n_estimators=20, max_leaf_nodes=16, random_state=0).fit(x[:200], y[:200])
    trees = TreeEnsemble.from_forest(multi)
    expected = np.stack([p[:, 1] for p in multi.predict_proba(x[200:])], axis=1)
    assert trees.n_outputs == 3 and np.allclose(trees.predict(x[200:]), expected, rtol=0, atol=1e-12)
    single = RandomForestClassifier(n_estimators=30, class_weight="balanced", random_state=1).fit(x[:200], y[:200, 0])
    assert np.allclose(TreeEnsemble.from_forest(single).predict(x[200:])[:, 0], single.predict_proba(x[200:])[:, 1],
                       rtol=0, atol=1e-12)


def test_an_output_trained_on_one_class_predicts_it():
    x, y = _data()
    y[:, 2] = 0
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    assert np.all(TreeEnsemble.from_forest(forest).predict(x)[:, 2] == 0.0)


def test_the_compact_arrays_load_back_to_the_same_predictions():
    x, y = _data(binary=True)
    trees = TreeEnsemble.from_forest(RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y))
    arrays = trees.to_arrays()
    assert arrays["left"].dtype == np.int32 and arrays["threshold"].dtype == np.float32
    assert arrays["value"].dtype == np.uint8
    again = TreeEnsemble.from_arrays(arrays, x.shape[1])
    # the same leaves (thresholds rounded down to float32 keep every comparison); probabilities in steps of 1/255
    assert np.allclose(again.predict(x), trees.predict(x), rtol=0, atol=0.5 / LEAF_LEVELS + 1e-12)
    with pytest.raises(ValueError, match="12 features"):
        again.predict(x[:, :5])


def _tampered(change):
    x, y = _data()
    trees = TreeEnsemble.from_forest(RandomForestClassifier(n_estimators=3, max_leaf_nodes=6, random_state=0).fit(x, y))
    arrays = {k: v.copy() for k, v in trees.to_arrays().items()}
    arrays["value"] = arrays["value"] / LEAF_LEVELS  # probabilities as floats, which can be made impossible
    change(arrays)
    return arrays


@pytest.mark.parametrize("change, problem", [
    (lambda a: a["left"].__setitem__(0, 0), "does not follow its parent"),  # a node its own child: an endless loop
    (lambda a: a["right"].__setitem__(0, len(a["right"]) + 5), "does not follow its parent"),
    (lambda a: a["right"].__setitem__(0, a["roots"][1]), "inside the same tree"),  # into the next tree
    (lambda a: a["left"].__setitem__(0, -1), "one child"),
    (lambda a: a["feature"].__setitem__(0, 99), "feature outside"),
    (lambda a: a["threshold"].__setitem__(0, np.nan), "finite threshold"),
    (lambda a: a["value"].__setitem__((1, 0), 1.5), "outside \\[0, 1\\]"),
    (lambda a: a["value"].__setitem__((1, 0), np.nan), "outside \\[0, 1\\]"),
    (lambda a: a.__setitem__("feature", a["feature"][:-1]), "different lengths"),
    (lambda a: a.__setitem__("roots", a["roots"][::-1]), "tree starts"),
    (lambda a: a.pop("threshold"), "lack threshold"),
])
def test_arrays_that_could_loop_or_read_out_of_bounds_are_refused(change, problem):
    with pytest.raises(CorruptFileError, match=problem):
        TreeEnsemble.from_arrays(_tampered(change), 12, source="model.pt")
