"""Run directories: one writer at a time, never a stranger's folder, resume only into the same run.

Every command that writes a run (pre-training in any modality, fine-tuning) opens its ``--out``
through :func:`open_run_dir`. It refuses, with one sentence naming the folder:

- a path that is a file, or a folder it cannot write;
- a non-empty folder that is not a molssl run (it would overwrite the user's ``config.json``);
- a folder that already holds a run, unless resuming; resuming a folder that holds none;
- a folder another molssl process is writing to (an exclusive ``fcntl`` lock held until the run ends).

:func:`config_differences` names the settings that differ between a saved run and a resumed one, so
``--resume`` with another corpus or another ``--emb-dim`` is refused before anything is written.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from molssl.errors import MolsslError

LOCK_FILE = ".molssl.lock"
CONFIG_FILE = "config.json"
# Files whose presence marks a folder as a molssl run: the lock every run takes, and files no other tool names so.
# (config.json, metrics.jsonl, results.json or summary.json alone might be the user's own: they count only when
# config.json says molssl wrote it.)
RUN_MARKERS = (LOCK_FILE, "checkpoint.pt", "encoder.pt")


class RunDirectoryError(MolsslError):
    """The output folder cannot be used for this run; the message says why."""


def is_run_dir(path: Path) -> bool:
    """True when ``path`` holds something a molssl run wrote."""
    if any((path / name).exists() for name in RUN_MARKERS):
        return True
    config = path / CONFIG_FILE
    if config.is_file():
        try:
            return "molssl_version" in json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            return False
    return False


def check_output_dir(path: str | os.PathLike, *, resume: bool = False, holds_run: Optional[bool] = None,
                     is_run: Callable[[Path], bool] = is_run_dir, flag: str = "--out") -> Path:
    """Validate ``path`` as a run directory (see the module docstring) without creating or locking it.

    ``holds_run`` overrides the check for a finished/started run (default: a ``checkpoint.pt`` exists);
    ``is_run`` tells a folder molssl wrote from a stranger's (suites of runs have their own test).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"{flag} {path} is a file, not a folder; choose a folder for the run")
    started = (path / "checkpoint.pt").is_file() if holds_run is None else holds_run
    if resume:
        if not started:
            raise RunDirectoryError(f"nothing to resume in {path}: it holds no checkpoint.pt")
        check_writable(path, flag)
        return path
    if started:
        raise RunDirectoryError(f"{path} already holds a run; pass --resume to continue it or choose another {flag}")
    if path.is_dir() and any(path.iterdir()) and not is_run(path):
        raise RunDirectoryError(f"{path} is a non-empty folder that is not a molssl run; choose a new or empty "
                                f"folder for {flag} (molssl would overwrite files there)")
    check_writable(path, flag)
    return path


def check_writable(path: str | os.PathLike, flag: str = "--out") -> None:
    """Fail early, with the folder named, when ``path`` (a folder, existing or not) could not be written into."""
    path = Path(path)
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirectoryError(f"cannot create {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"cannot write to {existing} (permission denied); choose another {flag}")


@contextlib.contextmanager
def locked_run_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Create ``path`` and hold an exclusive lock on it for the block; a second holder is refused."""
    import fcntl

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = open(path / LOCK_FILE, "a+", encoding="utf-8")
    except OSError as exc:
        raise RunDirectoryError(f"cannot write to {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunDirectoryError(f"{path} is in use by another molssl process (pid "
                                        f"{_lock_owner(path)}); wait for it or choose another --out") from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield path
    finally:
        handle.close()


def _lock_owner(path: Path) -> str:
    try:
        return (path / LOCK_FILE).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def open_run_dir(path: str | os.PathLike, *, resume: bool = False, main_process: bool = True) -> Iterator[Path]:
    """:func:`check_output_dir` then :func:`locked_run_dir` (other torchrun ranks only check nothing and write nothing)."""
    if not main_process:
        yield Path(path)
        return
    path = check_output_dir(path, resume=resume)
    with locked_run_dir(path):
        yield path


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and tuples compare as lists)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """``"key: saved -> current"`` for every setting that differs (dotted keys; ``ignore`` by last name or full key)."""
    ignore = set(ignore)
    a, b = flatten(json.loads(json.dumps(saved))), flatten(json.loads(json.dumps(current)))
    out = []
    for key in sorted(set(a) | set(b)):
        if key in ignore or key.rsplit(".", 1)[-1] in ignore:
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            out.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return out


def refuse_changed_resume(path: Path, saved: Mapping[str, Any], current: Mapping[str, Any],
                          ignore: Iterable[str] = ()) -> None:
    """Raise when a resumed run's settings differ from the saved ones, naming each difference."""
    differences = config_differences(saved, current, ignore)
    if differences:
        shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
        raise RunDirectoryError(f"--resume would continue {path} with other settings ({shown}); "
                                "resume with the run's own settings or start a new --out")
