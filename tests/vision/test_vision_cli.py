"""The ``molssl vision`` commands on a tiny image folder, invoked through the root app (errors: one line, exit 2)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from molssl.cli.main import app as root_app
from molssl.cli.vision import Method
from molssl.vision.pretrain import METHODS, load_module


runner = CliRunner()


def invoke(args):
    """``molssl vision ARGS`` through the root app, as the console script runs it."""
    return runner.invoke(root_app, ["vision", *args])


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
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output  # 19 training images, batches of 8
    assert (out / "checkpoint.pt").is_file() and (out / "metrics.jsonl").is_file()
    again = invoke(args)
    assert again.exit_code == 2 and "--resume" in again.output
    report = tmp_path / "probe.json"
    result = invoke(["probe", "--checkpoint", str(out / "checkpoint.pt"), "--knn-k", "3",
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
    assert invoke(args).exit_code == 0
    checkpoint = str(out / "checkpoint.pt")
    for flag, view in (([], "tiles"), (["--features", "image"], "image")):
        report = tmp_path / f"{view}.json"
        result = invoke(["probe", "--checkpoint", checkpoint, "--knn-k", "3", "--json-out", str(report), *flag])
        assert result.exit_code == 0, result.output
        assert f"(features: {view})" in result.output and json.loads(report.read_text())["features"] == view
    simclr = tmp_path / "simclr"
    invoke(["pretrain", "--method", "simclr", "--data", str(folder), "--out", str(simclr), "--epochs", "1",
                        "--batch-size", "8", "--image-size", "16", "--channels", "1", "--widths", "4", "--no-progress"])
    result = invoke(["probe", "--checkpoint", str(simclr / "checkpoint.pt"), "--features", "tiles"])
    assert result.exit_code == 2 and "only for the tile tasks" in result.output


@pytest.mark.parametrize("flag, conv_head", [("--conv-head", True), ("--no-conv-head", False)])
def test_rotation_head_flag_reaches_the_checkpoint(folder, tmp_path, flag, conv_head):
    out = tmp_path / "rotation"
    result = invoke(["pretrain", "--method", "rotation", "--data", str(folder), "--out", str(out), flag,
                                 "--epochs", "1", "--batch-size", "8", "--image-size", "16", "--channels", "1",
                                 "--widths", "4,8", "--no-progress"])
    assert result.exit_code == 0, result.output
    module, config = load_module(out / "checkpoint.pt", torch.device("cpu"))
    assert config.options["conv_head"] is conv_head and (module.head_stage is not None) is conv_head
    result = invoke(["probe", "--checkpoint", str(out / "checkpoint.pt"), "--knn-k", "3"])
    assert result.exit_code == 0, result.output


def _one_error_line(result) -> str:
    """The single ``error: ...`` line of a refused command (no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_bad_input_gets_a_clear_message(folder, tmp_path):
    result = invoke(["pretrain", "--method", "rotation", "--out", str(tmp_path), "--queue-size", "8"])
    assert "--queue-size applies only to --method moco" in _one_error_line(result)
    result = invoke(["pretrain", "--method", "context", "--out", str(tmp_path), "--no-standardize-tiles"])
    assert "--standardize-tiles applies only to --method jigsaw" in _one_error_line(result)
    result = invoke(["pretrain", "--method", "simclr", "--out", str(tmp_path), "--no-conv-head"])
    assert "--conv-head applies only to --method rotation, jigsaw" in _one_error_line(result)
    result = invoke(["pretrain", "--method", "sift", "--out", str(tmp_path)])
    assert result.exit_code == 2
    result = invoke(["pretrain", "--method", "byol", "--data", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert "neither" in _one_error_line(result)
    result = invoke(["probe", "--checkpoint", str(tmp_path / "missing.pt")])
    assert "no checkpoint" in _one_error_line(result)
    for widths in ("32,x", "0,8", ","):
        result = invoke(["pretrain", "--method", "simclr", "--out", str(tmp_path / "w"), "--widths", widths])
        assert "--widths must be comma-separated positive integers" in _one_error_line(result)
    result = invoke(["pretrain", "--method", "colorization", "--out", str(tmp_path / "c")])
    assert "colorization needs colour images" in _one_error_line(result)


class _Payload:
    """Pickles to a call that would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {"modality": "vision"}, "payload": _Payload(marker)}, evil)
    line = _one_error_line(invoke(["probe", "--checkpoint", str(evil)]))
    assert "refused" in line and "evil.pt" in line
    assert not marker.exists()


def test_resume_with_other_epochs_is_refused_naming_the_difference(folder, tmp_path):
    out = tmp_path / "run"
    args = ["pretrain", "--method", "rotation", "--data", str(folder), "--out", str(out), "--batch-size", "8",
            "--image-size", "16", "--channels", "1", "--widths", "4", "--no-progress"]
    assert invoke([*args, "--epochs", "1"]).exit_code == 0
    line = _one_error_line(invoke([*args, "--epochs", "2", "--resume"]))
    assert "epochs: 1 -> 2" in line
    assert invoke([*args, "--epochs", "1", "--resume"]).exit_code == 0
