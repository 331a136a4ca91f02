"""The RL training loop: interact, store, update; atomic checkpoints at episode ends make resuming exact.

RL keeps this loop instead of :func:`molssl.core.fit.fit`: a step is an environment interaction plus an
update with four optimizers (critic, actor, temperature, SODA's auxiliary) at different frequencies and
constant learning rates, and resuming needs the replay buffer, the episode position and the action RNG,
none of which fit's one-optimizer, batch-source shape holds. The run directory, the config record
(every setting and the molssl version), the resume check and checkpoint I/O are the core's.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from molssl.core.checkpoint import atomic_save, load_checkpoint, rng_state, seed_everything, set_rng_state
from molssl.core.config_compat import VERSION_KEY, fill_defaults, with_version
from molssl.core.device import resolve_device
from molssl.core.rundir import open_run_dir, refuse_changed_resume
from molssl.core.runs import write_record
from molssl.core.stopping import Terminated, stop_on_sigterm
from molssl.rl.agent import Agent, AgentConfig
from molssl.rl.env import PREPROCESSING, EnvConfig, make_env
from molssl.rl.evaluation import evaluate, summarize
from molssl.rl.replay import ReplayBuffer

CHECKPOINT = "checkpoint.pt"  # everything needed to resume, replay buffer included
AGENT = "agent.pt"  # final weights and configuration only, for evaluation
METRICS = "metrics.jsonl"
# Settings a resumed run may change: the budget (raising --steps continues the run; SAC's learning rates
# are constant, so no schedule is stretched), evaluation, checkpointing and the device.
RESUME_MAY_CHANGE = ("steps", "eval_every", "eval_episodes", "checkpoint_every", "device", VERSION_KEY)


@dataclass
class TrainConfig:
    """Budget of a run; ``steps`` are agent steps, each ``action_repeat`` steps of the underlying task."""

    steps: int = 5000
    init_steps: int = 500
    seed: int = 0
    eval_every: int = 0
    eval_episodes: int = 5
    checkpoint_every: int = 1000
    buffer_capacity: Optional[int] = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be positive, got {self.steps}")
        if not 0 <= self.init_steps <= self.steps:
            raise ValueError(f"init_steps must be in [0, steps={self.steps}], got {self.init_steps}")
        if self.buffer_capacity is not None and self.buffer_capacity < 1:
            raise ValueError(f"buffer_capacity must be positive, got {self.buffer_capacity}")


def run_config(env: EnvConfig, agent: AgentConfig, train: TrainConfig) -> dict:
    """The JSON-able description of a run (every setting, the pixel preprocessing version and the molssl
    version), stored in its checkpoints and in ``config.json``."""
    return with_version({"modality": "rl", "env": asdict(env), "agent": {**asdict(agent), "strides": list(agent.strides)},
                         "train": asdict(train), "preprocessing": PREPROCESSING})


def episode_seed(seed: int, episode: int) -> int:
    """The reset seed of training episode ``episode``, disjoint from the evaluation seeds (10000, 10001, ...)."""
    return 1_000_000 + seed * 100_000 + episode


class Trainer:
    """Owns the environment, agent, replay buffer and loop position of one run in ``out_dir``."""

    def __init__(self, env_config: EnvConfig, agent_config: AgentConfig, train_config: TrainConfig,
                 out_dir: str | Path, log: Callable[[str], None] = print) -> None:
        self.env_config, self.agent_config, self.config = env_config, agent_config, train_config
        self.out_dir = Path(out_dir)
        self.log = log
        self.device = resolve_device(train_config.device)
        seed_everything(train_config.seed)
        self.env = make_env(env_config)
        self.obs_shape = self.env.observation_space.shape
        self.action_dim = int(np.prod(self.env.action_space.shape))
        self.agent = Agent(self.obs_shape, self.action_dim, agent_config, self.device)
        capacity = train_config.buffer_capacity or train_config.steps
        self.buffer = ReplayBuffer(capacity, self.obs_shape, self.action_dim, seed=train_config.seed)
        self.action_rng = np.random.default_rng(train_config.seed)
        self.step = 0
        self.episode = 0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict:
        return {
            "agent": self.agent.state_dict(),
            "config": run_config(self.env_config, self.agent_config, self.config),
            "obs_shape": list(self.obs_shape),
            "action_dim": self.action_dim,
        }

    def save_checkpoint(self) -> None:
        atomic_save({
            **self._payload(),
            "optimizers": self.agent.optimizer_state_dict(),
            "buffer": self.buffer.state_dict(),
            "loop": {"step": self.step, "episode": self.episode},
            "history": self.history,
            "rng": rng_state(),
            "action_rng": self.action_rng.bit_generator.state,
        }, self.out_dir / CHECKPOINT)

    def resume(self) -> bool:
        """Restore the run from ``checkpoint.pt``; False if there is none. The settings must match the checkpoint's."""
        path = self.out_dir / CHECKPOINT
        if not path.is_file():
            return False
        ckpt = load_checkpoint(path, map_location=self.device)
        wanted = run_config(self.env_config, self.agent_config, self.config)
        saved = fill_defaults("rl", ckpt["config"], ckpt["config"].get(VERSION_KEY), self.log, source=str(path))
        refuse_changed_resume(self.out_dir, saved, wanted, RESUME_MAY_CHANGE)
        self.agent.load_state_dict(ckpt["agent"])
        self.agent.load_optimizer_state_dict(ckpt["optimizers"])
        self.buffer.load_state_dict(ckpt["buffer"])
        self.step, self.episode = ckpt["loop"]["step"], ckpt["loop"]["episode"]
        self.history = ckpt["history"]
        set_rng_state(ckpt["rng"])
        self.action_rng.bit_generator.state = ckpt["action_rng"]
        self._rewrite_metrics()
        return True

    def _rewrite_metrics(self) -> None:
        """Drop metric lines written after the checkpoint, so that a resumed run does not log them twice."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / METRICS, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in self.history)

    def _record(self, record: dict) -> None:
        self.history.append(record)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / METRICS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ loop
    def _act(self, obs: np.ndarray) -> np.ndarray:
        if self.step < self.config.init_steps:
            return self.action_rng.uniform(-1.0, 1.0, size=self.action_dim).astype(np.float32)
        return self.agent.act(obs)

    def _evaluate(self) -> None:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            result = summarize(evaluate(self.agent, self.env_config, "none", self.config.eval_episodes))
        self._record({"step": self.step, "eval_return": result["mean"], "eval_std": result["std"]})
        self.log(f"step {self.step}: evaluation return {result['mean']:.1f} +/- {result['std']:.1f}")

    def fit(self) -> dict:
        """Train until ``config.steps``; returns the steps, episodes and wall time of this call.

        Ctrl-C or SIGTERM ends the current episode where it is (recorded as ``interrupted``, its transitions
        kept, as a time limit would) and checkpoints, so ``--resume`` loses nothing but the environment's
        state: it continues with the next episode."""
        cfg = self.config
        self._rewrite_metrics()
        start, start_step = time.perf_counter(), self.step
        next_checkpoint = (self.step // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        next_eval = (self.step // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None
        metrics: dict = {}
        episode_return, episode_steps = 0.0, 0
        with stop_on_sigterm():
            try:
                while self.step < cfg.steps:
                    obs, _ = self.env.reset(seed=episode_seed(cfg.seed, self.episode))
                    episode_return, episode_steps, done = 0.0, 0, False
                    while not done and self.step < cfg.steps:
                        action = self._act(obs)
                        next_obs, reward, terminated, truncated, _ = self.env.step(action)
                        self.buffer.add(obs, action, float(reward), next_obs, terminated)
                        if self.step >= cfg.init_steps:
                            metrics = self.agent.update(self.buffer, self.step)
                        obs, episode_return, done = next_obs, episode_return + float(reward), terminated or truncated
                        episode_steps += 1
                        self.step += 1
                    self._end_episode(episode_return, metrics)
                    episode_steps = 0
                    if self.episode % 10 == 0:
                        rate = (self.step - start_step) / (time.perf_counter() - start)
                        self.log(f"step {self.step}/{cfg.steps} episode {self.episode}: return {episode_return:.1f} "
                                 f"({rate:.1f} steps/s)")
                    if next_eval is not None and self.step >= next_eval:
                        self._evaluate()
                        next_eval += cfg.eval_every
                    if self.step >= next_checkpoint and self.step < cfg.steps:
                        self.save_checkpoint()
                        next_checkpoint += cfg.checkpoint_every
            except (KeyboardInterrupt, Terminated):
                if episode_steps:  # the partial episode ends here, like a time limit
                    self._end_episode(episode_return, metrics, interrupted=True)
                self.save_checkpoint()
                self.log(f"interrupted at step {self.step}; checkpoint saved, continue with --resume")
                self.env.close()
                raise
        self.save_checkpoint()
        atomic_save(self._payload(), self.out_dir / AGENT)
        self.env.close()
        return {"steps": self.step, "episodes": self.episode, "wall_s": time.perf_counter() - start}

    def _end_episode(self, episode_return: float, metrics: dict, interrupted: bool = False) -> None:
        self.episode += 1
        self._record({"step": self.step, "episode": self.episode, "return": episode_return, **metrics,
                      **({"interrupted": True} if interrupted else {})})

def train(env_config: EnvConfig, agent_config: AgentConfig, train_config: TrainConfig, out_dir: str | Path,
          resume: bool = False, log: Callable[[str], None] = print) -> dict:
    """Train one agent in ``out_dir`` (``checkpoint.pt``, ``agent.pt``, ``metrics.jsonl``, ``config.json``).

    The folder is opened with :func:`~molssl.core.rundir.open_run_dir` (a fresh run never overwrites one;
    ``resume`` continues it, refusing other settings except those in :data:`RESUME_MAY_CHANGE`).
    """
    with open_run_dir(out_dir, resume=resume) as run_dir:
        trainer = Trainer(env_config, agent_config, train_config, run_dir, log)
        if resume:
            trainer.resume()
            log(f"resumed from step {trainer.step} (episode {trainer.episode})")
        else:
            write_record(run_dir, run_config(env_config, agent_config, train_config))
        return trainer.fit()
