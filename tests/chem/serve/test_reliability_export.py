"""Calibration and domain data travel from fine-tuning into packed zoo members and their cards; run directories
stand alone (input checksum, test predictions, plots from any folder)."""
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from molssl.chem.serve import zoo, zoo_export
from molssl.chem.serve.loading import load_shipped_members, load_zoo_weights
from molssl.chem.serve.predict import Predictor, predict_member
from molssl.cli.main import app
from tiny_models import finetune_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    runs = {task: finetune_run(folder, task, seeds=(0, 1)) for task in ("regression", "classification")}
    models = folder / "models"
    for task, run in runs.items():
        zoo_export.export_property_model(run, f"toy-{task}", title="toy", description="A test model.",
                                         training_data="made up", commands=["molssl finetune ..."], units=None,
                                         models_dir=models)
    return runs, models


def test_packed_members_carry_records_re_predicted_with_packed_weights(exported):
    runs, models = exported
    card, members = load_shipped_members("toy-regression", models)
    assert len(members) == 2 and all("calibration" in m.meta and "domain" in m.meta for m in members)
    for member in members:
        record = member.meta["calibration"]
        np.testing.assert_allclose(predict_member(member, record["smiles"])[0], record["y_pred"], rtol=1e-6)
    blob = load_zoo_weights(models / "toy-regression")
    first, second = (entry["meta"]["domain"] for entry in blob["members"])
    assert first is second  # one training set, stored once for both members
    assert "split-conformal interval" in card.notes and "Applicability domain" in card.notes
    assert "Platt-calibrated probabilities" in zoo.get_card("toy-classification", models).notes


def test_shipped_style_models_predict_intervals_calibrated_probabilities_and_domain(exported, monkeypatch):
    _, models = exported
    monkeypatch.setattr(zoo, "MODELS_DIR", models)
    predictor = Predictor(["toy-regression", "toy-classification"])
    assert not predictor.notes
    table = predictor.predict_smiles(["CCOc1ccccc1", "[Gd+3]"])
    assert {"toy-regression_lower", "toy-regression_upper", "toy-regression_in_domain",
            "toy-classification", "toy-classification_in_domain"} <= set(table.columns)
    assert table["toy-regression_in_domain"].tolist() == [True, False]
    info = predictor.column_info()
    assert "Platt-calibrated" in info["toy-classification"]["kind"]


def test_an_exported_folder_is_a_model_by_its_path_and_refused_without_a_matching_digest(exported, tmp_path):
    """What `molssl models export --models-dir` writes is what a colleague is sent: it predicts by path, with
    the shipped models' intervals and domain; a card whose sha256 is missing or wrong refuses the weights, and a
    card that is not JSON, lacks a field or has one of the wrong type is refused, naming the file."""
    _, models = exported
    folder = models / "toy-regression"
    result = CliRunner().invoke(app, ["predict", "--model", str(folder), "--smiles", "CCOc1ccccc1", "--smiles", "[Gd+3]",
                                      "--output", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "p.csv")
    assert table["toy-regression_in_domain"].tolist() == [True, False]
    assert table["toy-regression_lower"].notna().iloc[0]
    show = CliRunner().invoke(app, ["models", "show", str(folder)])
    assert show.exit_code == 0 and "toy" in show.output
    for broken in ("", "0" * 64):
        copy = tmp_path / f"copy{len(broken)}"
        shutil.copytree(folder, copy)
        card = json.loads((copy / zoo.CARD_FILE).read_text())
        (copy / zoo.CARD_FILE).write_text(json.dumps({**card, "sha256": broken}))
        result = CliRunner().invoke(app, ["predict", "--model", str(copy), "--smiles", "CCO"])
        assert result.exit_code == 2 and "sha256" in result.output and "export it again" in result.output, result.output
    card = json.loads((folder / zoo.CARD_FILE).read_text())
    without_title = {k: v for k, v in card.items() if k != "title"}
    for name, text in {"not-json": "{not json", "wrong-type": json.dumps({**card, "task_labels": "x", "members": "2"}),
                       "no-title": json.dumps(without_title), "a-list": "[]"}.items():
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        (copy / zoo.CARD_FILE).write_text(text)
        result = CliRunner().invoke(app, ["predict", "--model", str(copy), "--smiles", "CCO"])
        assert result.exit_code == 2 and f"{copy / zoo.CARD_FILE} is not a readable model card" in result.output, \
            (name, result.output)


def test_run_directory_records_the_input_checksum_and_plots_from_anywhere(exported, tmp_path, monkeypatch):
    runs, _ = exported
    run = runs["regression"]
    config = json.loads((run / "config.json").read_text())
    assert config["input_sha256"] == hashlib.sha256((run.parent / "labelled.csv").read_bytes()).hexdigest()
    assert all((seed / "test_predictions.csv").is_file() for seed in run.glob("seed_*"))
    pytest.importorskip("matplotlib")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, ["plot", "test", str(run), "-o", "parity.png"])
    assert result.exit_code == 0, result.output
    assert (elsewhere / "parity.png").stat().st_size > 1000


@pytest.mark.parametrize("source", ["csv", "dataset"])
def test_runs_made_with_relative_paths_plot_from_another_folder(tmp_path, monkeypatch, source, request):
    """A run reads its input from the absolute path it recorded, not from the relative one it was given."""
    pytest.importorskip("matplotlib")
    from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
    from tiny_models import TINY, labelled_molecules

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if source == "csv":
        labelled_molecules().to_csv("labelled.csv", index=False)
        data = {"csv": "labelled.csv", "targets": ["size"], "task": "regression"}
    else:
        shared = request.getfixturevalue("shared_data")
        (work / "data").symlink_to(shared / "moleculenet")  # a relative --data-dir, read in place
        data = {"dataset": "freesolv", "data_dir": "data"}
    run_finetune(FinetuneConfig(out="run", **data, seeds=[0], epochs=1, batch_size=64, encoder=TINY, threads=1,
                                cache_dir=str(tmp_path / "cache"), progress=False, pretrained="none"), log=lambda _m: None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plot", "test", "work/run", "-o", "parity.png"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "parity.png").is_file()
