import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from molssl.audio.model import MultiFormatContrastive
from molssl.audio.probe import embed_clips, linear_probe
from molssl.audio.wav import load_wav_folder
from molssl.cli.main import app as root_app
from molssl.core.probe import few_shot_accuracy

from .synthetic import RATE, tiny_model_config

CLIP = round(0.3 * RATE)


def invoke(runner, args):
    """``molssl audio ARGS`` through the root app, as the console script runs it (errors: one line, exit 2)."""
    return runner.invoke(root_app, ["audio", *args])


def flat(text: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return " ".join(text.replace("│", " ").split())


TINY = ["--sample-rate", str(RATE), "--clip-seconds", "0.3", "--crop-seconds", "0.2", "--n-mels", "32"]


def test_embeddings_are_deterministic_centre_crops(tone_folders):
    torch.manual_seed(0)
    model = MultiFormatContrastive(tiny_model_config())
    clips = load_wav_folder(tone_folders[0], RATE, CLIP).clips
    a = embed_clips(model, clips, "spec", batch_size=7)
    assert a.shape == (18, 16) and np.array_equal(a, embed_clips(model, clips, "spec", batch_size=18))
    padded = torch.nn.functional.pad(clips, (100, 100))  # same centre crop from a longer clip
    assert np.allclose(embed_clips(model, padded, "wave"), embed_clips(model, clips, "wave"), atol=1e-5)
    with pytest.raises(ValueError, match="shorter than the model's crop"):
        embed_clips(model, clips[:, :100], "wave")


def test_probe_separates_tones_and_chirps(tone_folders):
    torch.manual_seed(0)
    model = MultiFormatContrastive(tiny_model_config())
    train, test = (load_wav_folder(f, RATE, CLIP) for f in tone_folders)
    result = linear_probe(model, train, test, "spec", shots=(1, 2), repeats=3)
    assert result.test_accuracy > 0.9 and (result.num_train, result.num_test) == (18, 12)
    assert set(result.few_shot) == {1, 2} and all(0 <= m <= 1 and s >= 0 for m, s in result.few_shot.values())


def test_few_shot_draws_are_seeded_and_bounded():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)
    x = rng.standard_normal((12, 5)) + y[:, None] * 3.0
    assert few_shot_accuracy(x, y, x, y, 2, repeats=4, seed=1) == few_shot_accuracy(x, y, x, y, 2, repeats=4, seed=1)
    with pytest.raises(ValueError, match="smallest class"):
        few_shot_accuracy(x, y, x, y, 5)


def test_cli_pretrain_then_probe(tone_folders, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = invoke(runner, ["pretrain", "--data", str(tone_folders[0]), "--out", str(out),
                                 "--variant", "spec-spec", "--max-steps", "2", "--batch-size", "6",
                                 "--device", "cpu", "--no-progress", *TINY])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint.pt").is_file() and "done: 2 steps" in result.output
    report = tmp_path / "probe.json"
    result = invoke(runner, ["probe", "--train", str(tone_folders[0]), "--test", str(tone_folders[1]),
                                 "--checkpoint", str(out / "checkpoint.pt"), "--shots", "2", "--repeats", "2",
                                 "--device", "cpu", "--json", str(report)])
    assert result.exit_code == 0, result.output
    saved = json.loads(report.read_text())
    assert [r["format"] for r in saved["results"]] == ["spec"] and "2-shot" in result.output


def test_cli_probe_random_init_and_argument_errors(tone_folders, tmp_path):
    runner = CliRunner(env={"COLUMNS": "200"})
    args = ["probe", "--train", str(tone_folders[0]), "--test", str(tone_folders[1]), "--device", "cpu"]
    result = invoke(runner, [*args, "--random-init", "--variant", "wave-wave", "--format", "wave", *TINY])
    assert result.exit_code == 0, result.output
    assert "random init (wave-wave, seed 0) [wave]: test accuracy" in result.output
    result = invoke(runner, args)
    assert result.exit_code == 2 and "error: give either --checkpoint or --random-init" in result.output
    result = invoke(runner, [*args, "--random-init", "--format", "spec", "--variant", "wave-wave", *TINY])
    assert result.exit_code == 2 and "no 'spec' encoder" in flat(result.output)
    result = invoke(runner, ["pretrain", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), *TINY])
    assert result.exit_code == 2 and "does not exist" in flat(result.output)
    result = invoke(runner, [*args, "--checkpoint", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and f"error: no checkpoint at {tmp_path / 'missing.pt'}" in result.output
