"""Tiny settings shared by the RL tests: 16-pixel frames, short episodes, small networks."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture
def env_config():
    from molssl.rl.env import EnvConfig

    return EnvConfig(image_size=16, render_size=32, frame_stack=2, action_repeat=2, max_episode_steps=20)


@pytest.fixture
def small_agent():
    """A builder of small agents for 16-pixel observations with 2 stacked frames and one action."""
    from molssl.rl.agent import Agent, AgentConfig

    def build(method: str, **overrides) -> Agent:
        torch.manual_seed(0)
        config = AgentConfig(method=method, num_filters=8, feature_dim=16, hidden_dim=32, batch_size=8,
                             aux_batch_size=8, projection_dim=8, projection_hidden=16, **overrides)
        return Agent((6, 16, 16), 1, config, torch.device("cpu"))

    return build


@pytest.fixture(autouse=True)
def _every_test_on_one_thread(one_torch_thread):
    """Every test here opts in to the shared one-thread fixture (tests/conftest.py)."""
