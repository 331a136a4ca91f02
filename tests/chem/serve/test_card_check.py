"""Every shipped property model scores what its card says on the path a user takes (``molssl models check``): its
scaffold test split rebuilt from the MoleculeNet file, SMILES through ``Predictor`` (parsing, rich features,
descriptors, int8 weights, Platt scaling), fp32. A card whose number its own files no longer give fails here,
whatever changed underneath."""
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from molssl.chem.serve import zoo
from molssl.chem.serve.card_check import card_test_split, disagreements, measure
from molssl.cli.main import app

PROPERTY_MODELS = [card.name for card in zoo.list_models() if card.kind == "property"]


def test_the_rebuilt_test_split_is_the_cards(shared_data):
    card = zoo.get_card("tox21")
    smiles, labels = card_test_split(card, shared_data / "moleculenet")
    assert len(smiles) == card.test_molecules and labels.shape == (card.test_molecules, len(card.tasks))
    assert np.isnan(labels).any() and not np.isnan(labels).all(axis=1).any()  # missing labels stay missing


@pytest.mark.slow
@pytest.mark.parametrize("name", PROPERTY_MODELS)
def test_a_shipped_model_scores_what_its_card_says(shared_data, name):
    card = zoo.get_card(name)
    smiles, labels = card_test_split(card, shared_data / "moleculenet")
    found = measure(name, smiles, labels, "fp32")
    assert len(smiles) == card.test_molecules and "in_domain" in found
    assert (card.task_type == "regression") == ("coverage" in found)
    assert disagreements(card, found) == []


def test_a_card_that_says_more_than_its_files_give_fails_the_check(shared_data, tmp_path, monkeypatch):
    shutil.copytree(zoo.model_folder("esol"), tmp_path / "esol")
    card_file = tmp_path / "esol" / zoo.CARD_FILE
    card = json.loads(card_file.read_text())
    card["test_score"] -= 0.01  # a card 0.01 log units better than the model
    card_file.write_text(json.dumps(card))
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    result = CliRunner().invoke(app, ["models", "check", "esol", "--data-dir", str(shared_data / "moleculenet")])
    assert result.exit_code == 1, result.output
    assert "esol: test rmse 0.7362 (card 0.7262" in result.output and "differs: test rmse" in result.output
    assert "esol did not reproduce its card in fp32" in result.output


def test_checking_an_encoder_or_a_missing_folder_is_one_sentence(shared_data):
    runner = CliRunner()
    result = runner.invoke(app, ["models", "check", "rich-gin-physchem", "--data-dir", str(shared_data)])
    assert result.exit_code == 2 and "is an encoder: it has no test split" in result.output
    result = runner.invoke(app, ["models", "check", "esol", "--data-dir", "/no/such/folder"])
    assert result.exit_code == 2 and "--data-dir /no/such/folder: no such folder" in result.output
    assert "Traceback" not in result.output


def test_a_bf16_check_reports_but_only_fp32_can_fail(shared_data):
    result = CliRunner().invoke(app, ["models", "check", "clintox", "--precision", "bf16",
                                      "--data-dir", str(shared_data / "moleculenet")])
    assert result.exit_code == 0, result.output
    assert "clintox: test roc_auc" in result.output and "148 molecules, bf16" in result.output
