"""Pixel environment: shapes, frame stacking, action repeat, and shifts that change pixels but not dynamics."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from molssl.rl.env import ActionRepeat, EnvConfig, make_env


def _rollout(env: gym.Env, seed: int, steps: int = 4) -> tuple[list, list]:
    obs, _ = env.reset(seed=seed)
    frames, rewards = [obs], []
    for t in range(steps):
        obs, reward, *_ = env.step(np.array([np.sin(t)], dtype=np.float32))
        frames.append(obs)
        rewards.append(reward)
    return frames, rewards


def test_observations_are_stacked_uint8_frames(env_config):
    env = make_env(env_config)
    assert env.observation_space.shape == (6, 16, 16)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    first, _ = env.reset(seed=0)
    assert first.shape == (6, 16, 16) and first.dtype == np.uint8
    assert np.array_equal(first[:3], first[3:])  # reset fills the stack with the first frame
    second, *_ = env.step(np.array([1.0], dtype=np.float32))
    assert np.array_equal(second[:3], first[3:])  # the stack shifts by one frame
    assert not np.array_equal(second[3:], first[3:])
    env.close()


def test_episode_length_counts_underlying_steps(env_config):
    env = make_env(env_config)  # 20 task steps, action repeat 2 -> 10 agent steps
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        *_, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        steps += 1
    assert steps == 10


def test_action_repeat_sums_rewards():
    plain = gym.make("Pendulum-v1")
    repeated = ActionRepeat(gym.make("Pendulum-v1"), 3)
    plain.reset(seed=4)
    repeated.reset(seed=4)
    action = np.array([0.7], dtype=np.float32)
    want = sum(plain.step(action)[1] for _ in range(3))
    assert repeated.step(action)[1] == pytest.approx(want)


@pytest.mark.parametrize("shift", ["colour", "background"])
def test_shifts_change_pixels_not_dynamics(env_config, shift):
    clean_frames, clean_rewards = _rollout(make_env(env_config), seed=1)
    frames, rewards = _rollout(make_env(env_config, shift), seed=1)
    again, _ = _rollout(make_env(env_config, shift), seed=1)
    assert rewards == clean_rewards
    assert all(not np.array_equal(a, b) for a, b in zip(frames, clean_frames))
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))  # a seed fixes the shift
    other, _ = _rollout(make_env(env_config, shift), seed=2)
    assert not np.array_equal(other[0], frames[0])
    # the clean background is white; shifted backgrounds are not
    corner = (slice(None), 0, 0)
    assert (clean_frames[0][corner] >= 250).all() and not (frames[0][corner] >= 250).all()


def test_bad_settings_are_rejected(env_config):
    with pytest.raises(ValueError, match="continuous"):
        make_env(EnvConfig(env_id="CartPole-v1"))
    with pytest.raises(ValueError, match="cannot make"):
        make_env(EnvConfig(env_id="NoSuchTask-v0"))
    with pytest.raises(ValueError, match="unknown shift"):
        make_env(env_config, "snow")
    with pytest.raises(ValueError, match="image_size"):
        EnvConfig(image_size=4)
