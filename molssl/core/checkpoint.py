"""Checkpoints: atomic writes, loading that never runs code from the file, weight digests, RNG capture.

Every file molssl reads back (``checkpoint.pt``, ``encoder.pt``, ``model.pt``, zoo weights) is
loaded with ``torch.load(weights_only=True)``: the unpickler builds tensors, plain containers,
numbers and strings, plus NumPy arrays and scalars of plain dtypes (old RNG states hold them), and
refuses any other global. A file that needs one (a pickled class, a ``__reduce__`` payload) is
refused with :class:`UnsafeFileError` before anything in it runs. See ``docs/security.md``.

A file may also be a gzip stream of such a checkpoint (``atomic_save(..., compress=True)``, what the
zoo ships: torch stores tensors uncompressed, and gzip takes 14% off the packed models). It is
inflated in memory up to :data:`MAX_INFLATED_BYTES`, so a crafted "zip bomb" is refused, not unpacked.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import random
import re
import tempfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np
import torch

from molssl.errors import CorruptFileError, MolsslError  # CorruptFileError: also raised by torch-free readers


class UnsafeFileError(MolsslError):
    """A file that would need code to be loaded (a pickled object other than tensors and plain data)."""


def _numpy_globals() -> list:
    """The NumPy reconstructors that plain arrays and scalars need (no object dtype reaches them unchecked)."""
    from numpy._core.multiarray import _reconstruct, scalar

    dtypes = {type(np.dtype(t)) for t in (np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                          np.uint64, np.int64, np.float16, np.float32, np.float64)}
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


GZIP_MAGIC = b"\x1f\x8b"
MAX_INFLATED_BYTES = 1 << 30  # a compressed checkpoint that inflates past 1 GiB is refused (the zoo's are < 20 MB)


def atomic_save(obj: Any, path: str | os.PathLike, compress: bool = False) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    ``compress``: write a gzip stream of the checkpoint instead (no timestamp in it, so the same
    content gives the same bytes and the same sha256); :func:`load_checkpoint` reads both.
    """
    if not compress:
        return _atomic_write(path, lambda handle: torch.save(obj, handle))
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) the way :func:`atomic_save` writes a checkpoint: never half written."""
    return _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Write through ``write(handle)`` into a temporary file beside ``path``, fsync, rename over ``path``.

    The file gets the permissions the user's umask gives a new file (not mkstemp's 0600), so runs
    in a shared folder stay readable to the people the user shares them with.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (``os.umask`` alone must set it to
    read it, which briefly gives files created by other threads the wrong mode)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a file written by :func:`atomic_save` without executing anything stored in it.

    Missing file: FileNotFoundError. A file that needs code to load: :class:`UnsafeFileError`.
    Truncated or foreign bytes: :class:`CorruptFileError`. Each names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as handle:
        compressed = handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    source = io.BytesIO(_inflate(path.read_bytes(), path)) if compressed else path
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            obj = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)|but got <class '([\w.]+)'>", message)
        if found:
            raise UnsafeFileError(f"{path} was refused: loading it would run code from the file "
                                  f"({found.group(1) or found.group(2)}); molssl files hold only tensors and "
                                  "plain data. Do not use files from sources you do not trust") from None
        reason = message.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
        if reason.startswith("Unsupported operand"):  # a bare pickle, or bytes that only look like one
            reason = f"not a file that torch.save wrote ({reason})"
        raise CorruptFileError(f"{path} is not a readable checkpoint: {reason}") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise CorruptFileError(f"{path} is not a readable checkpoint (truncated or another format): "
                               f"{exc}") from None
    if not isinstance(obj, dict):
        raise CorruptFileError(f"{path} is not a molssl checkpoint (it holds a {type(obj).__name__}, not a dict)")
    return obj


def _inflate(data: bytes, path: Path) -> bytes:
    """The checkpoint inside a gzip stream, refusing one that is truncated, damaged or inflates past the limit."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise CorruptFileError(f"{path} is a damaged gzip stream ({exc})") from None
    if inflater.unconsumed_tail:
        raise CorruptFileError(f"{path} inflates to more than {MAX_INFLATED_BYTES >> 20} MiB; refused (no molssl "
                               "checkpoint is that large once compressed)")
    if not inflater.eof:
        raise CorruptFileError(f"{path} is a truncated gzip stream (the file ends before its compressed data does)")
    if inflater.unused_data:
        raise CorruptFileError(f"{path} has {len(inflater.unused_data)} bytes after its gzip stream (not a molssl file)")
    return inflated


def require_keys(ckpt: Mapping, keys: tuple[str, ...], path: str | os.PathLike, what: str) -> None:
    """A clear error when a loaded file lacks the entries of the kind of file it was given as."""
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise MolsslError(f"{path} is not {what} (it lacks {', '.join(missing)})")


def state_digest(state: Mapping[str, Any]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a (nested) state dict's tensors, in key order.

    Stored beside the weights when a model file is written and checked when it is read, so a file
    whose numbers were changed after writing is detected instead of predicting nonsense.
    """
    digest = hashlib.sha256()

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{prefix}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            if tensor.numel():
                digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, Mapping):
            for key in sorted(value, key=str):
                visit(f"{prefix}.{key}", value[key])

    visit("", state)
    return digest.hexdigest()


def verify_digest(state: Mapping[str, Any], expected: str | None, path: str | os.PathLike) -> None:
    """Raise :class:`CorruptFileError` when ``state``'s digest differs from the one recorded (None: nothing to check)."""
    if expected is not None and state_digest(state) != expected:
        raise CorruptFileError(f"{path} is corrupted: its weights do not match the digest recorded when it was "
                               "written (the file was changed or damaged after saving); re-download or re-train it")


def load_weights(module: torch.nn.Module, state: dict, path: str | os.PathLike) -> None:
    """``module.load_state_dict(state)``, or a clear error when the weights in ``path`` do not fit the module
    (the checkpoint's recorded config builds another architecture, e.g. after a default changed)."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: its weights do not fit the {type(module).__name__} its run config describes "
                         f"(written by another molssl version, or the config was edited): {exc}") from None


def rng_state() -> dict:
    """The state of every random generator a training step touches, as tensors and plain data."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`'s output. Its tensors may arrive on a GPU (a checkpoint loaded with
    ``map_location="cuda"``); generator states are CPU byte tensors, so they are brought back first."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["name"], np.asarray(_on_cpu(numpy_state["keys"]), dtype=np.uint32),
                       numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)
    torch.set_rng_state(_on_cpu(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_on_cpu(s) for s in state["cuda"]])


def _on_cpu(value: Any) -> Any:
    return value.cpu() if isinstance(value, torch.Tensor) else value


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
