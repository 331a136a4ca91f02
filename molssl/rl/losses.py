"""Soft Actor-Critic objectives (Haarnoja et al. 2018), as pure functions of network outputs.

SODA's auxiliary objective is :func:`molssl.core.losses.byol_loss`, used directly by the agent.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_q_target(
    reward: Tensor, not_done: Tensor, next_q1: Tensor, next_q2: Tensor, next_log_prob: Tensor, alpha: Tensor | float,
    discount: float,
) -> Tensor:
    """Bellman target ``r + discount * not_done * (min(Q1', Q2') - alpha * log pi(a'|s'))``, with no gradient."""
    soft_value = torch.min(next_q1, next_q2) - alpha * next_log_prob
    return (reward + discount * not_done * soft_value).detach()


def critic_loss(q1: Tensor, q2: Tensor, target: Tensor) -> Tensor:
    """Sum of the two Q-networks' mean squared Bellman errors."""
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def actor_loss(q1: Tensor, q2: Tensor, log_prob: Tensor, alpha: Tensor | float) -> Tensor:
    """``E[alpha * log pi(a|s) - min(Q1, Q2)(s, a)]`` for actions sampled from the policy."""
    return (alpha * log_prob - torch.min(q1, q2)).mean()


def temperature_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """``E[alpha * (-log pi - target_entropy)]``: raises alpha while the policy's entropy is below the target."""
    return (log_alpha.exp() * (-log_prob - target_entropy).detach()).mean()
