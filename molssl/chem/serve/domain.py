"""Applicability domain: is a molecule like the ones a model was trained on?

Three checks, each a common way to state OECD QSAR principle 3 ("a defined domain of applicability"),
all computed from one RDKit parse per molecule:

1. **similarity**: the largest Tanimoto similarity of the molecule's ECFP4 (2048 bits, the store's
   ``ecfp2048`` extra, :func:`molssl.chem.data.descriptors.ecfp4_2048`) to any training molecule,
   computed on the model's device with :func:`molssl.chem.nn.similarity.tanimoto_matrix`. The
   threshold is the 5th percentile of the same similarity over the validation split: a molecule
   is in the domain when it is at least as close to the training set as 95% of the held-out
   (scaffold-split) molecules the model was selected and scored on.
2. **atoms**: every (element, formal charge) pair of the molecule occurred in training; a metal,
   an unseen element or an unusual charge state (``[Gd+3]``, ``[Pt]``, ``[Na+]`` for a model
   trained on neutral organics) is out of the domain whatever the similarity says.
3. **ranges**: heavy atoms, Crippen logP, TPSA and rotatable bonds lie within the training range.
   Bit fingerprints are blind to repetition (a C42 alkane has the bits of decane), ranges are not.

The training fingerprints, SMILES and rows, the atom kinds, the ranges and the threshold are written
into ``model.pt`` when a model is fine-tuned (:mod:`molssl.chem.serve.reliability`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

from molssl.chem.data.descriptors import ecfp4_2048
from molssl.chem.data.featurize import parse_many
from molssl.chem.nn.similarity import tanimoto_matrix

FINGERPRINT = "ecfp4-2048"
FINGERPRINT_BYTES = 256
THRESHOLD_QUANTILE = 0.05
THRESHOLD_RULE = "5th percentile of the validation molecules' nearest-training-molecule similarity"
RANGES = ("heavy_atoms", "logp", "tpsa", "rotatable_bonds")
QUERY_BLOCK = 1024  # molecules per Tanimoto block: (1024 x training set) floats at a time


def atom_kind(atom: Chem.Atom) -> str:
    """``C``, ``N+``, ``O-``, ``Gd+3``: element symbol and formal charge."""
    charge = atom.GetFormalCharge()
    return atom.GetSymbol() + ("" if charge == 0 else "+" if charge == 1 else "-" if charge == -1 else f"{charge:+d}")


def _range_values(mol: Chem.Mol) -> list[float]:
    return [mol.GetNumAtoms(), Crippen.MolLogP(mol), rdMolDescriptors.CalcTPSA(mol),
            rdMolDescriptors.CalcNumRotatableBonds(mol)]


@dataclass
class Descriptors:
    """What the domain checks need, per molecule; rows where ``valid`` is False hold zeros/NaN."""

    fingerprints: np.ndarray  # (n, 256) uint8, packed ECFP4
    kinds: list[frozenset]
    values: np.ndarray  # (n, len(RANGES)) float64
    valid: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.kinds)


def describe(mols: Sequence[Optional[Chem.Mol]]) -> Descriptors:
    """Fingerprints, atom kinds and range descriptors of RDKit molecules (None: not a molecule)."""
    n = len(mols)
    fps = np.zeros((n, FINGERPRINT_BYTES), dtype=np.uint8)
    values = np.full((n, len(RANGES)), np.nan)
    kinds: list[frozenset] = [frozenset()] * n
    valid = np.zeros(n, dtype=bool)
    for i, mol in enumerate(mols):
        if mol is None or mol.GetNumAtoms() == 0:
            continue
        fps[i] = ecfp4_2048(mol)
        kinds[i] = frozenset(atom_kind(a) for a in mol.GetAtoms())
        values[i] = _range_values(mol)
        valid[i] = True
    return Descriptors(fps, kinds, values, valid)


def describe_smiles(smiles: Sequence[str]) -> Descriptors:
    return describe(parse_many(smiles))


def nearest(query: np.ndarray, reference: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(largest Tanimoto similarity, index of that reference molecule) of each packed query fingerprint.

    ``reference`` (m, 256) uint8 lives on the device the computation runs on.
    """
    n = query.shape[0]
    best = np.zeros(n, dtype=np.float32)
    where = np.zeros(n, dtype=np.int64)
    if n == 0 or reference.shape[0] == 0:
        return best, where
    for start in range(0, n, QUERY_BLOCK):
        block = torch.from_numpy(np.ascontiguousarray(query[start:start + QUERY_BLOCK])).to(reference.device)
        value, index = tanimoto_matrix(block, reference).max(dim=1)
        best[start:start + block.shape[0]] = value.cpu().numpy()
        where[start:start + block.shape[0]] = index.cpu().numpy()
    return best, where


def similarity_threshold(similarity: np.ndarray) -> float:
    """The threshold that keeps THRESHOLD_QUANTILE of held-out molecules' similarities below it (0 for none)."""
    similarity = np.asarray(similarity, dtype=np.float64).ravel()
    return float(np.quantile(similarity, THRESHOLD_QUANTILE, method="lower")) if similarity.size else 0.0


def domain_record(train_smiles: Sequence[str], train_rows: Sequence[int], valid_smiles: Sequence[str]) -> dict:
    """What a fine-tuned model stores about its training molecules, with the threshold chosen on validation."""
    train = describe_smiles(train_smiles)
    keep = np.flatnonzero(train.valid)
    fps = torch.from_numpy(train.fingerprints[keep])
    valid = describe_smiles(valid_smiles)
    similarity, _ = nearest(valid.fingerprints[valid.valid], fps)
    threshold = similarity_threshold(similarity)
    values = train.values[keep]
    return {"version": 1, "fingerprint": FINGERPRINT, "fingerprints": train.fingerprints[keep],
            "rows": np.asarray(train_rows, dtype=np.int64)[keep], "smiles": [train_smiles[i] for i in keep],
            "atom_kinds": sorted(set().union(*[train.kinds[i] for i in keep])),
            "ranges": {name: [float(values[:, j].min()), float(values[:, j].max())] for j, name in enumerate(RANGES)},
            "threshold": threshold, "threshold_rule": THRESHOLD_RULE, "valid_similarity": similarity}


@dataclass
class DomainResult:
    """Per molecule: nearest similarity and training index, in-domain flag, and why not (empty when in)."""

    similarity: np.ndarray
    index: np.ndarray
    in_domain: np.ndarray
    notes: list[str]


class ApplicabilityDomain:
    """The domain of a model (the union of its members' training sets); :meth:`assess` checks molecules."""

    def __init__(self, records: Sequence[dict]) -> None:
        seen: set[str] = set()
        fingerprints, rows, self.smiles = [], [], []
        for record in records:  # members usually share one training set: each molecule once
            new = [i for i, text in enumerate(record["smiles"]) if text not in seen]
            seen.update(record["smiles"])
            fingerprints.append(np.asarray(record["fingerprints"], dtype=np.uint8).reshape(-1, FINGERPRINT_BYTES)[new])
            rows.append(np.asarray(record["rows"], dtype=np.int64)[new])
            self.smiles += [record["smiles"][i] for i in new]
        self.rows = np.concatenate(rows)
        self.fingerprints = torch.from_numpy(np.concatenate(fingerprints))
        self.atom_kinds = frozenset().union(*[set(record["atom_kinds"]) for record in records])
        self.ranges = {name: (min(rec["ranges"][name][0] for rec in records), max(rec["ranges"][name][1] for rec in records))
                       for name in RANGES}
        strictest = max(records, key=lambda record: float(record["threshold"]))
        self.threshold = float(strictest["threshold"])
        self.threshold_rule = strictest.get("threshold_rule", THRESHOLD_RULE)

    @classmethod
    def of_members(cls, metas: Sequence[dict]) -> Optional["ApplicabilityDomain"]:
        """The domain of an ensemble whose members' records (``metas``, as the ensemble uses them) all carry one
        (older model files do not: None)."""
        records = [meta.get("domain") for meta in metas]
        return cls(records) if records and all(isinstance(r, dict) for r in records) else None

    def to(self, device: torch.device) -> "ApplicabilityDomain":
        self.fingerprints = self.fingerprints.to(device)
        return self

    def summary(self) -> dict:
        return {"training_molecules": len(self.smiles), "similarity_threshold": round(self.threshold, 4),
                "threshold_rule": self.threshold_rule, "fingerprint": FINGERPRINT, "atom_kinds": sorted(self.atom_kinds),
                "ranges": {k: [round(v, 3) for v in r] for k, r in self.ranges.items()}}

    def assess(self, molecules: Descriptors) -> DomainResult:
        """Check molecules; rows that are not valid molecules get NaN similarity and in_domain False."""
        similarity = np.full(len(molecules), np.nan, dtype=np.float32)
        index = np.full(len(molecules), -1, dtype=np.int64)
        rows = np.flatnonzero(molecules.valid)
        similarity[rows], index[rows] = nearest(molecules.fingerprints[rows], self.fingerprints)
        low = np.array([self.ranges[name][0] for name in RANGES])
        high = np.array([self.ranges[name][1] for name in RANGES])
        outside = (molecules.values < low) | (molecules.values > high)
        in_domain = molecules.valid & (similarity >= self.threshold) & ~outside.any(axis=1)
        notes = [""] * len(molecules)
        for i in rows:
            unseen = sorted(molecules.kinds[i] - self.atom_kinds)
            if unseen:
                in_domain[i] = False
            if not in_domain[i]:
                notes[i] = self._why(float(similarity[i]), unseen, molecules.values[i], outside[i])
        return DomainResult(similarity, index, in_domain, notes)

    def _why(self, similarity: float, unseen: list[str], values: np.ndarray, outside: np.ndarray) -> str:
        parts = [f"similarity {similarity:.2f} < {self.threshold:.2f}"] if similarity < self.threshold else []
        if unseen:
            parts.append(f"atoms not in training: {' '.join(unseen)}")
        for j in np.flatnonzero(outside):
            low, high = self.ranges[RANGES[j]]
            parts.append(f"{RANGES[j]} {values[j]:.4g} outside training {low:.4g}..{high:.4g}")
        return "; ".join(parts)
