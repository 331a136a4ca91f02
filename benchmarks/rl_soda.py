"""SAC vs SAC + augmentation vs SAC + SODA on pixel Pendulum-v1, evaluated in the training environment and
under colour and background shifts, with equal steps and seeds.

    .venv/bin/python benchmarks/rl_soda.py --steps 3000 --seeds 0,1,2 --workers 2 --out runs/rl_bench

Each (method, seed) run trains in its own single-threaded process, then is evaluated for ``--episodes``
deterministic episodes per shift (the same episode seeds for every run). A finished run is skipped and an
interrupted one resumed, so the script can be restarted. Prints a markdown table: for each method and
shift, the mean over seeds of the per-seed mean return, +/- the standard deviation over seeds.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

METHODS = ("sac", "sac-aug", "soda")
SHIFTS = ("none", "colour", "background")


def run_one(job: dict) -> dict:
    """Train (or resume) one run, then evaluate it under every shift; results go to <run>/eval.json."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import torch

    from molssl.rl.agent import AgentConfig
    from molssl.rl.env import EnvConfig
    from molssl.rl.evaluation import evaluate, load_agent, summarize
    from molssl.rl.trainer import AGENT, CHECKPOINT, TrainConfig, train

    torch.set_num_threads(1)
    out = Path(job["out"])
    result_path = out / "eval.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    name = f"{job['method']}-s{job['seed']}"
    env_config = EnvConfig(image_size=job["image_size"], render_size=64, frame_stack=3, action_repeat=4)
    agent_config = AgentConfig(method=job["method"], augmentation=job["augmentation"], batch_size=job["batch_size"],
                               aux_batch_size=job["batch_size"])
    train_config = TrainConfig(steps=job["steps"], init_steps=job["init_steps"], seed=job["seed"], eval_every=1000,
                               eval_episodes=3, checkpoint_every=1000, device="cpu")
    summary = train(env_config, agent_config, train_config, out, resume=(out / CHECKPOINT).is_file(),
                    log=lambda msg: print(f"[{name}] {msg}", flush=True))
    agent, _ = load_agent(out / AGENT, torch.device("cpu"))
    start = time.perf_counter()
    results = {shift: summarize(evaluate(agent, env_config, shift, job["episodes"])) for shift in SHIFTS}
    record = {**job, "train": summary, "eval_wall_s": time.perf_counter() - start, "results": results}
    result_path.write_text(json.dumps(record, indent=2))
    print(f"[{name}] trained in {summary['wall_s']:.0f} s; " +
          ", ".join(f"{s} {r['mean']:.1f}" for s, r in results.items()), flush=True)
    return record


def table(records: list[dict]) -> str:
    lines = ["| method | " + " | ".join(SHIFTS) + " | train wall (s, mean) |",
             "|---|" + "---|" * len(SHIFTS) + "---|"]
    for method in METHODS:
        runs = [r for r in records if r["method"] == method]
        if not runs:
            continue
        cells = []
        for shift in SHIFTS:
            per_seed = [r["results"][shift]["mean"] for r in runs]
            cells.append(f"{np.mean(per_seed):.1f} +/- {np.std(per_seed):.1f}")
        wall = np.mean([r["train"]["wall_s"] for r in runs])
        lines.append(f"| {method} (n={len(runs)}) | " + " | ".join(cells) + f" | {wall:.0f} |")
    return "\n".join(lines)


def curve_table(records: list[dict]) -> str:
    """Training-environment returns logged during training (3 episodes each), mean +/- std over seeds."""
    curves: dict[str, dict[int, list[float]]] = {}
    for r in records:
        for line in (Path(r["out"]) / "metrics.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if "eval_return" in entry:
                curves.setdefault(r["method"], {}).setdefault(entry["step"], []).append(entry["eval_return"])
    steps = sorted({step for curve in curves.values() for step in curve})
    lines = ["| method | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for method, curve in curves.items():
        cells = [f"{np.mean(curve[s]):.1f} +/- {np.std(curve[s]):.1f}" if s in curve else "" for s in steps]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="agent steps per run (x4 task steps)")
    parser.add_argument("--init-steps", type=int, default=500)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--augmentation", default="overlay", choices=("overlay", "conv"))
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per shift")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/rl_bench"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    jobs = [{"method": m, "seed": s, "steps": args.steps, "init_steps": args.init_steps,
             "augmentation": args.augmentation, "image_size": args.image_size, "batch_size": args.batch_size,
             "episodes": args.episodes, "out": str(args.out / f"{m}-s{s}")} for s in seeds for m in methods]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        records = pool.map(run_one, jobs, chunksize=1)
    print(f"\nPendulum-v1 from {args.image_size}x{args.image_size} pixels, {args.steps} agent steps x 4 action repeat, seeds {seeds}, "
          f"{args.episodes} evaluation episodes per shift; total wall {time.perf_counter() - start:.0f} s\n")
    print(table(records))
    print("\nDuring training (training environment, 3 evaluation episodes per point):\n")
    print(curve_table(records))
    (args.out / "summary.json").write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
