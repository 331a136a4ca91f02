"""Replay buffer: transitions stay aligned, the oldest are overwritten, sampling resumes exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from molssl.rl.replay import ReplayBuffer

SHAPE = (3, 4, 4)


def _fill(buffer: ReplayBuffer, count: int) -> None:
    for i in range(count):
        obs = np.full(SHAPE, i % 256, dtype=np.uint8)
        buffer.add(obs, np.array([i], dtype=np.float32), float(i), np.full(SHAPE, (i + 1) % 256, np.uint8), i % 5 == 4)


def test_sampled_fields_belong_to_the_same_transition():
    buffer = ReplayBuffer(50, SHAPE, 1, seed=0)
    _fill(buffer, 30)
    batch = buffer.sample(64)
    i = batch.action[:, 0].long()
    assert batch.obs.shape == (64, *SHAPE) and batch.obs.dtype == torch.uint8
    assert (i < 30).all()
    assert (batch.reward[:, 0] == i.float()).all()
    assert (batch.obs[:, 0, 0, 0] == i % 256).all() and (batch.next_obs[:, 0, 0, 0] == (i + 1) % 256).all()
    assert (batch.not_done[:, 0] == (i % 5 != 4).float()).all()


def test_oldest_transitions_are_overwritten():
    buffer = ReplayBuffer(10, SHAPE, 1, seed=0)
    _fill(buffer, 13)
    assert len(buffer) == 10
    seen = set(buffer.sample(500).action[:, 0].long().tolist())
    assert seen == set(range(3, 13))


def test_state_dict_round_trip_continues_the_same_samples():
    a = ReplayBuffer(20, SHAPE, 1, seed=3)
    _fill(a, 12)
    a.sample(4)
    b = ReplayBuffer(20, SHAPE, 1, seed=99)
    b.load_state_dict(a.state_dict())
    assert len(b) == 12
    assert (a.sample(8).action == b.sample(8).action).all()
    _fill(a, 1)
    _fill(b, 1)
    assert a.index == b.index == 13


def test_a_larger_buffer_takes_the_transitions_oldest_first():
    small = ReplayBuffer(5, SHAPE, 1)
    _fill(small, 7)  # holds transitions 2..6, wrapped around
    large = ReplayBuffer(8, SHAPE, 1)
    large.load_state_dict(small.state_dict())
    assert len(large) == 5 and large.action[:5, 0].tolist() == [2, 3, 4, 5, 6]
    _fill(large, 1)  # the next transition goes after them, overwriting nothing
    assert large.action[:6, 0].tolist() == [2, 3, 4, 5, 6, 0]


def test_bad_use_is_rejected():
    buffer = ReplayBuffer(5, SHAPE, 1)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2)
    with pytest.raises(ValueError, match="shape"):
        buffer.add(np.zeros((3, 5, 5), np.uint8), np.zeros(1), 0.0, np.zeros((3, 5, 5), np.uint8), False)
    _fill(buffer, 5)
    with pytest.raises(ValueError, match="does not fit"):
        ReplayBuffer(4, SHAPE, 1).load_state_dict(buffer.state_dict())
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, SHAPE, 1)
