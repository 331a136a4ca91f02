"""``--precision auto``: bf16 autocast where the hardware makes it faster, fp32 elsewhere, decided per machine.

On CUDA, bf16 where the GPU supports it. On a CPU, bf16 is a candidate only with AMX or AVX512-BF16
(on an AVX2-only AMD EPYC bf16 autocast was ~11x *slower* than fp32 here, on an AVX-512 Intel Xeon without
AVX512-BF16 3.6x slower: benchmarks/results/pretrain_throughput.md); a short timed probe at
the GIN encoder's matrix shapes then confirms it (bf16 must be at least :data:`MIN_SPEEDUP` times
faster), and the verdict is cached per CPU model, flags, thread count and torch version in
``$MOLSSL_CACHE/precision.json`` so it is measured once per machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from molssl.core.device import PRECISIONS

CHOICES = ("auto", *PRECISIONS)
MIN_SPEEDUP = 1.2
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_description() -> tuple[str, set[str]]:
    """(CPU model name, CPU flags) from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.processor(), platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def _cache_file() -> Path:
    return Path(os.environ.get("MOLSSL_CACHE", Path.home() / ".cache" / "molssl")) / "precision.json"


def _time(fn: Callable[[], object], repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def probe_bf16_speedup(rows: int = 4096, dim: int = 300) -> float:
    """fp32 time / bf16-autocast time of the GIN layer's two matrix products (rows x dim @ dim x 2dim @ 2dim x dim)."""
    generator = torch.Generator().manual_seed(0)  # never touch the global RNG: runs must stay reproducible
    x = torch.randn(rows, dim, generator=generator)
    w1, w2 = torch.randn(dim, 2 * dim, generator=generator), torch.randn(2 * dim, dim, generator=generator)

    def step() -> None:
        (x @ w1).relu() @ w2

    def step_bf16() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            (x @ w1).relu() @ w2

    return _time(step) / _time(step_bf16)


def _valid_speedup(entry: object) -> bool:
    speedup = entry.get("speedup") if isinstance(entry, dict) else None
    return isinstance(speedup, (int, float)) and not isinstance(speedup, bool) and 0 < speedup < 1e3


def cpu_precision(log: Callable[[str], None] = lambda _m: None) -> tuple[str, str]:
    """(``bf16`` or ``fp32``, why) for this CPU, from the cache or a fresh probe."""
    model, flags = cpu_description()
    capable = [f for f in BF16_FLAGS if f in flags]
    if not capable:
        return "fp32", f"{model}: no AMX/AVX512-BF16, bf16 would be slower"
    key = hashlib.sha256(json.dumps([model, sorted(flags), torch.__version__, torch.get_num_threads()]).encode()).hexdigest()[:16]
    path = _cache_file()
    try:
        cached = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        cached = None
    if not _valid_speedup(cached):  # missing, or a damaged cache entry: measure again rather than trust it
        speedup = probe_bf16_speedup()
        cached = {"model": model, "speedup": speedup, "threads": torch.get_num_threads()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            table = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            table[key] = cached
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(table, indent=1), encoding="utf-8")
            tmp.replace(path)
        except (OSError, ValueError):
            pass  # an unwritable cache only means probing again next time
    speedup = float(cached["speedup"])
    choice = "bf16" if speedup >= MIN_SPEEDUP else "fp32"
    return choice, f"{model} ({'/'.join(capable)}): bf16 matrix products {speedup:.1f}x fp32"


def resolve_precision(requested: str, device: torch.device, log: Optional[Callable[[str], None]] = None) -> str:
    """The precision to run with: ``requested`` itself, or for ``auto`` the machine's choice (printed via ``log``)."""
    if requested not in CHOICES:
        raise ValueError(f"--precision must be one of {', '.join(CHOICES)}, got {requested!r}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        why = f"{torch.cuda.get_device_name(device)}"
    else:
        choice, why = cpu_precision()
    if log is not None:
        log(f"precision auto: {choice} ({why})")
    return choice
