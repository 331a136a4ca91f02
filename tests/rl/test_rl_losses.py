"""Each RL objective against a naive per-sample implementation."""
from __future__ import annotations

import math

import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from molssl.rl.losses import actor_loss, critic_loss, soft_q_target, temperature_loss
from molssl.rl.networks import squashed_gaussian


def _batch(n: int = 7, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(n, 1, generator=g) for name in ("reward", "q1", "q2", "nq1", "nq2", "log_prob", "t")}


def test_soft_q_target_matches_loop():
    b = _batch()
    not_done = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0], [1.0], [1.0]])
    alpha, gamma = 0.3, 0.9
    got = soft_q_target(b["reward"], not_done, b["nq1"], b["nq2"], b["log_prob"], alpha, gamma)
    for i in range(7):
        soft_v = min(b["nq1"][i].item(), b["nq2"][i].item()) - alpha * b["log_prob"][i].item()
        want = b["reward"][i].item() + gamma * not_done[i].item() * soft_v
        assert math.isclose(got[i].item(), want, rel_tol=1e-5, abs_tol=1e-6)
    assert not got.requires_grad


def test_critic_loss_matches_loop():
    b = _batch(seed=1)
    want = sum((b["q1"][i] - b["t"][i]) ** 2 + (b["q2"][i] - b["t"][i]) ** 2 for i in range(7)) / 7
    assert torch.allclose(critic_loss(b["q1"], b["q2"], b["t"]), want.squeeze(), atol=1e-6)


def test_actor_loss_matches_loop():
    b = _batch(seed=2)
    alpha = 0.2
    want = sum(alpha * b["log_prob"][i] - torch.min(b["q1"][i], b["q2"][i]) for i in range(7)) / 7
    assert torch.allclose(actor_loss(b["q1"], b["q2"], b["log_prob"], alpha), want.squeeze(), atol=1e-6)


def test_temperature_loss_matches_loop_and_raises_alpha_when_entropy_is_low():
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    log_prob = torch.tensor([[2.0], [1.0], [3.0]])  # entropy about -2, below the target of -1
    loss = temperature_loss(log_alpha, log_prob, target_entropy=-1.0)
    want = sum(0.5 * (-log_prob[i].item() + 1.0) for i in range(3)) / 3
    assert math.isclose(loss.item(), want, rel_tol=1e-6)
    loss.backward()
    assert log_alpha.grad < 0  # gradient descent increases alpha


def test_squashed_gaussian_log_prob_matches_torch_distribution():
    torch.manual_seed(0)
    mean, log_std = torch.randn(16, 2) * 0.5, torch.randn(16, 2) * 0.3 - 0.5
    action, log_prob = squashed_gaussian(mean, log_std)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)])
    assert action.abs().max() < 1
    assert torch.allclose(log_prob, reference.log_prob(action).sum(dim=1, keepdim=True), atol=1e-3)
    det_action, _ = squashed_gaussian(mean, log_std, deterministic=True)
    assert torch.equal(det_action, torch.tanh(mean))


def test_soda_consistency_loss_matches_naive(small_agent):
    agent = small_agent("soda")
    torch.manual_seed(1)
    clean = torch.rand(8, 6, 16, 16) * 255
    augmented = torch.rand(8, 6, 16, 16) * 255
    loss = agent.consistency_loss(clean, augmented)
    feats = agent.critic.trunk(agent.critic.encoder(augmented))
    p = agent.predictor(agent.projection(feats))
    target = agent.soda_target.target
    with torch.no_grad():
        z = target[2](target[1](target[0](clean)))
    want = sum(((p[i] / p[i].norm() - z[i] / z[i].norm()) ** 2).sum() for i in range(8)) / 8
    assert torch.allclose(loss, want, atol=1e-5)
    loss.backward()
    assert all(param.grad is None for param in agent.soda_target.parameters())
    assert agent.critic.encoder.convs[0].weight.grad.abs().sum() > 0  # the shared encoder is trained
