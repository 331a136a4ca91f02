"""The training loop: artefacts, exact resume from an atomic checkpoint, and the CLI."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from typer.testing import CliRunner

import molssl
from molssl.cli.main import app as root_app
from molssl.core.checkpoint import load_checkpoint
from molssl.core.stopping import Terminated
from molssl.errors import MolsslError
from molssl.rl.agent import AgentConfig
from molssl.rl.evaluation import evaluate, load_agent
from molssl.rl.trainer import AGENT, CHECKPOINT, METRICS, TrainConfig, Trainer, train

AGENT_CONFIG = AgentConfig(method="soda", num_filters=8, feature_dim=16, hidden_dim=32, batch_size=8,
                           aux_batch_size=8, projection_dim=8, projection_hidden=16)


def _train_config(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, init_steps=6, seed=3, checkpoint_every=10, buffer_capacity=30, device="cpu")


def test_resumed_run_equals_uninterrupted_run(env_config, tmp_path):
    full = train(env_config, AGENT_CONFIG, _train_config(30), tmp_path / "full", log=lambda _: None)
    assert full == {"steps": 30, "episodes": 3, "wall_s": pytest.approx(full["wall_s"])}
    train(env_config, AGENT_CONFIG, _train_config(10), tmp_path / "split", log=lambda _: None)
    train(env_config, AGENT_CONFIG, _train_config(30), tmp_path / "split", resume=True, log=lambda _: None)
    a = load_checkpoint(tmp_path / "full" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "split" / CHECKPOINT)
    assert a["loop"] == b["loop"] == {"step": 30, "episode": 3}
    assert a["agent"].keys() == b["agent"].keys()
    assert all(torch.equal(a["agent"][k], b["agent"][k]) for k in a["agent"])
    assert (a["buffer"]["obs"] == b["buffer"]["obs"]).all()
    lines = [json.loads(line) for line in (tmp_path / "split" / METRICS).read_text().splitlines()]
    assert [r["return"] for r in lines] == [r["return"] for r in a["history"]]


def test_resume_refuses_other_settings_and_fresh_runs_refuse_to_overwrite(env_config, tmp_path):
    train(env_config, AGENT_CONFIG, _train_config(10), tmp_path, log=lambda _: None)
    with pytest.raises(MolsslError, match="--resume"):
        train(env_config, AGENT_CONFIG, _train_config(20), tmp_path, log=lambda _: None)
    other = AgentConfig(**{**vars(AGENT_CONFIG), "method": "sac"})
    with pytest.raises(MolsslError, match="agent.method: 'soda' -> 'sac'"):
        Trainer(env_config, other, _train_config(20), tmp_path, log=lambda _: None).resume()
    with pytest.raises(MolsslError, match="nothing to resume"):
        train(env_config, AGENT_CONFIG, _train_config(20), tmp_path / "empty", resume=True, log=lambda _: None)


def test_runs_record_every_setting_and_the_version(env_config, tmp_path):
    train(env_config, AGENT_CONFIG, _train_config(10), tmp_path, log=lambda _: None)
    record = json.loads((tmp_path / "config.json").read_text())
    assert record == load_checkpoint(tmp_path / CHECKPOINT)["config"]
    assert record["molssl_version"] == molssl.__version__ and record["preprocessing"] == 1
    assert record["agent"]["soda_momentum"] == 0.995 and record["train"]["init_steps"] == 6


def test_saved_agent_reloads_with_identical_behaviour(env_config, tmp_path):
    trainer = Trainer(env_config, AGENT_CONFIG, _train_config(10), tmp_path, log=lambda _: None)
    trainer.fit()
    agent, loaded_env = load_agent(tmp_path / AGENT, torch.device("cpu"))
    assert loaded_env == env_config
    obs = trainer.buffer.obs[0]
    assert (agent.act(obs, deterministic=True) == trainer.agent.act(obs, deterministic=True)).all()
    assert evaluate(agent, env_config, "colour", 1) == evaluate(trainer.agent, env_config, "colour", 1)
    with pytest.raises(MolsslError, match="not an RL checkpoint"):
        torch.save({"model": {}}, tmp_path / "foreign.pt")
        load_agent(tmp_path / "foreign.pt", torch.device("cpu"))


def test_cli_trains_and_evaluates(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"

    def invoke(args):
        return runner.invoke(root_app, ["rl", *args])

    args = ["train", "--method", "sac-aug", "--augmentation", "conv", "--steps", "12", "--init-steps", "6",
            "--image-size", "16", "--render-size", "32", "--frame-stack", "2", "--action-repeat", "2",
            "--max-episode-steps", "12", "--batch-size", "8", "--num-filters", "8", "--device", "cpu", "--out", str(out)]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert (out / AGENT).is_file() and (out / CHECKPOINT).is_file()
    result = invoke(["eval", str(out), "--episodes", "2", "--shifts", "none,background",
                                 "--json", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["results"]) == {"none", "background"} and len(report["results"]["none"]["returns"]) == 2
    assert "background" in result.output
    bad = invoke(["train", "--method", "ppo", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "unknown method" in bad.output
    bad = invoke(["eval", str(out), "--shifts", "fog"])
    assert bad.exit_code == 2 and "unknown shift" in bad.output


def test_sigterm_mid_episode_keeps_its_steps_and_resume_finishes_the_run(env_config, tmp_path):
    trainer = Trainer(env_config, AGENT_CONFIG, _train_config(30), tmp_path, log=lambda _: None)
    step = trainer.env.step

    def step_then_stop(action):
        if trainer.step == 15:  # mid-episode 2 (episodes are 10 steps)
            os.kill(os.getpid(), signal.SIGTERM)
        return step(action)

    trainer.env.step = step_then_stop
    with pytest.raises(Terminated):
        trainer.fit()
    saved = load_checkpoint(tmp_path / CHECKPOINT)
    assert saved["loop"] == {"step": 15, "episode": 2}  # episode 2 ended where the signal came
    assert saved["history"][-1]["interrupted"] is True and saved["history"][-1]["step"] == 15
    assert len(saved["buffer"]["obs"]) == 15  # its five transitions kept
    result = train(env_config, AGENT_CONFIG, _train_config(30), tmp_path, resume=True, log=lambda _: None)
    assert result["steps"] == 30 and result["episodes"] == 4  # the next episode, then one cut by the step budget
    records = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 15, 25, 30]
