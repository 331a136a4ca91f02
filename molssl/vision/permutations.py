"""Jigsaw permutation sets chosen for maximal Hamming distance (Noroozi & Favaro 2016, Sec. 3.3)."""
from __future__ import annotations

import itertools
import math

import numpy as np


def _all_permutations(n: int) -> np.ndarray:
    """All n! permutations of range(n), one per column: shape (n, n!), int8."""
    flat = np.fromiter(itertools.chain.from_iterable(itertools.permutations(range(n))), dtype=np.int8)
    return np.ascontiguousarray(flat.reshape(-1, n).T)


def _hamming_to(columns: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Hamming distance of every permutation (a column of ``columns``) to ``perm``, one row at a time (fast)."""
    distance = np.zeros(columns.shape[1], dtype=np.int8)
    for position, value in enumerate(perm):
        distance += columns[position] != value
    return distance


def maximal_hamming_permutations(count: int, n: int = 9, seed: int = 0) -> np.ndarray:
    """``count`` permutations of ``range(n)``, far apart in Hamming distance, shape (count, n).

    Greedy farthest-point selection over all n! permutations: start from a random one, then repeatedly
    add the permutation whose minimum Hamming distance to those already chosen is largest (ties broken
    at random with ``seed``). This is the max-min form of Noroozi & Favaro's Algorithm 1. For ``count <= n``
    every pair differs in all n positions (a Latin rectangle always extends).
    """
    if n < 2 or n > 10:
        raise ValueError(f"n (tiles) must be between 2 and 10 so that all n! permutations fit in memory, got {n}")
    if not 1 <= count <= math.factorial(n):
        raise ValueError(f"count must be between 1 and {n}! = {math.factorial(n)}, got {count}")
    columns = _all_permutations(n)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(columns.shape[1]))]
    nearest = _hamming_to(columns, columns[:, chosen[0]])
    for _ in range(count - 1):
        pick = int(rng.choice(np.flatnonzero(nearest == nearest.max())))
        chosen.append(pick)
        nearest = np.minimum(nearest, _hamming_to(columns, columns[:, pick]))
    return columns[:, chosen].T.astype(np.int64)
