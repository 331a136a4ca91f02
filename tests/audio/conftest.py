"""Fixtures: synthetic tone/chirp WAV folders in a tmp dir, so no test needs espeak-ng."""
from __future__ import annotations

from pathlib import Path

import pytest

from .synthetic import make_folder


@pytest.fixture(scope="session")
def tone_folders(tmp_path_factory) -> tuple[Path, Path]:
    """(train, test) folders of 3 classes x 6 / 4 clips, 0.3 s at 8 kHz."""
    base = tmp_path_factory.mktemp("tones")
    return make_folder(base / "train", 6, seed=0), make_folder(base / "test", 4, seed=1)


@pytest.fixture(autouse=True)
def _every_test_on_one_thread(one_torch_thread):
    """Every test here opts in to the shared one-thread fixture (tests/conftest.py)."""
