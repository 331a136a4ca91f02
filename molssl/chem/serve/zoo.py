"""The model zoo: shipped encoders and property models (package data in ``molssl/models/``).

Each shipped model is a folder ``molssl/models/<name>/`` holding

- ``weights.pt``: the ensemble members (or the encoder) in a compact form: every floating-point
  matrix with at least :data:`QUANTIZE_MIN_SIZE` entries, and every embedding table (models exported
  since 2026-12-06), is stored as int8 with one fp32 scale per row (symmetric, round to nearest);
  smaller tensors (biases, BatchNorm statistics, target scaling) stay fp32. The unused
  contrastive projection head of fine-tuned encoders is left out.
  The file is a gzip stream of the torch checkpoint (14% smaller; read by ``load_checkpoint``).
- ``card.json`` and ``README.md``: the model card (training data, split, test metric, units,
  date, the exact commands that produced it, and the effect of the compression on predictions).

This module reads the cards (what ``molssl models`` lists); :mod:`molssl.chem.serve.loading` reads
the weights and :mod:`molssl.chem.serve.zoo_export` writes both (``molssl models export``) from run
directories of ``molssl finetune`` / ``molssl pretrain``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, get_args, get_origin, get_type_hints

from molssl.errors import CorruptFileError, MolsslError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
ZOO_FORMAT = "molssl-zoo-v1"
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"
EXTERNAL_CHECK = "Checked outside"  # how a card's limitations start an external check (benchmarks/external_check.py)
CARD_MARKDOWN = "README.md"
# a baseline trained on the training + validation molecules (benchmarks/pooled_baselines.py), as a card names it
POOLED_BASELINE = "{} on training + validation"
# the shipped encoders by graph vocabulary: the fingerprint default (molclr) and what a --csv fine-tunes from
DEFAULT_ENCODERS = {"molclr": "molclr-gin-mix", "rich": "rich-gin-physchem"}
# learned fingerprints: the encoder whose frozen features scored best under a linear probe
# (benchmarks/results/frozen_probe.md: 72.8 against 65.4 for molclr-gin-mix on the five-set classification mean)
DEFAULT_FINGERPRINT_ENCODER = DEFAULT_ENCODERS["rich"]
# names of shipped models that were replaced: asking for one says what to use instead
RETIRED = {"molclr-gin": "molclr-gin-mix (the same MolCLR vocabulary, 4,000 steps of 512 on ChEMBL + MOSES instead "
                         "of 148 on 20k MOSES)",
           "rich-gin-chembl": "rich-gin-physchem (the same rich vocabulary and 2,000 steps of 512, pre-trained to "
                              "predict RDKit's descriptors instead of with MolCLR's objective: better fingerprints, the "
                              "same fine-tuned scores)"}


# --------------------------------------------------------------------------- model cards
@dataclass
class ModelCard:
    """What a shipped model is, how it was made and how well it does (``card.json``)."""

    name: str
    kind: str  # "property" or "encoder"
    title: str
    description: str
    training_data: str
    date: str
    commands: list[str]
    tasks: list[str] = field(default_factory=list)
    task_labels: dict[str, str] = field(default_factory=dict)
    task_type: Optional[str] = None
    units: Optional[str] = None
    metric: Optional[str] = None
    split: Optional[str] = None
    protocol: Optional[str] = None
    test_score: Optional[float] = None  # the ensemble's score on the test split
    member_test_scores: list[float] = field(default_factory=list)
    test_molecules: Optional[int] = None
    members: int = 1
    budget: dict = field(default_factory=dict)
    compression: dict = field(default_factory=dict)
    size_bytes: int = 0
    sha256: str = ""
    notes: str = ""
    baselines: dict[str, float] = field(default_factory=dict)  # e.g. {"RF-ECFP4": ..., "chemprop v2": ...}, same split
    limitations: str = ""  # training-set chemistry, what it was not tested on
    inputs: dict = field(default_factory=dict)  # what the model reads: {"featurizer": "rich", "features": "rdkit2d"}

    def label(self, task: str) -> str:
        """Short display name of ``task`` (the data set's column name when none was given)."""
        return self.task_labels.get(task, task)

    def score_text(self) -> str:
        """The test metric as papers print it: ROC-AUC in percent, RMSE in target units."""
        if self.test_score is None or self.metric is None:
            return "-"
        if self.metric == "roc_auc":
            return f"ROC-AUC {100 * self.test_score:.1f}"
        unit = f" {self.units}" if self.units else ""
        return f"{self.metric.upper()} {self.test_score:.3f}{unit}"

    def baseline_text(self, name: str) -> str:
        """A baseline's score on the same test split, formatted like :meth:`score_text`'s number; with, when the card
        has it, the same baseline trained on the training + validation molecules (a fold ensemble's members saw
        those together, so that is the fair comparison for it)."""
        text = _fmt(self.metric, self.baselines.get(name))
        pooled = self.baselines.get(POOLED_BASELINE.format(name))
        return text if pooled is None else f"{text} ({_fmt(self.metric, pooled)} on train + valid)"

    def to_markdown(self) -> str:
        lines = [f"# {self.name}: {self.title}", "", self.description, "",
                 "| field | value |", "|---|---|",
                 f"| kind | {self.kind} |", f"| training data | {self.training_data} |"]
        if self.kind == "property":
            tasks = ", ".join(f"{self.label(t)} (`{t}`)" if self.label(t) != t else f"`{t}`" for t in self.tasks)
            members = ", ".join(_fmt(self.metric, s) for s in self.member_test_scores)
            if self.inputs:
                scaling = self.inputs.get("descriptor_scaling")
                lines.append(f"| inputs | featurizer `{self.inputs.get('featurizer', 'molclr')}`, molecule features "
                             f"`{self.inputs.get('features', 'none')}`"
                             + (f" ({scaling} descriptor scaling)" if scaling else "") + " |")
            lines += [f"| tasks | {tasks} |", f"| task type | {self.task_type} |", f"| units | {self.units or '-'} |",
                      f"| split | {self.split} ({self.protocol}); test split: {self.test_molecules} molecules |",
                      f"| test metric (ensemble) | {self.score_text()} |",
                      *[f"| {name}, same split | {_fmt(self.metric, value)} |" for name, value in self.baselines.items()],
                      f"| test metric (each member) | {members} |", f"| ensemble members | {self.members} |"]
        lines += [f"| budget | {json.dumps(self.budget)} |", f"| date (UTC) | {self.date} |",
                  f"| weights | {WEIGHTS_FILE}, {self.size_bytes / 1e6:.2f} MB, sha256 {self.sha256[:16]}... |",
                  f"| compression | {json.dumps(self.compression)} |", "", "## Commands that produced it", "", "```"]
        lines += self.commands + ["```", ""]
        if self.limitations:
            lines += ["## Limitations", "", self.limitations, ""]
        if self.notes:
            lines += ["## Notes", "", self.notes, ""]
        return "\n".join(lines)


def _field_types(annotation: object) -> tuple[type, ...]:
    """The plain types a card field's annotation allows (``Optional[float]`` -> float, int, None)."""
    origin = get_origin(annotation)
    if origin is None:
        return (float, int) if annotation is float else (annotation,)
    if origin in (list, dict):
        return (origin,)
    return tuple(t for arg in get_args(annotation) for t in _field_types(arg))  # Optional / Union


_CARD_TYPES = {name: _field_types(kind) for name, kind in get_type_hints(ModelCard).items()}


def _fmt(metric: Optional[str], value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if metric == "roc_auc" else f"{value:.3f}"


def read_card(folder: Path) -> ModelCard:
    """A card; fields a newer molssl added are ignored, so older code still lists newer models. A card that
    is not JSON, lacks a field or holds one of the wrong type is refused, naming the file (exported folders
    come from outside)."""
    path = folder / CARD_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise TypeError("it is not a JSON object")
        card = ModelCard(**{k: v for k, v in values.items() if k in _CARD_TYPES})
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"{path} is not a readable model card ({exc})") from None
    wrong = [name for name, kinds in _CARD_TYPES.items() if not isinstance(getattr(card, name), kinds)
             or isinstance(getattr(card, name), bool) and bool not in kinds]
    if wrong:
        raise CorruptFileError(f"{path} is not a readable model card (wrong type: {', '.join(wrong)})")
    return card


def list_models(models_dir: Optional[Path] = None) -> list[ModelCard]:
    """Cards of every shipped model, encoders first, then by name."""
    root = Path(models_dir) if models_dir is not None else MODELS_DIR
    cards = [read_card(p.parent) for p in sorted(root.glob(f"*/{CARD_FILE}"))]
    return sorted(cards, key=lambda c: (c.kind != "encoder", c.name))


def model_folder(name: str, models_dir: Optional[Path] = None) -> Path:
    """Folder of the shipped model ``name``, or the folder ``name`` itself when it is one that
    ``molssl models export --models-dir`` wrote; a clear error names the available ones."""
    folder = find_folder(name, models_dir)
    if folder is None:
        if name in RETIRED:
            raise MolsslError(f"the shipped model {name!r} was replaced: use {RETIRED[name]}")
        root = Path(models_dir) if models_dir is not None else MODELS_DIR
        available = ", ".join(c.name for c in list_models(root)) or "none"
        if _looks_like_path(name):  # a mistyped path: say that first, not "no shipped model"
            raise MolsslError(f"{name}: no such file or directory (nor a shipped model: {available})")
        raise MolsslError(f"no shipped model named {name!r}; available: {available} (or give a path to a "
                          "model.pt / fine-tuning run directory / encoder.pt / exported model folder)")
    return folder


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` was meant as a path (a folder separator or a file suffix) rather than a shipped name."""
    path = Path(name)
    return path.parent != Path(".") or path.suffix in {".pt", ".json"}


def find_folder(name: str | Path, models_dir: Optional[Path] = None) -> Optional[Path]:
    """The zoo-format folder (``card.json`` + ``weights.pt``) that ``name`` means, or None: a shipped
    model's name first, else a path to a folder written by ``molssl models export``."""
    text = str(name)
    if is_shipped(text, models_dir):
        return (Path(models_dir) if models_dir is not None else MODELS_DIR) / text
    path = Path(text).expanduser()
    return path if (path / CARD_FILE).is_file() and (path / WEIGHTS_FILE).is_file() else None


def is_installed(folder: Path) -> bool:
    """Whether ``folder`` is one of the package's own shipped models (not an exported copy elsewhere)."""
    return folder.resolve().parent == MODELS_DIR


def get_card(name: str, models_dir: Optional[Path] = None) -> ModelCard:
    return read_card(model_folder(name, models_dir))


def is_shipped(name: str, models_dir: Optional[Path] = None) -> bool:
    root = Path(models_dir) if models_dir is not None else MODELS_DIR
    return "/" not in name and "\\" not in name and (root / name / CARD_FILE).is_file()


BASELINE_COLUMNS = ("RF-ECFP4", "chemprop v2")


def models_rows(cards: Sequence[ModelCard]) -> list[tuple[str, ...]]:
    """The zoo as rows: name, kind, tasks, test metric, the baselines on the same split, members, size, date."""
    rows = [("model", "kind", "tasks", "test metric (scaffold)", *[f"{b}, same split" for b in BASELINE_COLUMNS],
             "members", "size", "date")]
    for c in cards:
        tasks = ", ".join(c.label(t) for t in c.tasks) if len(c.tasks) <= 2 else f"{len(c.tasks)} tasks"
        rows.append((c.name, c.kind, tasks or "-", c.score_text(), *[c.baseline_text(b) for b in BASELINE_COLUMNS],
                     str(c.members), f"{c.size_bytes / 1e6:.1f} MB", c.date))
    return rows


def models_table(cards: Sequence[ModelCard]) -> str:
    """Markdown table of the zoo (:func:`models_rows`)."""
    rows = models_rows(cards)
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] +
                     ["| " + " | ".join(r) + " |" for r in rows[1:]])
