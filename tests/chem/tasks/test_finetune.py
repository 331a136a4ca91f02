import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.property_model import masked_loss
from molssl.chem.serve.loading import load_property_model
from molssl.chem.serve.predict import predict_member as predict
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.cli.common import expand_list_options
from molssl.cli.main import app
from molssl.chem.serve.loading import save_encoder
from molssl.errors import MolsslError

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)
CORES = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1"]
TAILS = ["C", "CC", "CCC", "OC", "NC", "ClC", "FC", "OCC", "NCC", "CC(C)C", "SC", "BrC", "N#CC", "O=CC",
         "CC(=O)N", "OCCC"]
INVALID_ROWS = (3, 40)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def labelled_csv(tmp_path) -> Path:
    """82 rows: two classification targets and one regression target with missing labels, 2 invalid SMILES."""
    smiles = [tail + core for core in CORES for tail in TAILS]
    for row in INVALID_ROWS:
        smiles.insert(row, "C1CC(" if row == 3 else "")
    records = []
    for i, smi in enumerate(smiles):
        n_atoms = sum(c.isalpha() and c.upper() != "L" and c != "r" for c in smi)
        records.append({"smiles": smi,
                        "has_n": np.nan if i % 7 == 0 else float("N" in smi or "n" in smi),
                        "ring_o": np.nan if i % 5 == 0 else float("O" in smi),
                        "size": np.nan if i % 9 == 0 else 0.5 * n_atoms + 0.1 * (i % 3)})
    path = tmp_path / "labelled.csv"
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def _config(tmp_path, csv, **changes) -> FinetuneConfig:
    values = dict(out=str(tmp_path / "run"), csv=str(csv), targets=["has_n", "ring_o"], task="classification",
                  split="random", seeds=[0], epochs=3, batch_size=16, encoder=TINY, threads=1,
                  cache_dir=str(tmp_path / "cache"), progress=False, pretrained="none")
    values.update(changes)
    return FinetuneConfig(**values)


def test_masked_loss_ignores_missing_labels():
    out = torch.randn(6, 2, requires_grad=True)
    target = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0], [0.0, float("nan")],
                           [1.0, 0.0]])
    loss = masked_loss(out, target, "classification", "roc_auc")
    mask = ~torch.isnan(target)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out[mask], target[mask])
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.all(out.grad[~mask] == 0) and torch.all(out.grad[mask] != 0)
    reg = masked_loss(out.detach(), target, "regression", "mae")
    assert torch.allclose(reg, (out.detach()[mask] - target[mask]).abs().mean())


def test_multitask_run_directory_split_results_and_model(tmp_path, labelled_csv):
    results = run_finetune(_config(tmp_path, labelled_csv, protocol="multitask", seeds=[0, 1], epochs=2), log=lambda _: None)
    out = tmp_path / "run"
    table = pd.read_csv(labelled_csv, keep_default_na=False)
    # invalid rows are listed and appear in no split part
    invalid = pd.read_csv(out / "invalid.csv")
    assert sorted(invalid["row"]) == list(INVALID_ROWS)
    for seed in (0, 1):  # a random split depends on the seed, so each seed directory has its own
        split = json.loads((out / f"seed_{seed}" / "split.json").read_text())
        parts = [set(split[p]) for p in ("train", "valid", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        used = parts[0] | parts[1] | parts[2]
        labelled = set(np.flatnonzero(table[["has_n", "ring_o"]].ne("").any(axis=1).to_numpy()))
        assert used == labelled - set(INVALID_ROWS)  # molecules without any label are left out
    assert results["protocol"] == "multitask" and results["method"] == "random-init"
    tests = [s["test"] for s in results["seeds"]]
    assert results["mean"] == pytest.approx(np.mean(tests)) and results["std"] == pytest.approx(np.std(tests, ddof=1))
    assert json.loads((out / "results.json").read_text())["dataset"] == "labelled"
    # CPU time as the operating system counted it: training used some, and no more than the cores allow
    assert 0 < results["cpu_hours"] * 3600 <= results["seconds"] * (os.cpu_count() or 1) + 1
    assert "mean ± std" in (out / "results.md").read_text()
    # the best-validation epoch is the one kept
    history = [json.loads(line) for line in (out / "seed_0" / "history.jsonl").read_text().splitlines()]
    best = max(history, key=lambda r: r["valid_roc_auc"])
    assert results["seeds"][0]["valid"] == pytest.approx(best["valid_roc_auc"])
    assert results["seeds"][0]["models"]["all"]["best_epoch"] == best["epoch"]

    model = load_property_model(out / "seed_0" / "model.pt")
    assert model.tasks == ["has_n", "ring_o"] and model.task_type == "classification"
    assert model.meta["protocol"] == "multitask" and model.meta["smiles_column"] == "smiles"
    preds, valid = predict(model, ["CCNc1ccccc1", "not a smiles", "OCC1CCOC1"])
    assert valid.tolist() == [True, False, True]
    assert np.isnan(preds[1]).all() and ((preds[[0, 2]] > 0) & (preds[[0, 2]] < 1)).all()


def test_regression_targets_normalized_on_training_split(tmp_path, labelled_csv):
    run_finetune(_config(tmp_path, labelled_csv, targets=["size"], task="regression", units="arb",
                         epochs=2), log=lambda _: None)
    out = tmp_path / "run"
    split = json.loads((out / "seed_0" / "split.json").read_text())
    labels = pd.read_csv(labelled_csv)["size"].to_numpy()
    train = labels[split["train"]]
    model = load_property_model(out / "seed_0" / "model.pt")
    assert model.target_mean.item() == pytest.approx(np.nanmean(train), rel=1e-5)
    assert model.target_std.item() == pytest.approx(np.nanstd(train), rel=1e-5)
    assert model.units == "arb"
    # rows whose label is missing were left out by the (default, multitask) protocol for a CSV
    assert not set(np.flatnonzero(np.isnan(labels))) & set(split["train"] + split["valid"] + split["test"])
    preds, _ = predict(model, ["CCCc1ccccc1"])
    assert abs(preds[0, 0] - np.nanmean(train)) < 5 * np.nanstd(train)


def test_per_target_protocol_splits_each_target_on_its_labelled_rows(tmp_path, labelled_csv):
    results = run_finetune(_config(tmp_path, labelled_csv, protocol="molclr-per-target", epochs=1),
                           log=lambda _: None)
    labels = pd.read_csv(labelled_csv)
    assert set(results["seeds"][0]["models"]) == {"has_n", "ring_o"}
    for index, target in enumerate(["has_n", "ring_o"]):
        folder = tmp_path / "run" / "targets" / f"{index}_{target}"
        split = json.loads((folder / "seed_0" / "split.json").read_text())
        rows = set(split["train"] + split["valid"] + split["test"])
        expected = set(np.flatnonzero(labels[target].notna().to_numpy())) - set(INVALID_ROWS)
        assert rows == expected
        assert load_property_model(folder / "seed_0" / "model.pt").tasks == [target]
    per_target = [m["test"] for m in results["seeds"][0]["models"].values()]
    assert results["mean"] == pytest.approx(np.mean(per_target))


def test_frozen_pretrained_encoder_is_loaded_and_left_unchanged(tmp_path, labelled_csv):
    torch.manual_seed(3)
    encoder = MolecularEncoder(TINY)
    save_encoder(encoder, tmp_path / "encoder.pt")
    results = run_finetune(_config(tmp_path, labelled_csv, pretrained=str(tmp_path / "encoder.pt"),
                                   freeze_encoder=True, epochs=2), log=lambda _: None)
    assert results["method"] == "pretrained-frozen"
    model = load_property_model(tmp_path / "run" / "seed_0" / "model.pt")
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], tensor), name
    assert model.encoder.config.dropout == 0.3  # fine-tuning dropout replaces the pre-training one


def test_rf_baseline_uses_the_same_split(tmp_path, labelled_csv):
    results = run_finetune(_config(tmp_path, labelled_csv, method="rf-ecfp", targets=["has_n"]), log=lambda _: None)
    assert results["method"] == "rf-ecfp" and 0.0 <= results["mean"] <= 1.0
    (model,) = results["seeds"][0]["models"].values()  # per-task test scores, as the GNN rows have them
    assert model["test_per_task"] == {"has_n": pytest.approx(model["test"])}
    assert (tmp_path / "run" / "seed_0" / "split.json").is_file()
    assert not (tmp_path / "run" / "seed_0" / "model.pt").exists()


def test_rf_baseline_threads_follow_the_threads_option(tmp_path, labelled_csv, monkeypatch):
    """``--threads`` reaches the forest (a forest alone on the cores may use them all) without changing
    its predictions: a seeded forest is the same with one or two jobs."""
    from molssl.chem.tasks import baselines

    seen = []
    original = baselines.forest_predict

    def spy(*args, **kwargs):
        seen.append(args[6] if len(args) > 6 else kwargs.get("n_jobs"))
        return original(*args, **kwargs)

    monkeypatch.setattr(baselines, "forest_predict", spy)
    scores = {}
    for threads in (1, 2):
        out = tmp_path / f"run{threads}"
        run_finetune(_config(tmp_path, labelled_csv, method="rf-ecfp", targets=["size"], task="regression",
                             threads=threads, out=str(out)), log=lambda _: None)
        scores[threads] = pd.read_csv(out / "seed_0" / "test_predictions.csv")
    assert seen == [1, 2]
    pd.testing.assert_frame_equal(scores[1], scores[2])


def test_bad_configurations_are_clear_errors(tmp_path, labelled_csv):
    with pytest.raises(MolsslError, match="either"):
        FinetuneConfig(out="x", dataset="bbbp", csv="y.csv")
    with pytest.raises(MolsslError, match="--targets"):
        FinetuneConfig(out="x", csv="y.csv")
    with pytest.raises(MolsslError, match="protocol"):
        _config(tmp_path, labelled_csv, protocol="per-task")
    with pytest.raises(MolsslError, match="not a fine-tuned"):
        save_encoder(MolecularEncoder(TINY), tmp_path / "encoder.pt")
        load_property_model(tmp_path / "encoder.pt")
    run_finetune(_config(tmp_path, labelled_csv, epochs=1), log=lambda _: None)
    with pytest.raises(MolsslError, match="already holds"):
        run_finetune(_config(tmp_path, labelled_csv, epochs=1), log=lambda _: None)


def test_list_options_take_several_values():
    args = ["--dataset", "bbbp", "--seeds", "0", "1", "2", "--out", "x", "--targets", "a", "b"]
    assert expand_list_options(args, ("--seeds", "--targets")) == ["--dataset", "bbbp", "--seeds", "0", "--seeds", "1", "--seeds", "2",
                                         "--out", "x", "--targets", "a", "--targets", "b"]


def test_cli_finetune_on_a_user_csv(tmp_path, labelled_csv):
    result = CliRunner().invoke(app, [
        "finetune", "--csv", str(labelled_csv), "--smiles-column", "smiles", "--targets", "has_n", "ring_o",
        "--task", "classification", "--split", "random", "--seeds", "0", "1", "--epochs", "1", "--batch-size", "16",
        "--num-layers", "2", "--emb-dim", "16", "--feat-dim", "16", "--threads", "1", "--pretrained", "none",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert [s["seed"] for s in saved["seeds"]] == [0, 1] and saved["protocol"] == "multitask"
    assert "test ROC-AUC" in result.output and " %" in result.output  # one score format: percent with its unit


def test_bbbp_molclr_protocol_leaves_out_unparsable_molecules(tmp_path, shared_data):
    config = FinetuneConfig(out=str(tmp_path / "bbbp"), dataset="bbbp", data_dir=str(shared_data / "moleculenet"),
                            epochs=1, max_train_molecules=64, encoder=TINY, threads=1,
                            cache_dir=str(tmp_path / "cache"), progress=False)
    results = run_finetune(config, log=lambda _: None)
    split = json.loads((tmp_path / "bbbp" / "seed_0" / "split.json").read_text())  # the cap is seeded: per seed
    assert results["protocol"] == "molclr-per-target" and results["invalid_rows"] == 11
    assert len(split["train"]) == 64 and len(split["valid"]) + len(split["test"]) == 2039 - 1631
    invalid = set(pd.read_csv(tmp_path / "bbbp" / "invalid.csv")["row"])
    assert len(invalid) == 11 and not invalid & set(split["train"] + split["valid"] + split["test"])
    assert 0.0 < results["mean"] < 1.0
