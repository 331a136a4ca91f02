"""What one fine-tuning run is: :class:`FinetuneConfig`, validated when made (defaults: :mod:`molssl.chem.tasks.finetune`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from molssl.chem.data.splits import FOLD_ACYCLIC
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import DESCRIPTOR_SCALINGS, FEATURE_SETS
from molssl.chem.serve.zoo import DEFAULT_ENCODERS
from molssl.chem.tasks.baselines import BASELINES
from molssl.chem.tasks.groups import PROTOCOLS, SPLITS
from molssl.core.fit import SCHEDULES
from molssl.core.precision import CHOICES as PRECISIONS
from molssl.errors import MolsslError


METHODS = ("finetune", *BASELINES, "chemprop")
CLASS_WEIGHTS = ("none", "balanced")
# Your own --csv gets the configuration that measured best in benchmarks/results/quality_ablation.md (RDKit
# descriptors beside the graph, quantile-scaled, early stopping, balanced classes); a MoleculeNet --dataset keeps
# MolCLR's protocol.
CSV_DEFAULTS = {"features": "rdkit2d", "descriptor_scaling": "quantile", "patience": 10, "class_weight": "balanced"}
# the graph vocabulary when none is given: rich for a --csv (measured best with descriptors), MolCLR's for a --dataset
DEFAULT_FEATURIZER = {"csv": "rich", "dataset": "molclr"}
DATASET_DEFAULTS = {"features": "none", "descriptor_scaling": "standard", "patience": None,  # patience None: off
                    "class_weight": "none"}
# fields later versions added, with the value that reproduces what runs written before them did
ADDED_FIELDS = {"probe_epochs": 0, "descriptor_scaling": "standard", "folds": 0, "fold": 0,
                "fold_acyclic": "together"}
# settings that change how a run is carried out, not what it computes: a run may be resumed or reused across them
RUNTIME_SETTINGS = ("resume", "progress", "workers", "cache_dir", "device", "threads", "out")


def with_added_fields(saved: dict) -> dict:
    """A saved run config completed with :data:`ADDED_FIELDS`, so that older runs compare equal to today's."""
    return {**ADDED_FIELDS, **saved}


@dataclass
class FinetuneConfig:
    """One fine-tuning run (all seeds); saved as ``config.json`` and inside ``results.json``.

    Either ``dataset`` (a MoleculeNet name) or ``csv`` + ``targets`` + ``task`` is given.
    ``protocol`` defaults to ``molclr-per-target`` for MoleculeNet sets, ``multitask`` for CSVs.
    ``pretrained`` names an encoder (shipped name, run directory, ``encoder.pt``) or ``none``;
    unset, a ``--csv`` starts from the shipped encoder of ``encoder.featurizer``'s vocabulary
    (:data:`~molssl.chem.serve.zoo.DEFAULT_ENCODERS`) and a ``--dataset`` from random weights.
    ``encoder`` (default: :data:`DEFAULT_FEATURIZER`'s vocabulary) is used only for random initialization; its dropout is replaced by ``dropout``
    either way. ``probe_epochs`` > 0 trains the head alone on the frozen encoder first (up to that many
    epochs, best validation epoch kept), then fine-tunes everything: LP-FT (Kumar et al., ICLR 2022), which
    keeps a randomly initialized head from distorting the pre-trained features early on. ``method`` other
    than ``finetune`` runs that baseline on the same molecules and splits.
    ``folds`` > 0 validates on scaffold fold ``fold`` of the training + validation molecules instead of the scaffold
    split's validation part (:func:`~molssl.chem.data.splits.scaffold_fold`; the test part is unchanged): runs over
    every fold choose settings on more molecules than one validation split has. ``fold_acyclic``: whether the
    molecules without a ring stay one scaffold group in the folds (``together``) or are shared out (``spread``).
    ``descriptor_scaling`` says how RDKit descriptors enter the head (``standard``: standardized and clipped;
    ``quantile``: through their training distribution onto a normal). ``features``, ``descriptor_scaling``,
    ``patience`` (0: off) and ``class_weight`` left unset take :data:`CSV_DEFAULTS` for a
    ``--csv`` and :data:`DATASET_DEFAULTS` (MolCLR's protocol) for a ``--dataset``.
    """

    out: str
    dataset: Optional[str] = None
    csv: Optional[str] = None
    smiles_column: Optional[str] = None
    targets: Optional[Sequence[str]] = None
    task: Optional[str] = None
    metric: Optional[str] = None
    units: Optional[str] = None
    method: str = "finetune"
    pretrained: Optional[str] = None
    protocol: Optional[str] = None
    split: str = "scaffold"
    folds: int = 0
    fold: int = 0
    fold_acyclic: str = "together"
    seeds: Sequence[int] = (0,)
    epochs: int = 100
    batch_size: int = 32
    lr_head: float = 5e-4
    lr_encoder: float = 1e-4
    weight_decay: float = 1e-6
    dropout: float = 0.3
    freeze_encoder: bool = False
    probe_epochs: int = 0
    encoder: Optional[EncoderConfig] = None
    features: Optional[str] = None
    descriptor_scaling: Optional[str] = None
    patience: Optional[int] = None
    class_weight: Optional[str] = None
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    precision: str = "auto"
    max_train_molecules: Optional[int] = None
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    workers: Optional[int] = 1
    device: str = "auto"
    threads: Optional[int] = None
    progress: bool = True
    resume: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        if self.encoder is None:
            self.encoder = EncoderConfig(featurizer=DEFAULT_FEATURIZER["csv" if self.csv is not None else "dataset"])
        if (self.dataset is None) == (self.csv is None):
            raise MolsslError("give either a MoleculeNet --dataset or your own --csv, not both or neither")
        if self.csv is not None and (not self.targets or self.task is None):
            raise MolsslError("a --csv needs --targets (one or more label columns) and --task classification|regression")
        if self.protocol is None:
            self.protocol = "molclr-per-target" if self.dataset else "multitask"
        if self.csv is not None and self.pretrained is None and self.method == "finetune":
            self.pretrained = DEFAULT_ENCODERS[self.encoder.featurizer]
        defaults = CSV_DEFAULTS if self.csv is not None and self.method == "finetune" else DATASET_DEFAULTS
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for value, allowed, what in ((self.protocol, PROTOCOLS, "--protocol"), (self.split, SPLITS, "--split"),
                                     (self.method, METHODS, "method"), (self.features, tuple(FEATURE_SETS), "--features"),
                                     (self.class_weight, CLASS_WEIGHTS, "--class-weight"),
                                     (self.descriptor_scaling, DESCRIPTOR_SCALINGS, "--descriptor-scaling"),
                                     (self.schedule, SCHEDULES, "--schedule"), (self.precision, PRECISIONS, "--precision")):
            if value not in allowed:
                raise MolsslError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
        if not self.seeds:
            raise MolsslError("give at least one seed")
        if self.folds or self.fold:
            if self.split != "scaffold" or self.folds < 2 or not 0 <= self.fold < self.folds:
                raise MolsslError(f"--fold {self.fold} --folds {self.folds}: cross-validation folds need --split "
                                  "scaffold, --folds of at least 2 and a --fold from 0 to --folds - 1")
        if self.fold_acyclic not in FOLD_ACYCLIC:
            raise MolsslError(f"unknown --fold-acyclic {self.fold_acyclic!r}; choose from {', '.join(FOLD_ACYCLIC)}")
        if self.fold_acyclic != "together" and not self.folds:
            raise MolsslError("--fold-acyclic applies to cross-validation folds: give --folds too")
        for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size)):
            if not isinstance(value, int) or value < 1:
                raise MolsslError(f"{flag} must be a positive whole number, got {value}")
        for flag, value in (("--lr-head", self.lr_head), ("--lr-encoder", self.lr_encoder)):
            if not value > 0:
                raise MolsslError(f"{flag} must be a positive learning rate, got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise MolsslError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if not isinstance(self.probe_epochs, int) or self.probe_epochs < 0:
            raise MolsslError(f"--probe-epochs must be a whole number of epochs (0: off), got {self.probe_epochs}")
        if self.probe_epochs and self.freeze_encoder:
            raise MolsslError("--probe-epochs fine-tunes the encoder after the probe; it cannot be combined with "
                              "--freeze-encoder (a probe only)")
        if self.threads is not None and self.threads < 1:
            raise MolsslError(f"--threads must be at least 1, got {self.threads}")
        if self.max_train_molecules is not None and self.max_train_molecules < 2:
            raise MolsslError("--max-train-molecules must be at least 2")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 0):
            raise MolsslError(f"--patience must be a whole number of epochs (0: off), got {self.patience}")
        if self.pretrained is not None and str(self.pretrained).lower() == "none":
            self.pretrained = None
        self.seeds = [int(s) for s in self.seeds]
        self.targets = list(self.targets) if self.targets else None

    def to_dict(self) -> dict:
        return asdict(self)
