"""The ``molssl vision`` Typer app on a tiny image folder."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from molssl.vision.cli import Method, app
from molssl.vision.pretrain import METHODS, load_module

runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for cls, level in (("dark", 40), ("bright", 200)):
        (root / cls).mkdir()
        for i in range(12):
            pixels = np.clip(rng.normal(level, 30, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


def test_cli_methods_match_the_registry():
    assert {m.value for m in Method} == set(METHODS)


def test_pretrain_then_probe_on_a_folder(folder, tmp_path):
    out = tmp_path / "run"
    args = ["pretrain", "--method", "simclr", "--data", str(folder), "--out", str(out), "--epochs", "1",
            "--batch-size", "8", "--image-size", "16", "--channels", "1", "--widths", "4,8", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output  # 19 training images, batches of 8
    assert (out / "checkpoint.pt").is_file() and (out / "metrics.jsonl").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--resume" in again.output
    report = tmp_path / "probe.json"
    result = runner.invoke(app, ["probe", "--checkpoint", str(out / "checkpoint.pt"), "--knn-k", "3",
                                 "--json-out", str(report)])
    assert result.exit_code == 0, result.output
    assert "random init" in result.output and "margin" in result.output
    scores = json.loads(report.read_text())
    assert set(scores) >= {"trained", "random_init"} and 0.0 <= scores["trained"]["linear"] <= 1.0


def test_tile_task_probe_uses_tile_features_unless_asked_for_whole_images(folder, tmp_path):
    out = tmp_path / "jigsaw"
    args = ["pretrain", "--method", "jigsaw", "--data", str(folder), "--out", str(out), "--epochs", "1",
            "--batch-size", "8", "--image-size", "16", "--channels", "1", "--widths", "4", "--permutations", "8",
            "--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    checkpoint = str(out / "checkpoint.pt")
    for flag, view in (([], "tiles"), (["--features", "image"], "image")):
        report = tmp_path / f"{view}.json"
        result = runner.invoke(app, ["probe", "--checkpoint", checkpoint, "--knn-k", "3", "--json-out", str(report), *flag])
        assert result.exit_code == 0, result.output
        assert f"(features: {view})" in result.output and json.loads(report.read_text())["features"] == view
    simclr = tmp_path / "simclr"
    runner.invoke(app, ["pretrain", "--method", "simclr", "--data", str(folder), "--out", str(simclr), "--epochs", "1",
                        "--batch-size", "8", "--image-size", "16", "--channels", "1", "--widths", "4", "--no-progress"])
    result = runner.invoke(app, ["probe", "--checkpoint", str(simclr / "checkpoint.pt"), "--features", "tiles"])
    assert result.exit_code == 1 and "only for the tile tasks" in result.output


@pytest.mark.parametrize("flag, conv_head", [("--conv-head", True), ("--no-conv-head", False)])
def test_rotation_head_flag_reaches_the_checkpoint(folder, tmp_path, flag, conv_head):
    out = tmp_path / "rotation"
    result = runner.invoke(app, ["pretrain", "--method", "rotation", "--data", str(folder), "--out", str(out), flag,
                                 "--epochs", "1", "--batch-size", "8", "--image-size", "16", "--channels", "1",
                                 "--widths", "4,8", "--no-progress"])
    assert result.exit_code == 0, result.output
    module, config = load_module(out / "checkpoint.pt", torch.device("cpu"))
    assert config["options"] == {"conv_head": conv_head} and (module.head_stage is not None) is conv_head
    result = runner.invoke(app, ["probe", "--checkpoint", str(out / "checkpoint.pt"), "--knn-k", "3"])
    assert result.exit_code == 0, result.output


def test_bad_input_gets_a_clear_message(folder, tmp_path):
    result = runner.invoke(app, ["pretrain", "--method", "rotation", "--out", str(tmp_path), "--queue-size", "8"])
    assert result.exit_code != 0 and "--queue-size applies only to --method moco" in result.output
    result = runner.invoke(app, ["pretrain", "--method", "context", "--out", str(tmp_path), "--no-standardize-tiles"])
    assert result.exit_code != 0 and "--standardize-tiles applies only to --method jigsaw" in result.output
    result = runner.invoke(app, ["pretrain", "--method", "simclr", "--out", str(tmp_path), "--no-conv-head"])
    assert result.exit_code != 0 and "--conv-head applies only to --method rotation, jigsaw" in result.output
    result = runner.invoke(app, ["pretrain", "--method", "sift", "--out", str(tmp_path)])
    assert result.exit_code != 0
    result = runner.invoke(app, ["pretrain", "--method", "byol", "--data", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "neither" in result.output
    result = runner.invoke(app, ["probe", "--checkpoint", str(tmp_path / "missing.pt")])
    assert result.exit_code == 1 and "no checkpoint" in result.output
