"""SAC from pixels, SAC trained on augmented pixels, and SAC + SODA (Hansen & Wang 2021).

* ``sac``: actor and critic see clean observations.
* ``sac-aug``: actor and critic see augmented observations (naive data augmentation).
* ``soda``: the RL losses see clean observations only; an auxiliary BYOL-style consistency loss
  pulls the prediction ``h(g(f(aug(o))))`` towards the momentum target's projection ``g'(f'(o))`` of
  the clean observation, training the shared encoder ``f``. The target is an EMA of ``(f, g)``.

Defaults follow SODA / SAC-AE where a small CPU budget allows (lr 1e-3 actor/critic, 3e-4 SODA,
batch 128, discount 0.99, initial temperature 0.1, actor and target updates every 2 steps, critic
target momentum 0.99 heads / 0.95 encoder, SODA projection 100-d, SODA momentum 0.995, overlay
alpha 0.5); the networks are smaller than the paper's (2 conv layers instead of 11, 256 hidden units).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from molssl.core.device import move_to
from molssl.core.heads import PredictionHead, ProjectionHead
from molssl.core.losses import byol_loss
from molssl.core.momentum import MomentumEncoder, ema_update
from molssl.rl.augment import AUGMENTATIONS, Augmentation
from molssl.rl.losses import actor_loss, critic_loss, soft_q_target, temperature_loss
from molssl.rl.networks import Actor, ConvEncoder, Critic, squashed_gaussian
from molssl.rl.replay import ReplayBuffer

METHODS = ("sac", "sac-aug", "soda")


@dataclass
class AgentConfig:
    method: str = "soda"
    augmentation: str = "overlay"
    overlay_alpha: float = 0.5
    strides: Sequence[int] = field(default_factory=lambda: (2, 2))
    num_filters: int = 32
    feature_dim: int = 50
    hidden_dim: int = 256
    batch_size: int = 128
    discount: float = 0.99
    lr: float = 1e-3
    alpha_lr: float = 1e-4
    init_temperature: float = 0.1
    critic_momentum: float = 0.99
    encoder_momentum: float = 0.95
    actor_update_freq: int = 2
    target_update_freq: int = 2
    aux_update_freq: int = 2
    aux_lr: float = 3e-4
    aux_batch_size: int = 128
    projection_dim: int = 100
    projection_hidden: int = 256
    soda_momentum: float = 0.995

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augmentation!r}; choose one of {AUGMENTATIONS}")
        for name in ("batch_size", "aux_batch_size", "actor_update_freq", "target_update_freq", "aux_update_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        self.strides = tuple(self.strides)


class Agent(nn.Module):
    """The three methods share this agent; ``config.method`` decides where augmentation enters."""

    def __init__(self, obs_shape: Sequence[int], action_dim: int, config: AgentConfig, device: torch.device) -> None:
        super().__init__()
        self.config = config
        self.device = device
        self.target_entropy = -float(action_dim)
        encoder = ConvEncoder(obs_shape, config.strides, config.num_filters)
        self.critic = Critic(encoder, action_dim, config.feature_dim, config.hidden_dim)
        self.actor = Actor(encoder.out_dim, action_dim, config.feature_dim, config.hidden_dim)
        self.critic_target = MomentumEncoder(self.critic, config.critic_momentum)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_temperature)))
        self.augment = None if config.method == "sac" else Augmentation(
            config.augmentation, obs_shape[-1], config.overlay_alpha)
        if config.method == "soda":
            self.projection = ProjectionHead(config.feature_dim, config.projection_hidden, config.projection_dim)
            self.predictor = PredictionHead(config.projection_dim, config.projection_hidden, config.projection_dim)
            self.soda_target = MomentumEncoder(self._soda_online(), config.soda_momentum)
        self.to(device)
        self.optimizers = {
            "critic": torch.optim.Adam(self.critic.parameters(), lr=config.lr),
            "actor": torch.optim.Adam(self.actor.parameters(), lr=config.lr),
            "alpha": torch.optim.Adam([self.log_alpha], lr=config.alpha_lr, betas=(0.5, 0.999)),
        }
        if config.method == "soda":
            aux_params = [*self._soda_online().parameters(), *self.predictor.parameters()]
            self.optimizers["aux"] = torch.optim.Adam(aux_params, lr=config.aux_lr)

    # ------------------------------------------------------------------ acting
    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.exp()

    def _policy(self, conv_features: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Action and log-probability from conv features; the actor never trains the encoder."""
        mean, log_std = self.actor(conv_features.detach())
        return squashed_gaussian(mean, log_std, deterministic)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """An action in [-1, 1]^A for one stacked observation (C, H, W)."""
        x = torch.as_tensor(obs, device=self.device).float()[None]
        action, _ = self._policy(self.critic.encoder(x), deterministic)
        return action[0].cpu().numpy()

    # ------------------------------------------------------------------ SAC
    def _step(self, name: str, loss: Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def update_critic(
        self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, not_done: Tensor
    ) -> tuple[dict, Tensor]:
        """One critic step; also returns the conv features of ``obs`` (pre-step) for the actor update."""
        with torch.no_grad():
            next_action, next_log_prob = self._policy(self.critic.encoder(next_obs))
            next_q1, next_q2 = self.critic_target(next_obs, next_action)
            target = soft_q_target(reward, not_done, next_q1, next_q2, next_log_prob, self.alpha,
                                   self.config.discount)
        conv = self.critic.encoder(obs)
        q1, q2 = self.critic.q_values(conv, action)
        loss = critic_loss(q1, q2, target)
        self._step("critic", loss)
        return {"critic_loss": loss.item(), "q": q1.mean().item()}, conv.detach()

    def update_actor_and_alpha(self, conv: Tensor) -> dict:
        """Actor and temperature steps on detached conv features (shared with the critic step, as in DrQ-v2)."""
        action, log_prob = self._policy(conv)
        q1, q2 = self.critic.q_values(conv.detach(), action)
        loss = actor_loss(q1, q2, log_prob, self.alpha.detach())
        self._step("actor", loss)
        alpha_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
        self._step("alpha", alpha_loss)
        return {"actor_loss": loss.item(), "alpha": self.alpha.item(), "entropy": -log_prob.mean().item()}

    def update_critic_target(self) -> None:
        """EMA of the critic: a faster one for the encoder and trunk, a slower one for the Q heads (SAC-AE)."""
        target = self.critic_target.target
        ema_update(target.encoder, self.critic.encoder, self.config.encoder_momentum)
        ema_update(target.trunk, self.critic.trunk, self.config.encoder_momentum)
        ema_update(target.q1, self.critic.q1, self.config.critic_momentum)
        ema_update(target.q2, self.critic.q2, self.config.critic_momentum)

    # ------------------------------------------------------------------ SODA
    def _soda_online(self) -> nn.Sequential:
        """The online branch ``g(f(o))``: shared encoder, critic trunk, projection (a view, not a copy)."""
        return nn.Sequential(self.critic.encoder, self.critic.trunk, self.projection)

    def consistency_loss(self, clean: Tensor, augmented: Tensor) -> Tensor:
        """SODA: ``byol_loss(h(g(f(augmented))), g'(f'(clean)))`` with the momentum target ``(f', g')``."""
        prediction = self.predictor(self._soda_online()(augmented))
        return byol_loss(prediction, self.soda_target(clean))

    def update_soda(self, obs: Tensor) -> dict:
        loss = self.consistency_loss(obs, self.augment(obs))
        self._step("aux", loss)
        self.soda_target.update(self._soda_online())
        return {"soda_loss": loss.item()}

    # ------------------------------------------------------------------ one training step
    def update(self, buffer: ReplayBuffer, step: int) -> dict:
        """One SAC update (critic; actor, temperature and target every few steps) plus SODA's auxiliary update."""
        cfg = self.config
        self.train()
        batch = move_to(buffer.sample(cfg.batch_size), self.device)
        obs, next_obs = batch.obs.float(), batch.next_obs.float()
        if cfg.method == "sac-aug":
            obs, next_obs = self.augment(obs), self.augment(next_obs)
        metrics, conv = self.update_critic(obs, batch.action, batch.reward, next_obs, batch.not_done)
        if step % cfg.actor_update_freq == 0:
            metrics.update(self.update_actor_and_alpha(conv))
        if step % cfg.target_update_freq == 0:
            self.update_critic_target()
        if cfg.method == "soda" and step % cfg.aux_update_freq == 0:
            aux_obs = move_to(buffer.sample(cfg.aux_batch_size).obs, self.device).float()
            metrics.update(self.update_soda(aux_obs))
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def optimizer_state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_optimizer_state_dict(self, state: dict) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
