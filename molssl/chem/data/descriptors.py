"""Molecule-level vectors computed from the parsed molecule: ECFP bits, RDKit 2D descriptors, scaffold keys.

Each is computed once per molecule while the store is built (from the molecule RDKit already
parsed for the graph) and kept as a store extra, so training, baselines, splits and prediction
never parse again.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from functools import lru_cache

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles


@lru_cache(maxsize=8)
def _morgan_generator(radius: int, n_bits: int) -> rdFingerprintGenerator.FingerprintGenerator64:
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


def ecfp_bits(mol: Chem.Mol, n_bits: int = 1024, radius: int = 2) -> np.ndarray:
    """ECFP (Morgan, ``radius``) bit vector of ``mol`` packed into ``n_bits // 8`` uint8 (``np.packbits`` order)."""
    if n_bits <= 0 or n_bits % 8:
        raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if not isinstance(mol, Chem.Mol):
        raise TypeError(f"ecfp_bits needs an RDKit molecule, got {type(mol).__name__}")
    bits = _morgan_generator(radius, n_bits).GetFingerprintAsNumPy(mol)
    return np.packbits(bits.astype(np.uint8, copy=False))


def ecfp4_2048(mol: Chem.Mol) -> np.ndarray:
    """Packed ECFP4 with 2048 bits: the RF baseline's, the hybrid heads' and the applicability domain's."""
    return ecfp_bits(mol, n_bits=2048, radius=2)


def ecfp4_1024(mol: Chem.Mol) -> np.ndarray:
    """Packed ECFP4 with 1024 bits: iMolCLR's faulty-negative weights."""
    return ecfp_bits(mol, n_bits=1024, radius=2)


RDKIT2D_NAMES: tuple[str, ...] = tuple(name for name, _ in Descriptors.descList)
_RDKIT2D_FUNCTIONS = tuple(fn for _, fn in Descriptors.descList)
# float32 holds the descriptors; beyond this magnitude a value (Ipc of large molecules) counts as failed
_FLOAT32_SAFE = 1e30


def _estate_family(mol: Chem.Mol) -> dict[str, float]:
    """RDKit's four EState extremes from one call of its O(n^2) Python ``EStateIndices``: each of the
    four descriptor functions recomputes it (4 x 0.3 ms per molecule); the formulas are RDKit's own."""
    from rdkit.Chem.EState.EState import EStateIndices

    values = EStateIndices(mol, True)
    return {"MaxEStateIndex": max(values), "MinEStateIndex": min(values),
            "MaxAbsEStateIndex": max(abs(x) for x in values), "MinAbsEStateIndex": min(abs(x) for x in values)}


def _ipc_family(mol: Chem.Mol) -> dict[str, float]:
    """RDKit's ``Ipc`` and ``AvgIpc`` from one characteristic polynomial (both compute it; RDKit's own steps)."""
    from rdkit.Chem import Graphs
    from rdkit.ML.InfoTheory import entropy

    coefficients = abs(Graphs.CharacteristicPolynomial(mol, np.equal(Chem.GetDistanceMatrix(mol, 0), 1)))
    return {"Ipc": sum(coefficients) * entropy.InfoEntropy(coefficients), "AvgIpc": entropy.InfoEntropy(coefficients)}


def _crippen_family(mol: Chem.Mol) -> dict[str, float]:
    """``MolLogP`` and ``MolMR``: RDKit's two functions each take one element of the same C++ call."""
    logp, refractivity = rdMolDescriptors.CalcCrippenDescriptors(mol)
    return {"MolLogP": logp, "MolMR": refractivity}


# descriptors computed per family (one shared intermediate), the rest one function each
_FAMILIES = tuple((compute, tuple(RDKIT2D_NAMES.index(name) for name in names))
                  for compute, names in ((_estate_family, ("MaxEStateIndex", "MinEStateIndex", "MaxAbsEStateIndex",
                                                           "MinAbsEStateIndex")),
                                         (_ipc_family, ("Ipc", "AvgIpc")),
                                         (_crippen_family, ("MolLogP", "MolMR")))
                  if all(name in RDKIT2D_NAMES for name in names))
_IN_FAMILY = frozenset(j for _, columns in _FAMILIES for j in columns)
_SINGLES = tuple((j, fn) for j, fn in enumerate(_RDKIT2D_FUNCTIONS) if j not in _IN_FAMILY)


def rdkit2d(mol: Chem.Mol) -> np.ndarray:
    """Every descriptor of RDKit's own list (``Descriptors.descList``) as float32; NaN where one fails.

    The values are those of RDKit's functions called one by one (tests compare them), but descriptors
    that RDKit derives from one intermediate are computed together (:data:`_FAMILIES`), first, so that the
    EState indices they cache on the molecule serve RDKit's EState-VSA bins too (1.2x in all).
    NaN entries (an exception, a non-finite or out-of-range value) are imputed with the training
    median by the model that uses them, and counted in its run log.
    """
    values = [math.nan] * len(_RDKIT2D_FUNCTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for compute, columns in _FAMILIES:
            try:
                found = compute(mol)
            except Exception:  # noqa: BLE001 - the whole family is NaN, as each of its functions would fail
                continue
            for j in columns:
                values[j] = float(found[RDKIT2D_NAMES[j]])
        for j, function in _SINGLES:
            try:
                values[j] = float(function(mol))
            except Exception:  # noqa: BLE001 - RDKit raises many kinds; a failure is recorded as NaN
                continue
    out = np.array(values, dtype=np.float64)
    out[~(np.abs(out) < _FLOAT32_SAFE)] = np.nan  # infinities and overflows (NaN compares False as well)
    return out.astype(np.float32)


def rdkit2d_one_by_one(mol: Chem.Mol) -> np.ndarray:
    """The reference :func:`rdkit2d` must equal: RDKit's descriptor functions called one by one, each value
    checked on its own (slower; tests and ``benchmarks/descriptor_throughput.py`` compare the two)."""
    out = np.full(len(_RDKIT2D_FUNCTIONS), np.nan, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j, function in enumerate(_RDKIT2D_FUNCTIONS):
            try:
                value = float(function(mol))
            except Exception:  # noqa: BLE001 - as in rdkit2d
                continue
            if math.isfinite(value) and abs(value) < _FLOAT32_SAFE:
                out[j] = value
    return out


def column_medians(values: np.ndarray) -> np.ndarray:
    """Median of each column over its non-NaN entries (0 for a column that is NaN everywhere): the imputation value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        return np.nan_to_num(np.nanmedian(np.asarray(values, dtype=np.float64), axis=0))


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


# a molecule without rings has the empty Bemis-Murcko scaffold: every acyclic molecule shares this key
ACYCLIC_SCAFFOLD_KEY = _key("")


def scaffold_key(mol: Chem.Mol) -> np.ndarray:
    """64-bit key of the Bemis-Murcko scaffold SMILES without chirality (DeepChem's scaffold split)."""
    return np.array([_key(MurckoScaffoldSmiles(mol=mol, includeChirality=False))], dtype=np.int64)


def scaffold_key_chiral(mol: Chem.Mol) -> np.ndarray:
    """64-bit key of the scaffold SMILES with chirality (Hu et al.'s random scaffold split)."""
    return np.array([_key(MurckoScaffoldSmiles(mol=mol, includeChirality=True))], dtype=np.int64)
