"""``molssl rl``: train SAC / SAC + augmentation / SAC + SODA from pixels and evaluate under visual shifts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from molssl.cli import common
from molssl.errors import MolsslError

app = common.new_app("Pixel-based RL: SAC, SAC + augmentation and SAC + SODA (Hansen & Wang 2021) on gymnasium "
                     "control tasks.")


@common.command(app, "train")
def train_command(
    method: str = typer.Option("soda", help="sac | sac-aug | soda"),
    env: str = typer.Option("Pendulum-v1", help="gymnasium task id with a continuous action space"),
    steps: int = typer.Option(5000, help="agent steps (each repeats the action --action-repeat times)"),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="run folder [default: runs/rl/<env>-<method>-s<seed>]"),
    resume: bool = typer.Option(False, help="continue the run in --out from its checkpoint"),
    augmentation: str = typer.Option("overlay", help="overlay | conv (used by sac-aug and soda)"),
    image_size: int = typer.Option(32, help="observation side in pixels"),
    render_size: int = typer.Option(64, help="side the task is rendered at before downscaling"),
    frame_stack: int = typer.Option(3),
    action_repeat: int = typer.Option(4),
    max_episode_steps: Optional[int] = typer.Option(None, help="episode length of the underlying task [default: its own]"),
    init_steps: int = typer.Option(500, help="uniformly random actions before updates start"),
    batch_size: int = typer.Option(128),
    num_filters: int = typer.Option(32),
    eval_every: int = typer.Option(0, help="agent steps between evaluations (0: none during training)"),
    eval_episodes: int = typer.Option(5),
    checkpoint_every: int = typer.Option(1000, help="agent steps between checkpoints (written at episode ends)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
) -> None:
    """Train one agent; writes checkpoint.pt (resumable), agent.pt and metrics.jsonl to the run folder."""
    import torch

    from molssl.rl.agent import AgentConfig
    from molssl.rl.env import EnvConfig
    from molssl.rl.trainer import TrainConfig, train

    if threads:
        torch.set_num_threads(threads)
    out = out or Path("runs") / "rl" / f"{env}-{method}-s{seed}"
    env_config = EnvConfig(env_id=env, image_size=image_size, render_size=render_size, frame_stack=frame_stack,
                           action_repeat=action_repeat, max_episode_steps=max_episode_steps)
    agent_config = AgentConfig(method=method, augmentation=augmentation, batch_size=batch_size,
                               aux_batch_size=batch_size, num_filters=num_filters)
    train_config = TrainConfig(steps=steps, init_steps=init_steps, seed=seed, eval_every=eval_every,
                               eval_episodes=eval_episodes, checkpoint_every=checkpoint_every, device=device)
    summary = train(env_config, agent_config, train_config, out, resume=resume, log=typer.echo)
    typer.echo(f"trained {summary['steps']} steps ({summary['episodes']} episodes) in {summary['wall_s']:.0f} s; "
               f"weights in {out / 'agent.pt'}")


@common.command(app, "eval")
def eval_command(
    run: Path = typer.Argument(..., help="a run folder, or its agent.pt / checkpoint.pt"),
    shifts: str = typer.Option("none,colour,background", help="comma-separated: none, colour, background"),
    episodes: int = typer.Option(10),
    seed: int = typer.Option(10_000, help="first evaluation episode seed"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the returns to this JSON file"),
) -> None:
    """Deterministic returns (mean +/- std over episodes) in the training environment and shifted ones."""
    from molssl.core.device import resolve_device
    from molssl.rl.evaluation import evaluate, load_agent, summarize
    from molssl.rl.shifts import SHIFTS

    path = run / "agent.pt" if run.is_dir() else run
    names = [s.strip() for s in shifts.split(",") if s.strip()]
    unknown = [s for s in names if s not in SHIFTS]
    if unknown or not names:
        raise MolsslError(f"unknown shift(s) {unknown or shifts!r}; choose from {', '.join(SHIFTS)}")
    agent, env_config = load_agent(path, resolve_device(device))
    results = {name: summarize(evaluate(agent, env_config, name, episodes, seed)) for name in names}
    for name, result in results.items():
        typer.echo(f"{name:<12} {result['mean']:9.1f} +/- {result['std']:.1f}  ({episodes} episodes)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"run": str(path), "episodes": episodes, "seed": seed, "results": results},
                                       indent=2))
