"""Train/valid/test splits for molecules: deterministic scaffold, random scaffold, random.

Every function returns a :class:`Split` of int64 index arrays into the list it was given.

"Scaffold split" means different things in different papers, and results move by many points
between them, so name the one you use:

- :func:`scaffold_split` is DeepChem's ``ScaffoldSplitter`` (the split of MoleculeNet and
  MolCLR): Bemis-Murcko scaffolds without chirality, scaffold sets sorted by (size, smallest
  index) in descending order, each set placed whole into train while train stays within 80%,
  else into valid while train + valid stay within 90%, else into test.
- :func:`random_scaffold_split` is Hu et al. (2020), "Strategies for pre-training graph neural
  networks", ``chem/splitters.py``: scaffolds *with* chirality, scaffold sets in a seeded random
  order, filling valid, then test, with everything else in train.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np


class Split(NamedTuple):
    """Positions of the train, valid and test molecules."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def _check_frac(frac: Sequence[float]) -> tuple[float, float, float]:
    if len(frac) != 3 or any(f < 0 for f in frac) or abs(sum(frac) - 1.0) > 1e-6:
        raise ValueError(f"frac must be three non-negative fractions summing to 1, got {tuple(frac)}")
    return float(frac[0]), float(frac[1]), float(frac[2])


def _as_split(train: list[int], valid: list[int], test: list[int]) -> Split:
    return Split(*(np.asarray(part, dtype=np.int64) for part in (train, valid, test)))


def groups_from_keys(keys: Sequence[int] | np.ndarray) -> list[list[int]]:
    """Positions grouped by equal key (scaffold keys of the store), groups in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(np.asarray(keys).tolist()):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def scaffold_groups(smiles: Sequence[str], include_chirality: bool = False) -> dict[str, list[int]]:
    """Bemis-Murcko scaffold SMILES -> positions of the molecules with that scaffold, in order of
    first appearance. Raises ValueError naming the positions of SMILES RDKit cannot parse."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles

    RDLogger.DisableLog("rdApp.*")
    groups: dict[str, list[int]] = {}
    invalid: list[int] = []
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi) if smi and smi.strip() else None
        if mol is None:
            invalid.append(i)
            continue
        scaffold = MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)
        groups.setdefault(scaffold, []).append(i)
    if invalid:
        shown = ", ".join(map(str, invalid[:10])) + (", ..." if len(invalid) > 10 else "")
        raise ValueError(f"{len(invalid)} SMILES cannot be parsed by RDKit (positions {shown}); "
                         "drop them before splitting (molssl's loaders leave them out)")
    return groups


def scaffold_split(smiles: Optional[Sequence[str]] = None, frac: Sequence[float] = (0.8, 0.1, 0.1),
                   include_chirality: bool = False, keys: Optional[np.ndarray] = None) -> Split:
    """DeepChem's ``ScaffoldSplitter`` split (deterministic; see the module docstring).

    ``keys``: one scaffold key per molecule (from the store) instead of ``smiles`` to parse.
    """
    frac_train, frac_valid, _ = _check_frac(frac)
    groups = groups_from_keys(keys) if keys is not None else list(scaffold_groups(smiles, include_chirality).values())
    # each group is already sorted, so group[0] is its smallest index
    ordered = sorted(groups, key=lambda g: (len(g), g[0]), reverse=True)
    n = len(keys) if keys is not None else len(smiles)
    train_cutoff, valid_cutoff = frac_train * n, (frac_train + frac_valid) * n
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for group in ordered:
        if len(train) + len(group) <= train_cutoff:
            train += group
        elif len(train) + len(valid) + len(group) <= valid_cutoff:
            valid += group
        else:
            test += group
    return _as_split(train, valid, test)


def random_scaffold_split(smiles: Optional[Sequence[str]] = None, frac: Sequence[float] = (0.8, 0.1, 0.1),
                          seed: int = 0, include_chirality: bool = True, keys: Optional[np.ndarray] = None) -> Split:
    """Hu et al.'s seeded random scaffold split (see the module docstring).

    Scaffold sets are visited in the order ``np.random.RandomState(seed).permutation`` gives; a set
    goes to valid if valid stays within floor(frac_valid * n), else to test if test stays within
    floor(frac_test * n), else to train.
    """
    _, frac_valid, frac_test = _check_frac(frac)
    groups = groups_from_keys(keys) if keys is not None else list(scaffold_groups(smiles, include_chirality).values())
    order = np.random.RandomState(seed).permutation(len(groups))
    n = len(keys) if keys is not None else len(smiles)
    n_valid, n_test = int(np.floor(frac_valid * n)), int(np.floor(frac_test * n))
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for k in order:
        group = groups[k]
        if len(valid) + len(group) <= n_valid:
            valid += group
        elif len(test) + len(group) <= n_test:
            test += group
        else:
            train += group
    return _as_split(train, valid, test)


def random_split(n: int, frac: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """A seeded random permutation of ``range(n)`` cut at int(frac_train * n) and
    int((frac_train + frac_valid) * n), as DeepChem's ``RandomSplitter`` cuts."""
    frac_train, frac_valid, _ = _check_frac(frac)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(frac_train * n), int((frac_train + frac_valid) * n)
    return Split(perm[:a].astype(np.int64), perm[a:b].astype(np.int64), perm[b:].astype(np.int64))


FOLD_ACYCLIC = ("together", "spread")


def scaffold_fold(split: Split, keys: np.ndarray, folds: int, fold: int, acyclic: str = "together") -> Split:
    """Fold ``fold`` of ``folds`` over the training and validation molecules of ``split``: that fold (whole scaffold
    sets, by scikit-learn's ``GroupKFold``: the largest set goes to the lightest fold) becomes the validation part,
    the other folds the training part, and the test part is kept as it is.

    Why: fine-tuning settings chosen on one 10% validation split (~150 molecules for BACE) follow its noise; across
    the folds every training molecule is validated once, and the test split is still never looked at.
    ``keys`` holds one scaffold key per position that ``split`` refers to (the store's keys).

    ``acyclic``: ``together`` keeps every molecule without a ring in one group, as DeepChem's splitter does (their
    scaffold is the empty one); being the largest group of most sets, they then make up fold 0 alone (FreeSolv's
    folds: 320, 152, 34, 36, 35 molecules, the 320 all acyclic), whose model never trains on one. ``spread``
    (since 2026-12-06's twenty-fifth session) makes each its own group, so the folds share them out evenly; the
    molecules with rings keep their scaffold groups either way.
    """
    from sklearn.model_selection import GroupKFold

    if not 0 <= fold < folds or folds < 2:
        raise ValueError(f"fold must lie in 0..{folds - 1} of at least 2 folds, got fold {fold} of {folds}")
    if acyclic not in FOLD_ACYCLIC:
        raise ValueError(f"acyclic must be one of {', '.join(FOLD_ACYCLIC)}, got {acyclic!r}")
    pool = np.sort(np.concatenate([split.train, split.valid]))
    scaffolds = np.unique(np.asarray(keys)[pool], return_inverse=True)[1].reshape(-1)  # group numbers 0..G-1
    if acyclic == "spread":
        from molssl.chem.data.descriptors import ACYCLIC_SCAFFOLD_KEY  # RDKit's module: imported only when needed

        alone = np.asarray(keys)[pool] == ACYCLIC_SCAFFOLD_KEY
        scaffolds[alone] = scaffolds.max() + 1 + np.arange(int(alone.sum()))
    if np.unique(scaffolds).size < folds:
        raise ValueError(f"{folds} folds need at least {folds} scaffolds in the training and validation molecules, "
                         f"found {np.unique(scaffolds).size}")
    train, valid = list(GroupKFold(n_splits=folds).split(pool, groups=scaffolds))[fold]
    return Split(pool[train], pool[valid], split.test)


def fold_set_sizes(keys: Sequence[int] | np.ndarray, acyclic: str = "together") -> list[int]:
    """Sizes of the scaffold sets that molecules with scaffold ``keys`` (the store's) fall into as
    :func:`scaffold_fold` groups them (``acyclic`` as there: ``spread`` makes each molecule without a ring a set of
    its own), largest first. One set in a fold means its model never trains on that chemistry."""
    if acyclic not in FOLD_ACYCLIC:
        raise ValueError(f"acyclic must be one of {', '.join(FOLD_ACYCLIC)}, got {acyclic!r}")
    keys = np.asarray(keys, dtype=np.int64)
    if acyclic == "spread":
        from molssl.chem.data.descriptors import ACYCLIC_SCAFFOLD_KEY  # RDKit's module: imported only when needed

        alone = keys == ACYCLIC_SCAFFOLD_KEY
        counts = np.unique(keys[~alone], return_counts=True)[1].tolist() + [1] * int(alone.sum())
    else:
        counts = np.unique(keys, return_counts=True)[1].tolist()
    return sorted(counts, reverse=True)
