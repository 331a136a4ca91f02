"""The ``molssl video`` commands on a tiny folder of frame folders, through the root app (errors: exit 2)."""
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from molssl.cli.main import app as root_app
from molssl.cli.video import Method
from molssl.video.pretrain import METHODS

runner = CliRunner()


def invoke(args):
    """``molssl video ARGS`` through the root app, as the console script runs it."""
    return runner.invoke(root_app, ["video", *args])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of 8-frame videos: a bright square moving right, or moving down."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for cls, (dx, dy) in (("right", (1, 0)), ("down", (0, 1))):
        for v in range(10):
            video = root / cls / f"v{v}"
            video.mkdir(parents=True)
            x0, y0 = rng.integers(0, 8, 2)
            for t in range(8):
                frame = np.zeros((12, 12), dtype=np.uint8)
                y, x = (y0 + dy * t) % 12, (x0 + dx * t) % 12
                frame[y:y + 4, x:x + 4] = 255
                Image.fromarray(frame).save(video / f"{t:02d}.png")
    return root


def test_cli_methods_match_the_registry():
    assert {m.value for m in Method} == set(METHODS)


def test_pretrain_then_probe_on_a_video_folder(folder, tmp_path):
    out = tmp_path / "cvrl"
    result = invoke(["pretrain", "--method", "cvrl", "--data", str(folder), "--out", str(out),
                                 "--epochs", "1", "--batch-size", "8", "--frames", "8", "--clip-len", "4",
                                 "--size", "12", "--channels", "1", "--widths", "4,8,8", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint.pt").is_file()
    result = invoke(["probe", "--checkpoint", str(out / "checkpoint.pt")])
    assert result.exit_code == 0, result.output
    assert "16 train / 4 test videos" in result.output
    assert "class: trained" in result.output and "random init" in result.output


def test_bad_input_gets_a_clear_message(tmp_path):
    result = invoke(["pretrain", "--method", "shuffle", "--out", str(tmp_path), "--temperature", "0.1"])
    assert result.exit_code != 0 and "--temperature applies only to --method cvrl" in result.output
    result = invoke(["pretrain", "--method", "cvrl", "--out", str(tmp_path), "--window", "6"])
    assert result.exit_code != 0 and "--window applies only to --method shuffle" in result.output
    result = invoke(["pretrain", "--method", "cvrl", "--out", str(tmp_path), "--no-conv-head"])
    assert result.exit_code != 0 and "--conv-head applies only to --method shuffle" in result.output
    result = invoke(["pretrain", "--method", "shuffle", "--out", str(tmp_path), "--window", "40"])
    assert result.exit_code == 2 and "frame window must be between 5 and the video length 16" in result.output
    result = invoke(["pretrain", "--method", "cvrl", "--data", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "neither" in result.output
    result = invoke(["pretrain", "--method", "cvrl", "--out", str(tmp_path), "--clip-len", "30"])
    assert result.exit_code == 2 and "clip_len" in result.output


def test_shuffle_window_reaches_the_run_config(folder, tmp_path):
    import torch

    out = tmp_path / "shuffle"
    result = invoke(["pretrain", "--method", "shuffle", "--data", str(folder), "--out", str(out),
                                 "--epochs", "1", "--batch-size", "8", "--frames", "8", "--window", "6", "--size", "12", "--no-conv-head",
                                 "--channels", "1", "--widths", "4,8,8", "--no-progress"])
    assert result.exit_code == 0, result.output
    config = torch.load(out / "checkpoint.pt", weights_only=False)["config"]
    assert config["options"]["window"] == 6 and config["options"]["conv_head"] is False
    assert config["molssl_version"] and config["preprocessing"] == 1 and config["options"]["hidden_dim"] == 128
