"""Progress on stderr for long work: a live bar on a terminal, a line every few seconds otherwise.

Logs of batch jobs (stderr redirected to a file, CI, ``nohup``) still show that work advances, how fast, and (when
the total is known) how long is left, instead of nothing until the end.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """``update(n)`` as items are done; ``note(text)`` for a status beside the count (e.g. the loss); ``close()``
    prints the final count ("done", or "stopped" short of the total: interrupted, or stopped early).
    ``enabled=None``: on for big jobs. ``initial``: items already done (a resumed run); the rate counts only the
    items done since this object was made."""

    def __init__(self, desc: str, total: Optional[int] = None, unit: str = "mol", enabled: Optional[bool] = True,
                 every: float = 10.0, stream: Optional[TextIO] = None, initial: int = 0) -> None:
        self.desc, self.total, self.unit, self.every = desc, total, unit, every
        self.stream = stream or sys.stderr
        self.enabled = bool(enabled) if enabled is not None else (total is None or total >= 2000)
        self.count = self.initial = initial
        self.status = ""
        self.started = self.last = time.perf_counter()
        self.bar = None
        if self.enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=f" {unit}", file=self.stream,
                            dynamic_ncols=True, leave=False)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self._line()

    def note(self, status: str) -> None:
        """A short status shown with the count from now on (the bar's postfix on a terminal)."""
        self.status = status
        if self.bar is not None:
            self.bar.set_postfix_str(status, refresh=False)

    def _line(self, done: bool = False) -> None:
        elapsed = time.perf_counter() - self.started
        rate = (self.count - self.initial) / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total:,}" if self.total else ""
        parts = [f"{self.desc}: {self.count:,}{total} {self.unit} ({rate_text(rate)}/s)"]
        if self.status:
            parts.append(self.status)
        if not done and self.total and rate > 0:
            parts.append(f"{duration_text((self.total - self.count) / rate)} left")
        if not done:
            state = "..."
        else:
            state = "done" if self.total is None or self.count >= self.total else "stopped"
        print(f"{', '.join(parts)} {state}", file=self.stream, flush=True)

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


def rate_text(rate: float) -> str:
    """Items per second with the digits that matter: 7,171 / 41.3 / 0.823."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def duration_text(seconds: float) -> str:
    """``H:MM:SS`` (``M:SS`` under an hour)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
