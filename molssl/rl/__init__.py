"""Reinforcement learning from pixels with SODA (Hansen & Wang 2021) on the shared contrastive core.

SAC with a shared convolutional encoder; ``sac-aug`` trains it on augmented pixels; ``soda`` adds a
BYOL-style consistency objective between augmented and clean observations. See ``docs/rl.md``.
The names below are imported lazily, so that ``molssl.cli.rl`` loads without torch or gymnasium.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "METHODS": "agent", "Agent": "agent", "AgentConfig": "agent",
    "EnvConfig": "env", "make_env": "env",
    "evaluate": "evaluation", "load_agent": "evaluation",
    "SHIFTS": "shifts",
    "TrainConfig": "trainer", "train": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'molssl.rl' has no attribute {name!r}")
    return getattr(importlib.import_module(f"molssl.rl.{_EXPORTS[name]}"), name)
