"""Progress on stderr for long work: a live bar on a terminal, a line every few seconds otherwise.

Logs of batch jobs (stderr redirected to a file, CI, ``nohup``) still show that work advances and
how fast, instead of nothing until the end.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """``update(n)`` as items are done; ``close()`` prints the final count. ``enabled=None``: on for big jobs."""

    def __init__(self, desc: str, total: Optional[int] = None, unit: str = "mol", enabled: Optional[bool] = True,
                 every: float = 10.0, stream: Optional[TextIO] = None) -> None:
        self.desc, self.total, self.unit, self.every = desc, total, unit, every
        self.stream = stream or sys.stderr
        self.enabled = bool(enabled) if enabled is not None else (total is None or total >= 2000)
        self.count = 0
        self.started = self.last = time.perf_counter()
        self.bar = None
        if self.enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=self.stream, dynamic_ncols=True, leave=False)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self._line()

    def _line(self, done: bool = False) -> None:
        elapsed = time.perf_counter() - self.started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total:,}" if self.total else ""
        state = "done" if done else "..."
        print(f"{self.desc}: {self.count:,}{total} {self.unit} ({rate:,.0f}/s) {state}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and time.perf_counter() - self.started >= self.every:
            self._line(done=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
