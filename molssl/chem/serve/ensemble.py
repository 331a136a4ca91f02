"""Ensembles of property models: one prediction per task, averaged over members, their spread, and what
the members' files say about trusting it (calibration, applicability domain)."""
from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from molssl.chem.data.batch import GraphBatch
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.serve.domain import ApplicabilityDomain
from molssl.chem.serve.reliability import like_test_subset
from molssl.chem.serve.uncertainty import ConformalIntervals, PlattScaling, calibrate
from molssl.errors import MolsslError


def plain_name(text: str) -> str:
    """``text`` as a column-name part: letters, digits, ``_ . + -``; anything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).strip("_") or "model"


class PropertyEnsemble:
    """Fine-tuned models whose predictions are averaged per task (std over members = uncertainty).

    Members may cover different tasks (a per-target run holds one model per target and seed); a
    task's prediction is the mean over the members that predict it.
    """

    def __init__(self, name: str, members: Sequence[PropertyModel], task_labels: Optional[dict] = None,
                 units: Optional[str] = None) -> None:
        if not members:
            raise MolsslError(f"model {name!r} has no members")
        kinds = {m.task_type for m in members}
        if len(kinds) > 1:
            raise MolsslError(f"model {name!r} mixes classification and regression members")
        self.name = name
        self.members = list(members)
        self.task_type = kinds.pop()
        self.tasks: list[str] = []
        for member in self.members:
            self.tasks += [t for t in member.tasks if t not in self.tasks]
        self._columns = [torch.as_tensor([self.tasks.index(t) for t in m.tasks]) for m in self.members]
        self.task_labels = dict(task_labels or {})
        self.units = units if units is not None else next((m.units for m in self.members if m.units), None)
        featurizers = {m.encoder.config.featurizer for m in self.members}
        if len(featurizers) > 1:
            raise MolsslError(f"model {name!r} mixes members trained with different featurizers ({sorted(featurizers)})")
        self.featurizer = featurizers.pop()
        self.features = tuple(sorted({f for m in self.members for f in m.inputs}))  # store extras batches need
        self.device = torch.device("cpu")

    @property
    def n_members(self) -> int:
        """Members per task (the largest count; an ensemble when above 1)."""
        counts = np.zeros(len(self.tasks), dtype=int)
        for columns in self._columns:
            counts[columns.numpy()] += 1
        return int(counts.max())

    def to(self, device: torch.device) -> "PropertyEnsemble":
        self.members = [m.to(device).eval() for m in self.members]
        self.device = torch.device(device)
        if "domain" in self.__dict__ and self.domain is not None:
            self.domain.to(self.device)
        return self

    @cached_property
    def records(self) -> list[dict]:
        """The members' calibration and domain records as this ensemble uses them: those of cross-validation fold
        members cut to the molecules drawn like the test split, as an export cuts them
        (:func:`molssl.chem.serve.reliability.like_test_subset`), so run directories and exports agree."""
        return like_test_subset([m.meta for m in self.members])[0]

    @cached_property
    def calibration(self) -> Optional[ConformalIntervals | PlattScaling]:
        """Conformal intervals (regression) or Platt scaling (classification) from the members' validation
        records; None when a member's file has none (made before molssl recorded them)."""
        return calibrate(self.task_type, self.tasks, self.members, self.records)

    @cached_property
    def domain(self) -> Optional[ApplicabilityDomain]:
        """The training molecules' domain (None for files made before molssl recorded it)."""
        found = ApplicabilityDomain.of_members(self.records)
        return found.to(self.device) if found is not None else None

    @torch.no_grad()
    def predict_batch(self, batch: GraphBatch) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members, each (num_graphs, n_tasks); std is 0 where one member predicts."""
        total = torch.zeros(batch.num_graphs, len(self.tasks), dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = torch.zeros(len(self.tasks), dtype=torch.float64)
        for member, columns in zip(self.members, self._columns):
            out = member.predict_batch(batch).double().cpu()
            total[:, columns] += out
            squares[:, columns] += out ** 2
            count[columns] += 1
        mean = total / count
        var = (squares / count - mean ** 2).clamp(min=0)
        return mean.numpy(), var.sqrt().numpy()

    def column(self, task: str, kind: str = "") -> str:
        """Output column: ``esol``, ``esol_std``, ``esol_lower`` (one-task models), ``tox21_NR-AR`` (one per task)."""
        base = plain_name(self.name) if len(self.tasks) == 1 else f"{plain_name(self.name)}_{plain_name(task)}"
        return f"{base}_{kind}" if kind else base

    def domain_column(self, kind: str) -> str:
        """Applicability-domain column of this model: ``esol_in_domain``, ``esol_nearest_similarity``, ..."""
        return f"{plain_name(self.name)}_{kind}"


def load_ensemble(model: str | Path, device: str = "cpu") -> PropertyEnsemble:
    """A shipped model by name (``molssl models``), a ``model.pt``, or a ``molssl finetune`` run directory.

    A run directory gives an ensemble of all its models (every seed, every target).
    """
    from molssl.chem.serve.loading import load_property_members
    from molssl.core.device import resolve_device

    name, members, card = load_property_members(model)
    ensemble = PropertyEnsemble(name, members, card.task_labels if card else None, card.units if card else None)
    return ensemble.to(resolve_device(device))
