"""Model I/O in one place: write and read ``encoder.pt``, ``model.pt`` and zoo weights; resolve what a user names.

What a user may name as a model (``--model``, ``--pretrained``, ``molssl.load_model``):

- a shipped model's name (``molssl models``), read from the package's ``molssl/models/<name>/``;
- a ``molssl finetune`` run directory (every ``model.pt`` below it: an ensemble over seeds/targets),
  or a ``molssl pretrain`` run directory (its ``encoder.pt``);
- a ``model.pt`` (fine-tuned) or an ``encoder.pt`` (pre-trained or converted) file;
- a folder written by ``molssl models export --models-dir`` (the zoo's compact form, with its card).

Every file is loaded without executing code (:func:`molssl.core.checkpoint.load_checkpoint`), and
weights are checked against the digest recorded when they were written (zoo weights against the
sha256 in their card), so a damaged file is refused instead of predicting nonsense.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.property_model import DESCRIPTOR_SCALINGS, PropertyModel
from molssl.chem.serve import zoo
from molssl.chem.serve.reliability import verify_reliability
from molssl.core.checkpoint import (CorruptFileError, atomic_save, load_checkpoint, require_keys, state_digest,
                                    verify_digest)
from molssl.errors import MolsslError

ENCODER_FILE = "encoder.pt"
MODEL_FILE = "model.pt"
MODEL_FORMAT = "molssl-property-model-v1"
QUANTIZE_MIN_SIZE = 4096
# training statistics of a property model (descriptor quantile knots among them) keep their exact values
EXACT_PREFIXES = ("descriptor_", "target_")
PROJECTION_PREFIX = "encoder.head."  # MolCLR's projection head: used in pre-training only


# --------------------------------------------------------------------------- encoder.pt
def save_encoder(encoder: MolecularEncoder, path: str | Path, meta: Optional[dict] = None) -> Path:
    """Encoder weights plus the config needed to rebuild it (what fine-tuning and fingerprints load)."""
    state = encoder.state_dict()
    return atomic_save({"encoder_config": encoder.config.to_dict(), "state_dict": state,
                        "digest": state_digest(state), "meta": meta or {}}, path)


def load_encoder_file(path: str | Path) -> tuple[EncoderConfig, dict]:
    """(config, state_dict) of an ``encoder.pt`` written by pre-training or ``molssl convert``."""
    ckpt = load_checkpoint(path)
    if ckpt.get("format") == MODEL_FORMAT:
        raise MolsslError(f"{path} is a fine-tuned model.pt, not an encoder.pt; give a pre-trained encoder "
                          "(or use it with `molssl predict`)")
    if "encoder_config" not in ckpt or "state_dict" not in ckpt:
        raise MolsslError(f"{path} is not a molssl encoder.pt (no encoder_config/state_dict); "
                          "MolCLR's own model.pth must first go through `molssl convert molclr`")
    verify_digest(ckpt["state_dict"], ckpt.get("digest"), path)
    config = _encoder_config(ckpt["encoder_config"], path)
    require_fitting_sizes(lambda: MolecularEncoder(config), ckpt["state_dict"], path)  # before fine-tuning builds it
    return config, ckpt["state_dict"]


def _encoder_config(values: object, path: str | Path) -> EncoderConfig:
    if not isinstance(values, dict):
        raise CorruptFileError(f"{path} has no readable encoder configuration")
    try:
        return EncoderConfig(**values)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path} has an encoder configuration this molssl cannot build ({exc})") from None


def encoder_from_state(config: EncoderConfig, state: dict, path: str | Path, may_miss: str = "head.") -> MolecularEncoder:
    encoder = MolecularEncoder(config)
    _load_into(encoder, state, path, may_miss=may_miss)
    return encoder


# --------------------------------------------------------------------------- model.pt
def save_property_model(model: PropertyModel, path: str | Path, extra: Optional[dict] = None) -> Path:
    """``model.pt``: the model's description, weights, their digest and ``extra`` run information."""
    state = model.state_dict()
    return atomic_save({"format": MODEL_FORMAT, **model.describe(), "state_dict": state, "digest": state_digest(state),
                        **(extra or {})}, path)


def property_model_from(meta: dict, state: dict, path: str | Path, may_miss: str = "") -> PropertyModel:
    """A :class:`PropertyModel` rebuilt from a file's description and loaded with ``state``; its calibration
    and applicability-domain data (when the file has them) are checked against their digest."""
    verify_reliability(meta, path)
    scaling = meta.get("descriptor_scaling", "standard")
    if scaling not in DESCRIPTOR_SCALINGS:
        raise CorruptFileError(f"{path} names a descriptor scaling this molssl does not know ({scaling!r})")
    config = _encoder_config(meta.get("encoder_config"), path)

    def build() -> PropertyModel:
        return PropertyModel(config, meta["tasks"], meta["task_type"], meta.get("smiles_column", "smiles"),
                             meta.get("units"), meta.get("freeze_encoder", False), features=meta.get("features", ()),
                             descriptor_scaling=scaling, forests=meta.get("forests"))

    try:
        require_fitting_sizes(build, state, path)
    except CorruptFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CorruptFileError(f"{path} describes a model this molssl cannot build ({error})") from None
    model = build()
    _load_into(model, state, path, may_miss=may_miss)
    if model.forests is not None:
        model.forests.check(str(path))
    knots = getattr(model, "descriptor_knots", None)
    if knots is not None and not (torch.isfinite(knots).all() and (knots.diff(dim=1) >= 0).all()):
        raise CorruptFileError(f"{path}: its descriptor quantiles are not finite and non-decreasing, so it would "
                               "scale descriptors wrongly")
    model.meta = {k: v for k, v in meta.items() if k not in ("state_dict", "state")}
    return model.eval()


def load_property_model(path: str | Path, device: str = "cpu") -> PropertyModel:
    """A fine-tuned model saved by fine-tuning (``model.pt``), in eval mode."""
    from molssl.core.device import resolve_device

    ckpt = load_checkpoint(path, map_location="cpu")
    if ckpt.get("format") != MODEL_FORMAT:
        raise MolsslError(f"{path} is not a fine-tuned molssl model (expected format {MODEL_FORMAT}); "
                          "an encoder.pt from pre-training has no task head")
    require_keys(ckpt, ("tasks", "task_type", "state_dict"), path, "a complete molssl model.pt")
    verify_digest(ckpt["state_dict"], ckpt.get("digest"), path)
    return property_model_from(ckpt, ckpt["state_dict"], path).to(resolve_device(device))


def run_member_files(run_dir: Path) -> list[Path]:
    """Every ``model.pt`` below a ``molssl finetune`` run directory (all targets and seeds), sorted."""
    files = sorted(Path(run_dir).rglob(MODEL_FILE))
    if not files:
        raise MolsslError(f"{run_dir} holds no {MODEL_FILE}; give a `molssl finetune` run directory")
    return files


# --------------------------------------------------------------------------- compact (zoo) weights
def quantized(name: str, tensor: Tensor) -> bool:
    """Whether :func:`pack_state` stores ``tensor`` as int8 rows: matrices of at least :data:`QUANTIZE_MIN_SIZE`
    entries, and embedding tables of any size (one row per token, each as wide as a matrix row; since 2026-12-06,
    when the rich vocabulary's 40 small tables were 116 kB of fp32 per model)."""
    if not tensor.is_floating_point() or tensor.dim() != 2 or name.startswith(EXACT_PREFIXES):
        return False
    return tensor.numel() >= QUANTIZE_MIN_SIZE or any("embedding" in module for module in name.split(".")[:-1])


def pack_state(state: dict[str, Tensor], skip_prefix: Optional[str] = None) -> dict:
    """``state_dict`` -> compact form (int8 rows + fp32 scales where :func:`quantized`, fp32 otherwise)."""
    packed = {}
    for name, tensor in state.items():
        if skip_prefix and name.startswith(skip_prefix):
            continue
        tensor = tensor.detach().cpu()
        if quantized(name, tensor):
            scale = tensor.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            packed[name] = {"q": torch.round(tensor.float() / scale).to(torch.int8), "scale": scale}
        else:
            packed[name] = {"t": tensor.float() if tensor.is_floating_point() else tensor}
    return packed


def unpack_state(packed: dict) -> dict[str, Tensor]:
    """Inverse of :func:`pack_state` (up to the int8 rounding)."""
    try:
        return {name: entry["q"].float() * entry["scale"] if "q" in entry else entry["t"]
                for name, entry in packed.items()}
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise CorruptFileError(f"packed weights are malformed ({exc})") from None


# what a file may describe beyond the tensors it holds (the projection head a packed encoder leaves out: ~0.4M)
UNSTORED_ENTRIES = 4_000_000


def require_fitting_sizes(build: Callable[[], torch.nn.Module], state: dict, path: str | Path) -> None:
    """Refuse a file whose description (widths, forest sizes) does not fit the tensors it holds, before anything is
    allocated: ``build`` runs on PyTorch's meta device, so a hostile description asking for terabytes costs nothing."""
    with torch.device("meta"):
        skeleton = build()
    described = 0
    for name, tensor in skeleton.state_dict().items():
        described += tensor.numel()
        found = state.get(name)
        if isinstance(found, Tensor) and tuple(found.shape) != tuple(tensor.shape):
            raise CorruptFileError(f"{path}: its weights do not fit the model it describes ({name} is "
                                   f"{tuple(found.shape)}, the description needs {tuple(tensor.shape)})")
    stored = sum(t.numel() for t in state.values() if isinstance(t, Tensor))
    if described > stored + UNSTORED_ENTRIES:
        raise CorruptFileError(f"{path} describes a model of {described:,} numbers but holds {stored:,}; "
                               "the file is damaged or not what it claims")


def _load_into(module: torch.nn.Module, state: dict, path: str | Path, may_miss: str = "") -> None:
    """Load ``state``; only parameters under ``may_miss`` (left out when packing) may be absent."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CorruptFileError(f"{path}: its weights do not fit the model it describes ({exc})") from None
    missing = [k for k in missing if not (may_miss and k.startswith(may_miss))]
    if missing or unexpected:
        raise CorruptFileError(f"{path}: its weights do not fit the model it describes (missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]})")


def load_zoo_weights(folder: Path) -> dict:
    """A zoo folder's ``weights.pt``, after checking its bytes against the sha256 in its card (a card
    without one is refused: nothing else would tell a damaged file from a good one)."""
    path = folder / zoo.WEIGHTS_FILE
    card = zoo.read_card(folder)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    if not card.sha256 or digest != card.sha256:
        remedy = "reinstall molssl" if zoo.is_installed(folder) else "export it again with `molssl models export`"
        raise CorruptFileError(f"{path} does not match the sha256 in its model card: the model is damaged; {remedy}")
    blob = load_checkpoint(path)
    if blob.get("format") != zoo.ZOO_FORMAT:
        raise MolsslError(f"{path} is not a molssl zoo file (format {zoo.ZOO_FORMAT})")
    return blob


def member_from_packed(entry: dict, path: str | Path = "shipped model") -> PropertyModel:
    """A :class:`PropertyModel` (eval mode, CPU) from one packed ensemble member."""
    return property_model_from(entry["meta"], unpack_state(entry["state"]), path, may_miss=PROJECTION_PREFIX)


def load_shipped_members(name: str | Path, models_dir: Optional[Path] = None) -> tuple[zoo.ModelCard, list[PropertyModel]]:
    """The card and ensemble members of the shipped (or exported) property model ``name``."""
    folder = zoo.model_folder(str(name), models_dir)
    card = zoo.read_card(folder)
    if card.kind != "property":
        raise MolsslError(f"{name!r} is a {card.kind}, not a property model; use it with `molssl fingerprint`")
    return card, [member_from_packed(e, folder / zoo.WEIGHTS_FILE) for e in load_zoo_weights(folder)["members"]]


def load_shipped_encoder(name: str | Path, models_dir: Optional[Path] = None) -> MolecularEncoder:
    """The shipped (or exported) encoder ``name`` (eval mode, CPU)."""
    folder = zoo.model_folder(str(name), models_dir)
    blob = load_zoo_weights(folder)
    if "encoder" not in blob:
        raise MolsslError(f"{name!r} is a property model; fingerprints come from encoders "
                          f"({', '.join(c.name for c in zoo.list_models(models_dir) if c.kind == 'encoder')})")
    path = folder / zoo.WEIGHTS_FILE
    config, state = _encoder_config(blob["encoder"]["encoder_config"], path), unpack_state(blob["encoder"]["state"])
    require_fitting_sizes(lambda: MolecularEncoder(config), state, path)  # files go through load_encoder_file's check
    return encoder_from_state(config, state, path).eval()


# --------------------------------------------------------------------------- resolving what the user named
def resolve_encoder(spec: str | Path) -> tuple[MolecularEncoder, str]:
    """The encoder a user named (shipped encoder, pretrain run dir, encoder.pt, or a model.pt's encoder)
    and a short description of where it came from."""
    text = str(spec)
    folder = zoo.find_folder(text)
    if folder is not None:
        kind = "shipped" if zoo.is_installed(folder) else "exported"
        return load_shipped_encoder(text), f"{kind} encoder {text}"
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / ENCODER_FILE).is_file():
            path = path / ENCODER_FILE
        else:
            files = sorted(path.rglob(MODEL_FILE))
            if not files:
                raise MolsslError(f"{path} holds neither an {ENCODER_FILE} nor a {MODEL_FILE}")
            path = files[0]
    if not path.is_file():
        zoo.model_folder(text)  # raises, naming the shipped models
    ckpt = load_checkpoint(path)
    if ckpt.get("format") == MODEL_FORMAT:
        return load_property_model(path).encoder, f"encoder of the fine-tuned model {path}"
    config, state = load_encoder_file(path)
    return encoder_from_state(config, state, path).eval(), str(path)


def resolve_encoder_state(spec: str | Path) -> tuple[EncoderConfig, dict, str]:
    """(config, state_dict, where from) of the encoder a user named, to initialize fine-tuning with."""
    encoder, source = resolve_encoder(spec)
    return encoder.config, {k: v.detach().clone() for k, v in encoder.state_dict().items()}, source


def load_property_members(spec: str | Path) -> tuple[str, list[PropertyModel], Optional[zoo.ModelCard]]:
    """(name, members, card or None) of the property model a user named (shipped, exported folder, run dir
    or model.pt)."""
    text = str(spec)
    if zoo.find_folder(text) is not None:
        card, members = load_shipped_members(text)
        return card.name, members, card
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve().name, [load_property_model(p) for p in run_member_files(path)], None
    if path.is_file():
        member = load_property_model(path)
        return str(member.meta.get("dataset") or path.parent.name or path.stem), [member], None
    zoo.model_folder(text)  # raises: names the shipped models
    raise AssertionError("unreachable")
