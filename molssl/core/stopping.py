"""SIGTERM as a clean stop: schedulers, ``timeout`` and ``kill`` send it before they kill a job.

Python's default for SIGTERM ends the process at once, so a training run lost everything since its last
checkpoint and a prediction run could not say what its output holds. Inside :func:`stop_on_sigterm` the
signal raises :class:`Terminated` instead, which unwinds like Ctrl-C: the trainer checkpoints, a prediction
reports its rows, and the process exits with the conventional status 128 + 15.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM (exit status 128 + signal number)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration (a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
