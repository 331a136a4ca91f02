"""Pixel-based control tasks from gymnasium: rendered to RGB, optionally shifted, downscaled, action-repeated, stacked."""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.spaces import Box
from gymnasium.wrappers import RescaleAction

from molssl.core.config_compat import DefaultChange, register_changes
from molssl.rl.shifts import SHIFTS, FrameShift

PREPROCESSING = 1  # version of the pixel pipeline (render, shift, antialiased downscale, frame stack); in every run record
# Fields RL run records gained when versions began to be recorded (molssl.core.config_compat).
register_changes("rl", [DefaultChange("modality", "0.1.0", "rl"), DefaultChange("preprocessing", "0.1.0", 1)])


@dataclass
class EnvConfig:
    """How a task is turned into a pixel task; ``max_episode_steps`` counts steps of the underlying task."""

    env_id: str = "Pendulum-v1"
    image_size: int = 64
    render_size: int = 64
    frame_stack: int = 3
    action_repeat: int = 2
    max_episode_steps: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("image_size", "render_size"):
            if getattr(self, name) < 8:
                raise ValueError(f"{name} must be at least 8 pixels, got {getattr(self, name)}")
        for name in ("frame_stack", "action_repeat"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be positive, got {self.max_episode_steps}")


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` times (stopping at the end of an episode) and sum the rewards."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        self.repeat = repeat

    def step(self, action: Any):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class PixelObservation(gym.Wrapper):
    """Observe the rendered frame, shifted by a per-episode :class:`FrameShift`, as uint8 (3, size, size)."""

    def __init__(self, env: gym.Env, image_size: int, shift: str = "none") -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"pixel observations need render_mode='rgb_array', got {env.render_mode!r}")
        if shift not in SHIFTS:
            raise ValueError(f"unknown shift {shift!r}; choose one of {SHIFTS}")
        self.image_size = image_size
        self.shift_kind = shift
        self._rng = np.random.default_rng(0)
        self._shift: Optional[FrameShift] = None
        self.observation_space = Box(0, 255, (3, image_size, image_size), np.uint8)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        _, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        frame = self.env.render()
        self._shift = FrameShift(self.shift_kind, self._rng, frame.shape[0], frame.shape[1])
        return self._observe(frame), info

    def step(self, action: Any):
        if self._shift is None:
            raise RuntimeError("call reset() before step()")
        _, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(self.env.render()), reward, terminated, truncated, info

    def _observe(self, frame: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(self._shift(frame))).permute(2, 0, 1)[None].float()
        size = (self.image_size, self.image_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return x[0].round().clamp(0, 255).to(torch.uint8).numpy()


class FrameStack(gym.Wrapper):
    """Concatenate the last ``k`` (C, H, W) observations along the channel axis (the oldest first)."""

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        c, h, w = env.observation_space.shape
        self.k = k
        self._frames: deque = deque(maxlen=k)
        self.observation_space = Box(0, 255, (c * k, h, w), np.uint8)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        obs, info = self.env.reset(seed=seed, options=options)
        for _ in range(self.k):
            self._frames.append(obs)
        return self._stacked(), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(obs)
        return self._stacked(), reward, terminated, truncated, info

    def _stacked(self) -> np.ndarray:
        return np.concatenate(self._frames, axis=0)


def _set_render_size(env: gym.Env, size: int) -> None:
    """Render square tasks (Pendulum, Acrobot) directly at ``size`` pixels; others are rendered natively and resized."""
    if hasattr(env, "screen_dim"):
        env.screen_dim = size
    elif hasattr(env, "SCREEN_DIM"):
        env.SCREEN_DIM = size


def make_env(config: EnvConfig, shift: str = "none") -> gym.Env:
    """A continuous-control task with actions in [-1, 1] observed as stacked (3 * frame_stack, size, size) uint8 images."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless pygame rendering
    try:
        env = gym.make(config.env_id, render_mode="rgb_array", max_episode_steps=config.max_episode_steps)
    except gym.error.Error as exc:
        raise ValueError(f"cannot make gymnasium environment {config.env_id!r}: {exc}") from exc
    if not isinstance(env.action_space, Box):
        env.close()
        raise ValueError(
            f"{config.env_id} has a {type(env.action_space).__name__} action space; SAC needs a continuous (Box) one, "
            "e.g. Pendulum-v1 or MountainCarContinuous-v0"
        )
    _set_render_size(env.unwrapped, config.render_size)
    env = RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    if config.action_repeat > 1:
        env = ActionRepeat(env, config.action_repeat)
    env = PixelObservation(env, config.image_size, shift)
    return FrameStack(env, config.frame_stack)
