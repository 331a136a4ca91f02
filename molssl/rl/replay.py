"""A uniform replay buffer of pixel transitions (uint8 frames, float actions), with a seeded sampler."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor


@dataclass
class Transitions:
    """A batch: ``obs``/``next_obs`` uint8 (N, C, H, W); ``action`` (N, A); ``reward``, ``not_done`` (N, 1)."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    not_done: Tensor


class ReplayBuffer:
    """Keeps the last ``capacity`` transitions; ``not_done`` is 0 only for true terminations, not time limits."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], action_dim: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, *obs_shape), dtype=np.uint8)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=np.uint8)
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros((capacity, 1), dtype=np.float32)
        self.not_done = np.zeros((capacity, 1), dtype=np.float32)
        self.index = 0
        self.full = False
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.capacity if self.full else self.index

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        if obs.shape != self.obs.shape[1:] or next_obs.shape != self.obs.shape[1:]:
            raise ValueError(f"observation shape {obs.shape} does not match the buffer's {self.obs.shape[1:]}")
        i = self.index
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.action[i] = action
        self.reward[i] = reward
        self.not_done[i] = 0.0 if terminated else 1.0
        self.index = (i + 1) % self.capacity
        self.full = self.full or self.index == 0

    def sample(self, batch_size: int) -> Transitions:
        """``batch_size`` transitions drawn uniformly with replacement, as CPU tensors."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, len(self), size=batch_size)
        return Transitions(
            obs=torch.from_numpy(self.obs[idx]),
            action=torch.from_numpy(self.action[idx]),
            reward=torch.from_numpy(self.reward[idx]),
            next_obs=torch.from_numpy(self.next_obs[idx]),
            not_done=torch.from_numpy(self.not_done[idx]),
        )

    def state_dict(self) -> dict:
        n = len(self)
        return {
            "capacity": self.capacity,
            "index": self.index,
            "full": self.full,
            "rng": self.rng.bit_generator.state,
            **{name: getattr(self, name)[:n].copy() for name in ("obs", "next_obs", "action", "reward", "not_done")},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a buffer of the same capacity exactly, or move its transitions, oldest first, into a larger one."""
        n = state["obs"].shape[0]
        if state["obs"].shape[1:] != self.obs.shape[1:] or n > self.capacity:
            raise ValueError(
                f"checkpointed buffer ({n} transitions of frames {state['obs'].shape[1:]}) does not fit "
                f"this one (capacity {self.capacity}, frames {self.obs.shape[1:]})"
            )
        same = state["capacity"] == self.capacity
        order = np.roll(np.arange(n), -state["index"]) if state["full"] and not same else np.arange(n)
        for name in ("obs", "next_obs", "action", "reward", "not_done"):
            getattr(self, name)[:n] = state[name][order]
        if same:
            self.index, self.full = state["index"], state["full"]
        else:
            self.index, self.full = n % self.capacity, n == self.capacity
        self.rng.bit_generator.state = state["rng"]
