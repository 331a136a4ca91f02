"""Scaffold, random-scaffold and random splits: hand-checked cases, invariants, reference equality."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molssl.chem.data.labelled import load_dataset
from molssl.chem.data.splits import (fold_set_sizes, random_scaffold_split, random_split, scaffold_fold, scaffold_groups,
                                scaffold_split)

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "moleculenet"  # beside the repo

# scaffolds: benzene {0, 1, 5}, cyclohexane {2, 6}, acyclic "" {3, 4, 9}, naphthalene {7},
# cyclopropane {8}
SMILES = ["c1ccccc1C", "c1ccccc1O", "C1CCCCC1C", "CCO", "CCCC", "c1ccccc1N", "C1CCCCC1O",
          "c1ccc2ccccc2c1", "C1CC1", "CCN"]


@pytest.fixture(scope="module")
def bbbp_smiles() -> list[str]:
    if not SHARED.is_dir():
        pytest.skip("reference MoleculeNet copies absent")
    return load_dataset("bbbp", SHARED).smiles  # the 11 unparsable SMILES are left out


def assert_partition(split, n):
    joined = np.concatenate(split)
    assert joined.dtype == np.int64 and len(joined) == n
    assert np.array_equal(np.sort(joined), np.arange(n))  # no overlap, full coverage


def test_scaffold_split_hand_checked():
    # sorted by (size, first index) descending: "" (3, 3), benzene (3, 0), cyclohexane (2, 2),
    # cyclopropane (1, 8), naphthalene (1, 7); train cutoff 8, train + valid cutoff 9
    train, valid, test = scaffold_split(SMILES)
    assert train.tolist() == [3, 4, 9, 0, 1, 5, 2, 6]
    assert valid.tolist() == [8] and test.tolist() == [7]


def test_scaffold_split_keeps_scaffold_sets_whole():
    split = scaffold_split(SMILES, frac=(0.5, 0.3, 0.2))
    assert_partition(split, len(SMILES))
    where = {int(i): k for k, part in enumerate(split) for i in part}
    for group in scaffold_groups(SMILES).values():
        assert len({where[i] for i in group}) == 1


def test_scaffold_chirality_option():
    pair = ["c1ccccc1[C@@H]1CCCN1", "c1ccccc1[C@H]1CCCN1"]
    assert len(scaffold_groups(pair)) == 1
    assert len(scaffold_groups(pair, include_chirality=True)) == 2


def test_invalid_smiles_are_named_not_skipped():
    with pytest.raises(ValueError, match=r"2 SMILES cannot be parsed by RDKit \(positions 1, 3\)"):
        scaffold_split(["CCO", "C1CC", "CCC", ""])


@pytest.mark.parametrize("frac", [(0.8, 0.1), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)])
def test_bad_fractions_rejected(frac):
    with pytest.raises(ValueError, match="three non-negative fractions"):
        scaffold_split(SMILES, frac=frac)


def test_random_split_seeded_partition():
    a, b, c = random_split(101, seed=3), random_split(101, seed=3), random_split(101, seed=4)
    assert_partition(a, 101)
    assert [len(p) for p in a] == [80, 10, 11]  # int(0.8 n), int(0.9 n) cut points
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.train, c.train)


def test_random_scaffold_split_seeded_and_capped(bbbp_smiles):
    smiles = bbbp_smiles[:500]
    n = len(smiles)
    a = random_scaffold_split(smiles, seed=1)
    b = random_scaffold_split(smiles, seed=1)
    c = random_scaffold_split(smiles, seed=2)
    assert_partition(a, n)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(np.sort(a.test), np.sort(c.test))
    assert len(a.valid) <= int(0.1 * n) and len(a.test) <= int(0.1 * n)
    assert len(a.valid) >= int(0.1 * n) - 5  # filled close to its cap


def hu_random_scaffold_split(smiles, seed, frac_valid=0.1, frac_test=0.1):
    """Transcription of Hu et al. (2020) chem/splitters.py random_scaffold_split (index part):
    it permutes the list of scaffold sets itself with RandomState(seed).permutation."""
    from collections import defaultdict

    from rdkit.Chem.Scaffolds import MurckoScaffold

    scaffolds = defaultdict(list)
    for ind, smi in enumerate(smiles):
        scaffolds[MurckoScaffold.MurckoScaffoldSmiles(smiles=smi, includeChirality=True)].append(ind)
    sets = np.empty(len(scaffolds), dtype=object)  # ragged lists, as old NumPy built implicitly
    sets[:] = list(scaffolds.values())
    scaffold_sets = np.random.RandomState(seed).permutation(sets)
    n_valid, n_test = int(np.floor(frac_valid * len(smiles))), int(np.floor(frac_test * len(smiles)))
    train, valid, test = [], [], []
    for s in scaffold_sets:
        if len(valid) + len(s) <= n_valid:
            valid.extend(s)
        elif len(test) + len(s) <= n_test:
            test.extend(s)
        else:
            train.extend(s)
    return train, valid, test


def test_random_scaffold_split_equals_hu_et_al(bbbp_smiles):
    ours = random_scaffold_split(bbbp_smiles, seed=7)
    theirs = hu_random_scaffold_split(bbbp_smiles, seed=7)
    assert [p.tolist() for p in ours] == [list(p) for p in theirs]


def test_scaffold_split_equals_deepchem_on_bbbp(bbbp_smiles):
    dc = pytest.importorskip("deepchem")
    ids = np.array(bbbp_smiles, dtype=object)
    dataset = dc.data.NumpyDataset(X=np.zeros((len(ids), 1)), ids=ids)
    expected = dc.splits.ScaffoldSplitter().split(dataset, 0.8, 0.1, 0.1)
    ours = scaffold_split(bbbp_smiles)
    assert [p.tolist() for p in ours] == [list(map(int, p)) for p in expected]
    assert [len(p) for p in ours] == [1631, 204, 204]


def test_scaffold_folds_validate_every_pooled_molecule_once_with_whole_scaffolds_and_the_test_kept():
    keys = np.random.default_rng(0).integers(0, 40, 300)
    split = scaffold_split(keys=keys)
    pool = set(np.concatenate([split.train, split.valid]).tolist())
    validated = []
    for fold in range(5):
        part = scaffold_fold(split, keys, 5, fold)
        assert np.array_equal(part.test, split.test)
        assert set(part.train.tolist()) | set(part.valid.tolist()) == pool
        assert not set(keys[part.train].tolist()) & set(keys[part.valid].tolist())  # no scaffold on both sides
        validated += part.valid.tolist()
    assert sorted(validated) == sorted(pool)  # each molecule validated exactly once
    assert np.array_equal(scaffold_fold(split, keys, 5, 3).valid, scaffold_fold(split, keys, 5, 3).valid)


def test_acyclic_molecules_fill_fold_0_together_and_are_shared_out_when_spread():
    """The empty scaffold (every molecule without a ring) is one group by default, as in DeepChem's splitter; spread,
    each is its own group: the folds even out and every fold model trains on acyclic molecules."""
    from rdkit import Chem

    from molssl.chem.data.descriptors import ACYCLIC_SCAFFOLD_KEY, scaffold_key

    assert scaffold_key(Chem.MolFromSmiles("CCO"))[0] == ACYCLIC_SCAFFOLD_KEY != scaffold_key(Chem.MolFromSmiles("c1ccccc1O"))[0]
    rng = np.random.default_rng(0)
    keys = np.where(rng.random(400) < 0.4, ACYCLIC_SCAFFOLD_KEY, rng.integers(0, 60, 400))  # 40% acyclic
    split = scaffold_split(keys=keys)
    acyclic = keys == ACYCLIC_SCAFFOLD_KEY
    together = [scaffold_fold(split, keys, 5, fold) for fold in range(5)]
    assert acyclic[together[0].valid].all() and not acyclic[together[0].train].any()  # fold 0: all of them, alone
    spread = [scaffold_fold(split, keys, 5, fold, acyclic="spread") for fold in range(5)]
    sizes = [part.valid.size for part in spread]
    assert max(sizes) - min(sizes) <= 2 and max(sizes) < together[0].valid.size
    pool = sorted(np.concatenate([split.train, split.valid]).tolist())
    assert sorted(np.concatenate([part.valid for part in spread]).tolist()) == pool  # each validated once
    for part in spread:
        assert np.array_equal(part.test, split.test) and acyclic[part.train].any() and acyclic[part.valid].any()
        ringed = ~acyclic  # ring scaffolds stay whole
        assert not set(keys[part.train][ringed[part.train]].tolist()) & set(keys[part.valid][ringed[part.valid]].tolist())
    with pytest.raises(ValueError, match="acyclic must be one of together, spread"):
        scaffold_fold(split, keys, 5, 0, acyclic="apart")


def test_fold_set_sizes_count_acyclic_molecules_as_the_folds_group_them():
    from rdkit import Chem

    from molssl.chem.data.descriptors import scaffold_key

    def keys(*smiles):
        return [scaffold_key(Chem.MolFromSmiles(s))[0] for s in smiles]

    benzenes = keys("c1ccccc1O", "c1ccccc1N", "Cc1ccccc1")
    assert fold_set_sizes(benzenes) == [3] and fold_set_sizes(benzenes + keys("C1CCCCC1")) == [3, 1]
    assert fold_set_sizes(keys("CCO", "CCN", "CCC")) == [3]  # together: the empty scaffold is one set
    assert fold_set_sizes(keys("CCO", "CCN", "CCC"), "spread") == [1, 1, 1]
    assert fold_set_sizes(keys("CCO", "c1ccccc1O", "c1ccccc1N"), "spread") == [2, 1]
    with pytest.raises(ValueError, match="acyclic must be one of"):
        fold_set_sizes(benzenes, "apart")


def test_scaffold_fold_refuses_impossible_folds():
    keys = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    split = scaffold_split(keys=keys)
    with pytest.raises(ValueError, match="fold must lie in 0..4"):
        scaffold_fold(split, keys, 5, 5)
    with pytest.raises(ValueError, match="need at least 5 scaffolds"):
        scaffold_fold(split, keys, 5, 0)
