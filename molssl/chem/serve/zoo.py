"""The model zoo: shipped encoders and property models (package data in ``molssl/models/``).

Each shipped model is a folder ``molssl/models/<name>/`` holding

- ``weights.pt``: the ensemble members (or the encoder) in a compact form: every floating-point
  matrix with at least :data:`QUANTIZE_MIN_SIZE` entries is stored as int8 with one fp32 scale per
  row (symmetric, round to nearest); smaller tensors (biases, BatchNorm statistics, target
  scaling) stay fp32. The unused contrastive projection head of fine-tuned encoders is left out.
- ``card.json`` and ``README.md``: the model card (training data, split, test metric, units,
  date, the exact commands that produced it, and the effect of the compression on predictions).

Models are written with :func:`export_property_model` / :func:`export_encoder` (``molssl models
export``) from run directories of ``molssl finetune`` / ``molssl pretrain``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.tasks.finetune import MODEL_FILE, PropertyModel, load_property_model
from molssl.core.checkpoint import atomic_save, load_checkpoint
from molssl.errors import MolsslError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
ZOO_FORMAT = "molssl-zoo-v1"
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"
CARD_MARKDOWN = "README.md"
QUANTIZE_MIN_SIZE = 4096
PROJECTION_PREFIX = "encoder.head."  # MolCLR's projection head: used in pre-training only


# --------------------------------------------------------------------------- compact weights
def pack_state(state: dict[str, Tensor], skip_prefix: Optional[str] = None) -> dict:
    """``state_dict`` -> compact form (int8 rows + fp32 scales for large matrices, fp32 otherwise)."""
    packed = {}
    for name, tensor in state.items():
        if skip_prefix and name.startswith(skip_prefix):
            continue
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point() and tensor.dim() == 2 and tensor.numel() >= QUANTIZE_MIN_SIZE:
            scale = tensor.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            packed[name] = {"q": torch.round(tensor.float() / scale).to(torch.int8), "scale": scale}
        else:
            packed[name] = {"t": tensor.float() if tensor.is_floating_point() else tensor}
    return packed


def unpack_state(packed: dict) -> dict[str, Tensor]:
    """Inverse of :func:`pack_state` (up to the int8 rounding)."""
    return {name: entry["q"].float() * entry["scale"] if "q" in entry else entry["t"]
            for name, entry in packed.items()}


def _load_into(module: torch.nn.Module, state: dict[str, Tensor], may_miss: str = PROJECTION_PREFIX) -> None:
    """Load ``state``; only parameters under ``may_miss`` (left out when packing) may be absent."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(may_miss)]
    if missing or unexpected:
        raise MolsslError(f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


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

    def to_markdown(self) -> str:
        lines = [f"# {self.name}: {self.title}", "", self.description, "",
                 "| field | value |", "|---|---|",
                 f"| kind | {self.kind} |", f"| training data | {self.training_data} |"]
        if self.kind == "property":
            tasks = ", ".join(f"{self.label(t)} (`{t}`)" if self.label(t) != t else f"`{t}`" for t in self.tasks)
            members = ", ".join(_fmt(self.metric, s) for s in self.member_test_scores)
            lines += [f"| tasks | {tasks} |", f"| task type | {self.task_type} |", f"| units | {self.units or '-'} |",
                      f"| split | {self.split} ({self.protocol}); test split: {self.test_molecules} molecules |",
                      f"| test metric (ensemble) | {self.score_text()} |",
                      f"| test metric (each member) | {members} |", f"| ensemble members | {self.members} |"]
        lines += [f"| budget | {json.dumps(self.budget)} |", f"| date (UTC) | {self.date} |",
                  f"| weights | {WEIGHTS_FILE}, {self.size_bytes / 1e6:.2f} MB, sha256 {self.sha256[:16]}... |",
                  f"| compression | {json.dumps(self.compression)} |", "", "## Commands that produced it", "", "```"]
        lines += self.commands + ["```", ""]
        if self.notes:
            lines += ["## Notes", "", self.notes, ""]
        return "\n".join(lines)


def _fmt(metric: Optional[str], value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if metric == "roc_auc" else f"{value:.3f}"


def _read_card(folder: Path) -> ModelCard:
    values = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    return ModelCard(**values)


def list_models(models_dir: Optional[Path] = None) -> list[ModelCard]:
    """Cards of every shipped model, encoders first, then by name."""
    root = Path(models_dir) if models_dir is not None else MODELS_DIR
    cards = [_read_card(p.parent) for p in sorted(root.glob(f"*/{CARD_FILE}"))]
    return sorted(cards, key=lambda c: (c.kind != "encoder", c.name))


def model_folder(name: str, models_dir: Optional[Path] = None) -> Path:
    """Folder of the shipped model ``name``; a clear error names the available ones."""
    root = Path(models_dir) if models_dir is not None else MODELS_DIR
    folder = root / name
    if not (folder / CARD_FILE).is_file():
        available = ", ".join(c.name for c in list_models(root)) or "none"
        raise MolsslError(f"no shipped model named {name!r}; available: {available} (or give a path to a "
                          "model.pt / fine-tuning run directory / encoder.pt)")
    return folder


def get_card(name: str, models_dir: Optional[Path] = None) -> ModelCard:
    return _read_card(model_folder(name, models_dir))


def is_shipped(name: str, models_dir: Optional[Path] = None) -> bool:
    root = Path(models_dir) if models_dir is not None else MODELS_DIR
    return "/" not in name and "\\" not in name and (root / name / CARD_FILE).is_file()


# --------------------------------------------------------------------------- loading
def _load_weights(folder: Path) -> dict:
    blob = load_checkpoint(folder / WEIGHTS_FILE)
    if blob.get("format") != ZOO_FORMAT:
        raise MolsslError(f"{folder / WEIGHTS_FILE} is not a molssl zoo file (format {ZOO_FORMAT})")
    return blob


def member_from_packed(entry: dict) -> PropertyModel:
    """A :class:`PropertyModel` (eval mode, CPU) from one packed ensemble member."""
    meta = entry["meta"]
    model = PropertyModel(EncoderConfig(**meta["encoder_config"]), meta["tasks"], meta["task_type"],
                          meta.get("smiles_column", "smiles"), meta.get("units"))
    _load_into(model, unpack_state(entry["state"]))
    model.meta = meta
    return model.eval()


def load_shipped_members(name: str, models_dir: Optional[Path] = None) -> tuple[ModelCard, list[PropertyModel]]:
    """The card and ensemble members of the shipped property model ``name``."""
    folder = model_folder(name, models_dir)
    card = _read_card(folder)
    if card.kind != "property":
        raise MolsslError(f"{name!r} is a {card.kind}, not a property model; use it with `molssl fingerprint`")
    return card, [member_from_packed(e) for e in _load_weights(folder)["members"]]


def load_shipped_encoder(name: str, models_dir: Optional[Path] = None) -> MolecularEncoder:
    """The shipped encoder ``name`` (eval mode, CPU)."""
    folder = model_folder(name, models_dir)
    blob = _load_weights(folder)
    if "encoder" not in blob:
        raise MolsslError(f"{name!r} is a property model; fingerprints come from encoders "
                          f"({', '.join(c.name for c in list_models(models_dir) if c.kind == 'encoder')})")
    encoder = MolecularEncoder(EncoderConfig(**blob["encoder"]["encoder_config"]))
    _load_into(encoder, unpack_state(blob["encoder"]["state"]), may_miss="head.")
    return encoder.eval()


# --------------------------------------------------------------------------- exporting
def _finish(folder: Path, blob: dict, card: ModelCard) -> ModelCard:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(blob, folder / WEIGHTS_FILE)
    data = (folder / WEIGHTS_FILE).read_bytes()
    card.size_bytes, card.sha256 = len(data), hashlib.sha256(data).hexdigest()
    (folder / CARD_FILE).write_text(json.dumps(asdict(card), indent=1), encoding="utf-8")
    (folder / CARD_MARKDOWN).write_text(card.to_markdown(), encoding="utf-8")
    return card


def run_member_files(run_dir: Path) -> list[Path]:
    """Every ``model.pt`` below a ``molssl finetune`` run directory (all targets and seeds), sorted."""
    files = sorted(Path(run_dir).rglob(MODEL_FILE))
    if not files:
        raise MolsslError(f"{run_dir} holds no {MODEL_FILE}; give a `molssl finetune` run directory")
    return files


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def export_property_model(run_dirs: str | Path | Sequence[str | Path], name: str, *, title: str, description: str, training_data: str,
                          commands: Sequence[str], task_labels: Optional[dict] = None, units: Optional[str] = None,
                          data_dir: Optional[str] = None, notes: str = "",
                          models_dir: Optional[Path] = None) -> ModelCard:
    """Pack every model of one or more fine-tuning runs (e.g. one per seed) into an ensemble; write its card.

    The runs must share their test split. The card's test score is the ensemble's (mean over members) on the run's test split,
    computed with the packed weights; ``compression`` records the largest change that packing
    makes to a test prediction.
    """
    from molssl.chem.serve.predict import PropertyEnsemble, ensemble_test_predictions

    folders = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    result_files = sorted(f for d in folders for f in d.rglob("results.json"))
    if not result_files:
        raise MolsslError(f"no results.json in {', '.join(map(str, folders))}: unfinished or not `molssl finetune` runs")
    runs = [json.loads(f.read_text()) for f in result_files]
    results = runs[0]
    members = [load_property_model(p) for d in folders for p in run_member_files(d)]
    packed = [{"meta": {k: v for k, v in m.meta.items() if k not in ("pretrained",)},
               "state": pack_state(m.state_dict(), PROJECTION_PREFIX)} for m in members]
    for entry, model in zip(packed, members):
        entry["meta"]["units"] = units or model.units
    restored = [member_from_packed(e) for e in packed]
    full = ensemble_test_predictions(folders, PropertyEnsemble(name, members), data_dir)
    small = ensemble_test_predictions(folders, PropertyEnsemble(name, restored), data_dir)
    budget = dict(results["budget"], seeds=[s for r in runs for s in r["budget"]["seeds"]])
    card = ModelCard(
        name=name, kind="property", title=title, description=description, training_data=training_data,
        date=_today(), commands=list(commands), tasks=list(results["tasks"]), task_labels=dict(task_labels or {}),
        task_type=results["task_type"], units=units, metric=results["metric"], split=results["split"],
        protocol=results["protocol"], test_score=small.score, member_test_scores=[s["test"] for r in runs for s in r["seeds"]],
        test_molecules=small.n_molecules, members=len(members), budget=budget,
        compression={"scheme": f"int8 per row for matrices >= {QUANTIZE_MIN_SIZE} entries, fp32 otherwise",
                     "max_abs_change_test_prediction": float(np.nanmax(np.abs(full.mean - small.mean))),
                     "test_score_uncompressed": full.score},
        notes=notes,
    )
    folder = (Path(models_dir) if models_dir is not None else MODELS_DIR) / name
    return _finish(folder, {"format": ZOO_FORMAT, "members": packed}, card)


def export_encoder(run_dir: str | Path, name: str, *, title: str, description: str, training_data: str,
                   commands: Sequence[str], probe_smiles: Sequence[str] = (), notes: str = "",
                   models_dir: Optional[Path] = None) -> ModelCard:
    """Pack a pre-training run's ``encoder.pt`` (projection head left out) and write its card.

    ``compression`` records the smallest cosine similarity between fingerprints of
    ``probe_smiles`` from the full and the packed encoder.
    """
    from molssl.chem.serve.fingerprints import encode_smiles
    from molssl.chem.tasks.finetune import load_encoder_file

    run_dir = Path(run_dir)
    config, state = load_encoder_file(run_dir / "encoder.pt")
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    pretrain_config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    entry = {"encoder_config": config.to_dict(), "state": pack_state(state, "head.")}
    full = MolecularEncoder(config)
    full.load_state_dict(state)
    small = MolecularEncoder(config)
    _load_into(small, unpack_state(entry["state"]), may_miss="head.")
    compression = {"scheme": f"int8 per row for matrices >= {QUANTIZE_MIN_SIZE} entries, fp32 otherwise"}
    if probe_smiles:
        a, _ = encode_smiles(full.eval(), probe_smiles)
        b, _ = encode_smiles(small.eval(), probe_smiles)
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        compression["min_cosine_to_uncompressed"] = float(np.nanmin(cosine))
        compression["probe_molecules"] = int(np.isfinite(cosine).sum())
    budget = {k: pretrain_config.get(k) for k in ("method", "max_steps", "batch_size", "lr", "precision", "seed")}
    budget.update({k: summary.get(k) for k in ("steps", "molecules", "final_loss", "final_val_loss", "seconds")})
    card = ModelCard(name=name, kind="encoder", title=title, description=description, training_data=training_data,
                     date=_today(), commands=list(commands), budget=budget, compression=compression, notes=notes)
    folder = (Path(models_dir) if models_dir is not None else MODELS_DIR) / name
    return _finish(folder, {"format": ZOO_FORMAT, "encoder": entry}, card)


def models_table(cards: Sequence[ModelCard]) -> str:
    """Markdown table of the zoo: name, kind, tasks, test metric, split, members, size, date."""
    lines = ["| model | what | test metric (scaffold split) | members | size | date |", "|---|---|---|---|---|---|"]
    for c in cards:
        what = c.title if c.kind == "property" else f"encoder: {c.title}"
        lines.append(f"| {c.name} | {what} | {c.score_text()} | {c.members} | {c.size_bytes / 1e6:.1f} MB | {c.date} |")
    return "\n".join(lines)
