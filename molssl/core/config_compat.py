"""Reading run configs that older molssl versions wrote: missing fields get the defaults of the writer.

Every run records its full effective configuration and ``molssl_version``. A file written before a
field existed (or before its default changed) lacks that field; filling it with *today's* default
would silently rebuild another model (as happened when the pretext heads' ``conv_head`` default
changed). Each modality registers a small table of :class:`DefaultChange` rows; :func:`fill_defaults`
gives a saved config the defaults of the version that wrote it and says so once per file.
Files written before versions were recorded count as older than every listed version.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

VERSION_KEY = "molssl_version"


def _always(_config: Mapping) -> bool:
    return True


@dataclass(frozen=True)
class DefaultChange:
    """One field whose default changed (or that did not exist) before molssl version ``since``.

    ``old`` is the value files written before ``since`` used, or a callable ``(saved, context) -> value``
    when it must be inferred (e.g. from the weights in ``context["weights"]``). ``applies(saved)`` limits
    the row to some configs (e.g. one method). ``key`` is dotted (``"options.conv_head"``).
    """

    key: str
    since: str
    old: Any = None
    applies: Callable[[Mapping], bool] = field(default=_always, compare=False)


_CHANGES: dict[str, list[DefaultChange]] = {}
_ANNOUNCED: set[tuple[str, str]] = set()


def register_changes(kind: str, changes: Iterable[DefaultChange]) -> None:
    """Declare the changed defaults of run configs of ``kind`` (``"vision"``, ``"audio"``, ...); idempotent."""
    rows = _CHANGES.setdefault(kind, [])
    for change in changes:
        if change not in rows:
            rows.append(change)


def parse_version(text: Optional[str]) -> tuple[int, ...]:
    """``"0.1.0"`` -> ``(0, 1, 0)``; None (a file from before versions were recorded) -> ``()``, older than all."""
    if not text:
        return ()
    return tuple(int(part) for part in re.findall(r"\d+", str(text).split("+")[0])[:3])


def current_version() -> str:
    from molssl import __version__

    return __version__


def with_version(record: Mapping[str, Any]) -> dict:
    """``record`` with the running molssl version added (what every run directory and checkpoint stores)."""
    return {**record, VERSION_KEY: current_version()}


def _get(config: Mapping, dotted: str) -> tuple[bool, Any]:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(config: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def fill_defaults(kind: str, saved_config: Mapping[str, Any], saved_version: Optional[str],
                  log: Callable[[str], None] = print, *, context: Optional[Mapping[str, Any]] = None,
                  source: str = "") -> dict:
    """A copy of ``saved_config`` in which every registered field the file lacks holds the default of the
    version that wrote it (``saved_version``; None: unversioned). Fields the table does not list are left
    to the reader's current defaults (they have not changed). The fills are reported once per ``source``.
    """
    config = copy.deepcopy(dict(saved_config))
    written = parse_version(saved_version)
    filled = []
    for change in _CHANGES.get(kind, []):
        if written >= parse_version(change.since) or not change.applies(config):
            continue
        present, _ = _get(config, change.key)
        if present:
            continue
        value = change.old(config, context or {}) if callable(change.old) else copy.deepcopy(change.old)
        _set(config, change.key, value)
        filled.append(f"{change.key}={value!r}")
    key = (kind, source or repr(sorted(saved_config)))
    if filled and key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        writer = f"molssl {saved_version}" if saved_version else "a molssl version that did not record its version"
        log(f"{source or 'this ' + kind + ' run'} was written by {writer}; using that version's defaults for "
            f"{', '.join(filled)}")
    return config
