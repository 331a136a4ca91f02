"""Device, precision and host-to-device transfer helpers (CUDA when present, CPU otherwise)."""
from __future__ import annotations

import contextlib
from dataclasses import fields, is_dataclass, replace
from typing import Any, Iterator, Optional

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is a clear error.

    Every training and prediction path resolves its device here, so this is also where CPU work is
    set up to flush denormal floats to zero: MolCLR's published GCN weights (near-zero embedding rows)
    produce subnormal values that made its fine-tuning 11x slower on CPU (32 vs 374 molecules/s,
    ``benchmarks/results/finetune_throughput.md``); flushing changes nothing above 1e-38.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("this machine has no CUDA device (torch sees none); use --device cpu or auto")
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    return device


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed-precision context: bf16 on CPU (oneDNN/AMX) or CUDA, fp16 on CUDA only; fp32 is a no-op."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device; use --precision bf16 on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a floating-point product of ``x`` runs in here: autocast's for ``x``'s device where it is on."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


def move_to(obj: Any, device: torch.device) -> Any:
    """Copy tensors (inside tuples, lists, dicts and dataclasses) to ``device``; non-blocking from pinned memory."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=obj.is_pinned())
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(obj, **{f.name: move_to(getattr(obj, f.name), device) for f in fields(obj) if f.init})
    return obj


def pin(obj: Any) -> Any:
    """Pin host tensors so the copy to a CUDA device can overlap compute (no-op without CUDA)."""
    if not torch.cuda.is_available():
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.pin_memory()
    if isinstance(obj, dict):
        return {k: pin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(pin(v) for v in obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(obj, **{f.name: pin(getattr(obj, f.name)) for f in fields(obj) if f.init})
    return obj


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with ``threads`` intra-op CPU threads (unchanged when ``None``)."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
