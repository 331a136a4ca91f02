"""Keep memory freed by one training step for the next, and give it back to the OS only when the process grows.

Graph batches differ in size from step to step, and every step allocates and frees hundreds of MB of
activations. glibc's defaults handle this badly in both directions:
- It returns the top of its heap to the OS whenever more than its trim threshold (raised dynamically
  to about twice the largest block freed, tens of MB) lies free there, so each step page-faulted about
  100 MB of fresh zeroed pages back in: 22-26k faults per bf16 pre-training step, ~7% of its time
  (``benchmarks/results/pretrain_throughput.md``). :func:`keep_freed_memory` raises that threshold.
- Blocks freed in the middle of the heap are never returned: a bf16 pre-training run grew to 12 GB
  resident, 60 MB per step, on a corpus whose store is 30 MB. ``malloc_trim(0)`` returns them; it used
  to run every 8 steps, and the working set was page-faulted in again after each. :class:`MemoryGuard`
  trims only when the resident size has grown by more than an allowance (2 GiB) over the step's working
  set (bf16 pre-training on ChEMBL batches: one trim in ~55 steps, peak 3.3 GB resident).
Elsewhere than glibc on Linux all of this is a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import lru_cache
from typing import Callable, Optional

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEEP_FREE_BYTES = 1 << 30  # free heap top kept for the next step
MMAP_THRESHOLD_BYTES = 32 << 20  # blocks below this come from the heap (glibc's own maximum for the dynamic threshold)
GROWTH_ALLOWANCE_BYTES = 2 << 30  # resident growth since the last trim that triggers the next one


@lru_cache(maxsize=1)
def _libc() -> Optional[ctypes.CDLL]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 - musl and others lack them
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory(keep_bytes: int = KEEP_FREE_BYTES, mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Let glibc keep up to ``keep_bytes`` of free heap top and serve blocks below ``mmap_threshold`` from the heap
    (fixed values replace its dynamic ones); True when both settings were accepted. Process-wide."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, keep_bytes))


def release_freed_memory() -> None:
    """Return the allocator's free memory to the OS (glibc ``malloc_trim``); no-op where unavailable."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def resident_bytes() -> Optional[int]:
    """This process's resident set size (``/proc/self/statm``), None where there is no such file."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryGuard:
    """Trims freed memory once the resident size has grown by ``allowance`` bytes over its baseline: the size
    after the first step, and again after the first step that follows each trim (so the baseline holds the
    step's working set, not the trimmed process). Cheap enough to call after every step (one small file read)."""

    def __init__(self, allowance: int = GROWTH_ALLOWANCE_BYTES,
                 resident: Callable[[], Optional[int]] = resident_bytes,
                 release: Callable[[], None] = release_freed_memory) -> None:
        self.allowance = allowance
        self._resident = resident
        self._release = release
        self.baseline: Optional[int] = None
        self.trims = 0

    def after_step(self) -> bool:
        """Trim if the process has grown past its allowance; True when it did."""
        size = self._resident()
        if size is None:
            return False
        if self.baseline is None:
            self.baseline = size
            return False
        if size <= self.baseline + self.allowance:
            return False
        self._release()
        self.trims += 1
        self.baseline = None  # the next step's size, with its working set back
        return True
