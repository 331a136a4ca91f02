"""The registry of graph vocabularies: ``molclr`` (MolCLR's) and ``rich`` (chemprop-like atom and bond fields)."""
from __future__ import annotations

from molssl.chem.data.featurize import MOLCLR, Featurizer
from molssl.chem.data.featurize_rich import RICH

FEATURIZERS = {f.name: f for f in (MOLCLR, RICH)}


def get_featurizer(name: str | Featurizer = "molclr") -> Featurizer:
    """The registered featurizer ``name`` (``molclr`` or ``rich``)."""
    if isinstance(name, Featurizer):
        return name
    if name not in FEATURIZERS:
        raise ValueError(f"unknown featurizer {name!r}; choose from {', '.join(FEATURIZERS)}")
    return FEATURIZERS[name]
