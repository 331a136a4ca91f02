"""Store extras: per-molecule values computed in the same pass as the graph, from the same parsed molecule.

An extra is either a *row* (one fixed-size array per molecule: fingerprints, descriptors, scaffold
keys) or *graphs* (a variable number of graphs per molecule: BRICS fragments). Each has a version
that enters the store key, so changing its rules rebuilds cached stores. Functions are named as
``module:attribute`` and imported on use, so the registry costs nothing to import.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Extra:
    name: str
    function: str  # "module:attribute"; rows: fn(mol) -> 1-D array; graphs: fn(mol, graph=) -> list[MolGraph]
    version: str
    kind: str = "rows"  # "rows" or "graphs"
    dtype: str = "uint8"
    width: int = 0  # entries per row (rows extras)

    def resolve(self) -> Callable:
        module, attribute = self.function.split(":")
        return getattr(import_module(module), attribute)

    def empty(self) -> np.ndarray:
        return np.zeros((0, self.width), dtype=self.dtype)


def _rdkit2d_width() -> int:
    from molssl.chem.data.descriptors import RDKIT2D_NAMES

    return len(RDKIT2D_NAMES)


EXTRAS: dict[str, Extra] = {e.name: e for e in (
    Extra("ecfp", "molssl.chem.data.descriptors:ecfp4_1024", "ecfp4-1024-v1", width=128),
    Extra("ecfp2048", "molssl.chem.data.descriptors:ecfp4_2048", "ecfp4-2048-v1", width=256),
    Extra("scaffold", "molssl.chem.data.descriptors:scaffold_key", "murcko-v1", dtype="int64", width=1),
    Extra("scaffold_chiral", "molssl.chem.data.descriptors:scaffold_key_chiral", "murcko-chiral-v1",
          dtype="int64", width=1),
    Extra("rdkit2d", "molssl.chem.data.descriptors:rdkit2d", "rdkit2d-v1", dtype="float32", width=-1),
    Extra("fragments", "molssl.chem.data.fragments:brics_fragment_graphs", "brics-over3-v1", kind="graphs"),
)}


def get_extra(name: str) -> Extra:
    """The registered extra ``name``; rows extras of data-dependent width get it filled in."""
    if name not in EXTRAS:
        raise ValueError(f"unknown store extra {name!r}; choose from {sorted(EXTRAS)}")
    extra = EXTRAS[name]
    if extra.width < 0:
        from dataclasses import replace

        extra = replace(extra, width=_rdkit2d_width())
    return extra
