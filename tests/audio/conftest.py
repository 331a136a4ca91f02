"""Fixtures: synthetic tone/chirp WAV folders in a tmp dir, so no test needs espeak-ng."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .synthetic import make_folder


@pytest.fixture(scope="session")
def tone_folders(tmp_path_factory) -> tuple[Path, Path]:
    """(train, test) folders of 3 classes x 6 / 4 clips, 0.3 s at 8 kHz."""
    base = tmp_path_factory.mktemp("tones")
    return make_folder(base / "train", 6, seed=0), make_folder(base / "test", 4, seed=1)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each audio test on one CPU thread (much faster on a shared, oversubscribed machine), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
