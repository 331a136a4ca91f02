"""A few updates of each method: what changes, what is augmented, and what the targets track."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from molssl.rl.agent import METHODS, AgentConfig
from molssl.rl.replay import ReplayBuffer


def _buffer(seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(64, (6, 16, 16), 1, seed=seed)
    for _ in range(32):
        buffer.add(rng.integers(0, 256, (6, 16, 16), dtype=np.uint8), rng.uniform(-1, 1, 1).astype(np.float32),
                   float(rng.normal()), rng.integers(0, 256, (6, 16, 16), dtype=np.uint8), False)
    return buffer


def _params(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.parametrize("method", METHODS)
def test_updates_train_every_part(small_agent, method):
    agent = small_agent(method)
    parts = {"encoder": agent.critic.encoder, "critic": agent.critic, "actor": agent.actor,
             "critic_target": agent.critic_target}
    before = {name: _params(part) for name, part in parts.items()}
    alpha = agent.alpha.item()
    buffer = _buffer()
    metrics = {}
    for step in range(4):
        metrics.update(agent.update(buffer, step))
    assert all(np.isfinite(v) for v in metrics.values())
    assert all(_changed(before[name], part) for name, part in parts.items())
    assert agent.alpha.item() != alpha
    action = agent.act(buffer.obs[0])
    assert action.shape == (1,) and -1 <= action[0] <= 1
    assert np.array_equal(agent.act(buffer.obs[0], deterministic=True), agent.act(buffer.obs[0], deterministic=True))
    assert ("soda_loss" in metrics) == (method == "soda")


def test_only_the_aux_loss_sees_augmented_observations_in_soda(small_agent, monkeypatch):
    agent = small_agent("soda")
    buffer = _buffer()
    sampled, critic_inputs, aux_inputs = [], [], []
    sample = buffer.sample
    monkeypatch.setattr(buffer, "sample", lambda n: sampled.append(sample(n)) or sampled[-1])
    update_critic, update_soda = agent.update_critic, agent.update_soda
    monkeypatch.setattr(agent, "update_critic", lambda obs, *a: critic_inputs.append(obs) or update_critic(obs, *a))
    monkeypatch.setattr(agent, "update_soda", lambda obs: aux_inputs.append(obs) or update_soda(obs))
    calls = []
    augment = agent.augment.forward
    monkeypatch.setattr(agent.augment, "forward", lambda obs: calls.append(obs) or augment(obs))
    for step in range(4):
        agent.update(buffer, step)
    assert len(critic_inputs) == 4 and len(aux_inputs) == 2 and len(calls) == 2  # aux every 2nd step
    assert torch.equal(critic_inputs[0], sampled[0].obs.float())  # clean observations for the RL loss
    assert all(torch.equal(c, a) for c, a in zip(calls, aux_inputs))  # only the aux branch augments


def test_sac_aug_trains_on_augmented_and_sac_on_clean_observations(small_agent, monkeypatch):
    assert small_agent("sac").augment is None
    agent = small_agent("sac-aug")
    buffer = _buffer()
    critic_inputs = []
    update_critic = agent.update_critic
    monkeypatch.setattr(agent, "update_critic", lambda obs, *a: critic_inputs.append(obs) or update_critic(obs, *a))
    rng_before = copy.deepcopy(buffer.rng)
    agent.update(buffer, 0)
    buffer.rng = rng_before  # draw the same batch again, without augmentation
    clean = buffer.sample(agent.config.batch_size).obs.float()
    assert critic_inputs[0].shape == clean.shape and not torch.allclose(critic_inputs[0], clean)


def test_soda_target_is_a_momentum_average_of_the_online_branch(small_agent):
    agent = small_agent("soda")
    target_before = _params(agent.soda_target)
    obs = _buffer().sample(8).obs.float()
    agent.update_soda(obs)
    m = agent.config.soda_momentum
    online = agent._soda_online().state_dict()
    for key, value in agent.soda_target.target.state_dict().items():
        if value.dtype.is_floating_point:
            want = m * target_before[f"target.{key}"] + (1 - m) * online[key]
            assert torch.allclose(value, want, atol=1e-6), key
    assert _changed(target_before, agent.soda_target)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown method"):
        AgentConfig(method="curl")
    with pytest.raises(ValueError, match="unknown augmentation"):
        AgentConfig(augmentation="crop")
