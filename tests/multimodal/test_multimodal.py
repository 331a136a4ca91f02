"""ConVIRT on RDKit depictions and SMILES: tokens, randomized SMILES, batches, the loss, retrieval, and a few
steps through the command line (errors: one line, exit 2)."""
import json
from pathlib import Path

import pytest
import torch
from rdkit import Chem
from typer.testing import CliRunner

from molssl.cli.main import app as root_app
from molssl.core.losses import bidirectional_info_nce
from molssl.multimodal.convirt import ConVIRT
from molssl.multimodal.data import PairBatches, load_pairs, split_pairs
from molssl.multimodal.pretrain import MultimodalConfig, load_module, retrieval_scores
from molssl.multimodal.text import PAD, UNKNOWN, SmilesCNN, random_smiles, tokenize
from molssl.vision.encoders import ConvEncoder

DEMO_SMILES = Path(__file__).resolve().parents[2] / "data" / "demo_smiles.smi"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny tensors: one intra-op thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def pairs():
    return load_pairs(DEMO_SMILES, 40, 32)


def test_tokens_pad_cut_and_mark_unknown_characters():
    tokens = tokenize(["CCO", "c1ccccc1Cl", "C€"], max_len=6)
    assert tokens.shape == (3, 6) and tokens.dtype == torch.long
    assert tokens[0, 3:].tolist() == [PAD] * 3 and (tokens[1] != PAD).all()
    assert tokens[2, 1] == UNKNOWN and tokens[0, 0] == tokens[0, 1] != tokens[0, 2]


def test_randomized_smiles_are_seeded_and_the_same_molecule():
    mol = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    texts = {random_smiles(mol, seed) for seed in range(20)}
    assert random_smiles(mol, 3) == random_smiles(mol, 3) and len(texts) > 3
    assert {Chem.CanonSmiles(t) for t in texts} == {Chem.CanonSmiles("CC(=O)Oc1ccccc1C(=O)O")}


def test_pair_batches_are_deterministic_and_resumable(pairs):
    source = PairBatches(pairs, batch_size=8, max_len=96, seed=2)
    epoch = list(source.batches(1))
    assert len(epoch) == len(source) == 5
    again = list(source.batches(1, start=3))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(epoch[3:], again))
    assert not torch.equal(next(source.batches(0))[1], epoch[0][1])


def test_character_cnn_ignores_padding():
    torch.manual_seed(0)
    encoder = SmilesCNN(embed_dim=8, width=12, layers=2).eval()
    short, long = tokenize(["CC(=O)O"], 10), tokenize(["CC(=O)O"], 30)
    with torch.no_grad():
        torch.testing.assert_close(encoder(short), encoder(long))
    assert encoder(tokenize(["CCO", "c1ccccc1"], 10)).shape == (2, 12)


def test_convirt_loss_is_the_weighted_bidirectional_infonce_of_the_projections(pairs):
    torch.manual_seed(0)
    module = ConVIRT(ConvEncoder(3, (4, 8)), SmilesCNN(embed_dim=8, width=8, layers=1), torch.nn.Identity(),
                     proj_dim=6, temperature=0.1, image_weight=0.75)
    images, tokens = pairs.images[:5], tokenize(pairs.smiles[:5], 96)
    loss, metrics = module((images, tokens))
    expected = bidirectional_info_nce(module.embed_images(images), module.embed_texts(tokens), 0.1, 0.75)
    torch.testing.assert_close(loss, expected)
    assert 0.0 <= metrics["batch_top1"] <= 1.0


def test_retrieval_top_k_counts_the_candidates_ranked_above_the_pair():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071]])
    texts = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.7071, 0.7071]])
    scores = retrieval_scores(images, texts, ks=(1, 2, 3))
    assert scores["image_to_text/top1"] == pytest.approx(1 / 3)  # only pair 2 ranks its own text first
    assert scores["image_to_text/top2"] == pytest.approx(1 / 3)  # pairs 0 and 1 rank theirs last of three
    assert scores["image_to_text/top3"] == pytest.approx(1.0) and scores["text_to_image/top1"] == pytest.approx(1 / 3)


def test_split_holds_out_the_asked_number_of_molecules(pairs):
    train, test = split_pairs(pairs, 10, seed=0)
    assert len(test) == 10 and len(train) == 30 and not set(train.smiles) & set(test.smiles)
    with pytest.raises(ValueError, match="held-out"):
        split_pairs(pairs, 40, seed=0)


def test_cli_pretrains_probes_and_retrieves(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    common = ["--data", str(DEMO_SMILES), "--out", str(out), "--molecules", "40", "--test-molecules", "12",
              "--image-size", "32", "--widths", "4,8", "--text-width", "8", "--batch-size", "8", "--no-progress"]
    result = runner.invoke(root_app, ["multimodal", "pretrain", *common, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "convirt: 3 steps" in result.output
    record = json.loads((out / "config.json").read_text())
    assert record["image_weight"] == 0.75 and record["temperature"] == 0.1 and record["augment"]["flip_p"] == 0.0
    module, config = load_module(out / "checkpoint.pt", torch.device("cpu"))
    assert config == MultimodalConfig(**{k: v for k, v in record.items() if k not in ("modality", "molssl_version")})
    report = tmp_path / "retrieval.json"
    result = runner.invoke(root_app, ["multimodal", "retrieve", "--checkpoint", str(out / "checkpoint.pt"),
                                      "--candidates", "12", "--json-out", str(report)])
    assert result.exit_code == 0, result.output
    assert set(json.loads(report.read_text())["trained"]) == {"image_to_text/top1", "image_to_text/top5",
                                                               "text_to_image/top1", "text_to_image/top5"}
    result = runner.invoke(root_app, ["multimodal", "probe", "--checkpoint", str(out / "checkpoint.pt"),
                                      "--label", "halogen", "--knn-k", "3"])
    assert result.exit_code == 0, result.output
    assert "halogen/linear: trained" in result.output
    bad = runner.invoke(root_app, ["multimodal", "retrieve", "--checkpoint", str(out / "checkpoint.pt"),
                                   "--candidates", "50"])
    assert bad.exit_code == 2 and "error: --candidates must be between 2 and the 12 held-out molecules" in bad.output
    again = runner.invoke(root_app, ["multimodal", "pretrain", *common, "--epochs", "2", "--resume"])
    assert again.exit_code == 2 and "epochs: 1 -> 2" in again.output


@pytest.mark.parametrize("flag, value, message", [
    ("--temperature", "0", "the temperature must be a positive number (ConVIRT: 0.1), got 0.0"),
    ("--temperature", "-0.1", "the temperature must be a positive number"),
    ("--image-weight", "1.5", "the image-to-text weight lambda must be in [0, 1] (ConVIRT: 0.75), got 1.5"),
])
def test_cli_refuses_a_bad_temperature_or_weight_in_one_sentence(tmp_path, flag, value, message):
    result = CliRunner().invoke(root_app, ["multimodal", "pretrain", "--data", str(DEMO_SMILES), "--out",
                                           str(tmp_path / "run"), flag, value])
    assert result.exit_code == 2 and f"error: {message}" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
