import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from molssl.cli.common import run_script
from molssl.cli.main import app
from molssl.errors import MolsslError


def _molssl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "molssl", *args], capture_output=True, text=True, cwd=cwd)


def test_user_errors_are_one_line_without_traceback(tmp_path):
    result = _molssl("pretrain", "--smiles", str(tmp_path / "missing.smi"), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: cannot read {tmp_path / 'missing.smi'}: no such file"


def test_invalid_smiles_are_listed_by_line(tmp_path):
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO\nC1CC\nc1ccccc1\nxyz\n")
    result = _molssl("pretrain", "--smiles", str(bad), "--out", str(tmp_path / "run"), "--workers", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "2 invalid SMILES" in result.stderr and "line 2: 'C1CC'" in result.stderr and "line 4: 'xyz'" in result.stderr


def test_pretrain_command_runs_a_short_job(tmp_path, smiles_file):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "pretrain", "--smiles", str(smiles_file), "--out", str(out), "--num-layers", "2", "--emb-dim", "16",
        "--feat-dim", "16", "--batch-size", "4", "--max-steps", "3", "--epochs", "5", "--workers", "1",
        "--valid-fraction", "0.2", "--augment", "subgraph", "--augment", "mask",
    ])
    assert result.exit_code == 0, result.output
    assert "done: 3 steps" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["augmentations"] == ["subgraph", "mask"] and config["encoder"]["emb_dim"] == 16
    assert (out / "encoder.pt").is_file()


@pytest.mark.parametrize("method, flag, value", [("contextpred", "--mask-rate", "0.3"),
                                                 ("attrmask", "--delete-rate", "0.1"),
                                                 ("physchem", "--augment", "subgraph"),
                                                 ("graphmae", "--temperature", "0.2")])
def test_pretrain_refuses_a_setting_its_method_would_ignore(tmp_path, smiles_file, method, flag, value):
    result = _molssl("pretrain", "--smiles", str(smiles_file), "--out", str(tmp_path / "run"), "--method", method,
                     flag, value)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{flag} applies to --method molclr" in result.stderr and f"{method} does not use it" in result.stderr
    assert not (tmp_path / "run").exists()  # refused before any work


def test_pretrain_keeps_a_setting_its_method_reads_and_defaults_the_rest(tmp_path, smiles_file):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "pretrain", "--smiles", str(smiles_file), "--out", str(out), "--method", "attrmask", "--mask-rate", "0.15",
        "--num-layers", "2", "--emb-dim", "16", "--feat-dim", "16", "--batch-size", "4", "--max-steps", "1",
        "--workers", "1", "--valid-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["mask_rate"] == 0.15
    assert (config["augmentations"], config["delete_rate"], config["temperature"]) == (["mask", "delete"], 0.25, 0.1)


def test_pretrain_help_states_the_config_defaults():
    """The view and masking options default to None (so a setting can be refused), so their help text names the
    default in words: it must be PretrainConfig's."""
    import inspect

    from molssl.chem.tasks.pretrain import PretrainConfig
    from molssl.cli.pretrain import pretrain

    options = inspect.signature(pretrain).parameters
    for name in ("mask_rate", "delete_rate", "subgraph_rate", "temperature"):
        assert f"default {getattr(PretrainConfig, name)})" in options[name].default.help.replace(";", ")"), name
    assert f"default: {' '.join(PretrainConfig.augmentations)})" in options["augment"].default.help


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("pretrain", "finetune", "benchmark", "convert", "predict", "fingerprint", "models", "plot",
                    "data", "vision", "video", "audio", "rl"):
        assert command in result.output


def test_scripts_outside_the_cli_share_its_error_policy(capsys, monkeypatch):
    """benchmarks/ scripts end in run_script(main): a user error is one line on stderr and exit code 2."""
    def main():
        raise MolsslError("runs/none: no such file or directory")

    monkeypatch.delenv("MOLSSL_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_script(main)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: runs/none: no such file or directory\n"
    monkeypatch.setenv("MOLSSL_DEBUG", "1")
    with pytest.raises(MolsslError):  # the traceback, for debugging
        run_script(main)
