"""Evaluate a trained agent, deterministically, in the training environment and in visually shifted ones."""
from __future__ import annotations

import os

import numpy as np
import torch

from molssl.core.checkpoint import load_checkpoint
from molssl.core.config_compat import VERSION_KEY, fill_defaults
from molssl.errors import MolsslError
from molssl.rl.agent import Agent, AgentConfig
from molssl.rl.env import PREPROCESSING, EnvConfig, make_env

EVAL_SEED = 10_000  # evaluation episodes use seeds EVAL_SEED, EVAL_SEED + 1, ... for every method and shift


def evaluate(agent: Agent, env_config: EnvConfig, shift: str = "none", episodes: int = 5, seed: int = EVAL_SEED) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes with the policy's mean action."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    env = make_env(env_config, shift)
    returns = []
    was_training = agent.training
    agent.eval()
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=True))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
        agent.train(was_training)
    return returns


def summarize(returns: list[float]) -> dict:
    return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "returns": [float(r) for r in returns]}


def load_agent(path: str | os.PathLike, device: torch.device) -> tuple[Agent, EnvConfig]:
    """Rebuild an agent and its environment settings from ``agent.pt`` or ``checkpoint.pt`` of a training run."""
    ckpt = load_checkpoint(path, map_location=device)
    if "agent" not in ckpt or "config" not in ckpt:
        raise MolsslError(f"{path} is not an RL checkpoint (no 'agent' weights or 'config')")
    config = fill_defaults("rl", ckpt["config"], ckpt["config"].get(VERSION_KEY), source=str(path))
    if config.get("preprocessing", PREPROCESSING) != PREPROCESSING:
        raise MolsslError(f"{path} was trained with pixel preprocessing version {config['preprocessing']}, but this "
                          f"molssl uses version {PREPROCESSING}; re-train it")
    env_config = EnvConfig(**config["env"])
    agent_config = AgentConfig(**config["agent"])
    agent = Agent(tuple(ckpt["obs_shape"]), ckpt["action_dim"], agent_config, device)
    agent.load_state_dict(ckpt["agent"])
    return agent, env_config

