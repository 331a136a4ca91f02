"""Fine-tuning beyond MolCLR's protocol: hybrid heads, the rich featurizer, patience, class weights,
a named encoder (shipped, none), and the baselines (Delaney, RF; chemprop: test_chemprop_resumable.py) on the same split."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.property_model import PropertyModel
from molssl.chem.serve.loading import load_property_model, save_encoder, save_property_model
from molssl.chem.serve.predict import predict_member
from molssl.chem.serve.zoo import is_shipped
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.errors import MolsslError
from cpu_helpers import spend_cpu

TINY_RICH = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8, featurizer="rich")
SMILES = [tail + core for core in ("c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1", "C1CCNC1")
          for tail in ("C", "CC", "CCC", "OC", "NC", "ClC", "FC", "OCC", "NCC", "CC(C)C")]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "mols.csv"
    rows = ["smiles,logs,active"]
    for i, smi in enumerate(SMILES + ["[Pt]Cl", "[Na+].[Cl-]"]):  # metals: some RDKit descriptors fail (NaN)
        rows.append(f"{smi},{-0.3 * len(smi) + 0.1 * (i % 4)},{int('N' in smi or 'n' in smi)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def config(tmp_path, csv, name, **changes):
    values = dict(out=str(tmp_path / name), csv=str(csv), targets=["logs"], task="regression", split="random",
                  seeds=[0], epochs=2, batch_size=16, encoder=TINY_RICH, pretrained="none", threads=1,
                  cache_dir=str(tmp_path / "cache"), progress=False)
    values.update(changes)
    return FinetuneConfig(**values)


def test_hybrid_model_round_trip_imputes_failed_descriptors(tmp_path, csv):
    messages = []
    results = run_finetune(config(tmp_path, csv, "hybrid", features="rdkit2d+ecfp4", split="random"),
                           log=messages.append)
    model = load_property_model(tmp_path / "hybrid" / "seed_0" / "model.pt")
    assert model.features == ("rdkit2d", "ecfp2048") and model.encoder.config.featurizer == "rich"
    assert model.head.net[0].in_features == 16 + len(model.descriptor_median) + 2048
    assert torch.isfinite(model.descriptor_median).all() and (model.descriptor_std > 0).all()
    notes = [m for models in results["seeds"] for m in models["models"].values()][0]["notes"]
    train_rows = set(json.loads((tmp_path / "hybrid" / "seed_0" / "split.json").read_text())["train"])
    if train_rows & {len(SMILES), len(SMILES) + 1}:  # a metal landed in the training split
        assert notes["descriptor_values_imputed"] > 0 and any("imputed" in m for m in messages)
    values, valid = predict_member(model, SMILES[:3] + ["[Pt]Cl", "not a smiles"])
    assert valid.tolist() == [True, True, True, True, False] and np.isfinite(values[:4]).all()
    # saved and reloaded, the hybrid model predicts the same
    save_property_model(model, tmp_path / "copy.pt")
    again, _ = predict_member(load_property_model(tmp_path / "copy.pt"), SMILES[:3] + ["[Pt]Cl"])
    np.testing.assert_allclose(again, values[:4], rtol=1e-6)


def test_descriptor_statistics_come_from_the_training_split_only():
    model = PropertyModel(TINY_RICH, ["y"], "regression", features=("rdkit2d",))
    width = model.descriptor_median.numel()
    descriptors = np.full((3, width), np.nan, dtype=np.float32)
    descriptors[:, 0] = [1.0, 2.0, 30.0]
    counts = model.fit_feature_statistics(descriptors)
    assert model.descriptor_median[0] == 2.0 and model.descriptor_median[1] == 0.0  # all-NaN column: 0
    assert counts == {"descriptor_values_imputed": 3 * (width - 1), "molecules_with_imputed_descriptors": 3}


def test_patience_stops_early_and_records_the_epochs_run(tmp_path, csv):
    results = run_finetune(config(tmp_path, csv, "patient", epochs=40, patience=2, lr_head=1e-7, lr_encoder=1e-7),
                           log=lambda _m: None)
    epochs_run = results["budget"]["epochs_run"][0]
    assert epochs_run < 40 and results["budget"]["patience"] == 2
    history = (tmp_path / "patient" / "seed_0" / "history.jsonl").read_text().splitlines()
    assert len(history) == epochs_run


def test_balanced_class_weight_weights_positives_by_the_training_ratio(tmp_path, csv):
    results = run_finetune(config(tmp_path, csv, "weighted", targets=["active"], task="classification",
                                  class_weight="balanced"), log=lambda _m: None)
    notes = results["seeds"][0]["models"]["all"]["notes"]
    split = json.loads((tmp_path / "weighted" / "seed_0" / "split.json").read_text())  # random split: per seed
    active = {i: int("N" in s or "n" in s) for i, s in enumerate(SMILES + ["[Pt]Cl", "[Na+].[Cl-]"])}
    positives = sum(active[r] for r in split["train"])
    assert notes["pos_weight"] == pytest.approx([(len(split["train"]) - positives) / positives])
    assert results["config"]["class_weight"] == "balanced"


def test_delaney_and_rf_baselines_write_scores_and_test_predictions(tmp_path, csv):
    for method in ("delaney", "rf-rdkit2d", "rf-ecfp"):
        results = run_finetune(config(tmp_path, csv, method, method=method), log=lambda _m: None)
        assert results["method"] == method and np.isfinite(results["mean"])
        predictions = (tmp_path / method / "seed_0" / "test_predictions.csv").read_text().splitlines()
        assert predictions[0] == "row,smiles,logs,logs_pred" and len(predictions) > 1


@pytest.mark.skipif(not is_shipped("rich-gin-physchem"), reason="shipped encoder not present")
def test_csv_fine_tunes_the_shipped_encoder_by_default_and_none_means_random(tmp_path, csv):
    """A --csv starts from the shipped encoder of the vocabulary asked for (rich here); 'none' is random init."""
    messages = []
    results = run_finetune(config(tmp_path, csv, "shipped", pretrained=None, epochs=1), log=messages.append)
    assert results["method"] == "pretrained" and results["config"]["pretrained"] == "rich-gin-physchem"
    assert any("encoder: shipped encoder rich-gin-physchem (gin, rich featurizer)" in m for m in messages)
    assert results["encoder"]["emb_dim"] == 300  # the shipped int8 encoder loads for fine-tuning
    molclr = FinetuneConfig(out=str(tmp_path / "m"), csv=str(csv), targets=["logs"], task="regression",
                            encoder=EncoderConfig())
    assert molclr.pretrained == "molclr-gin-mix"  # the MolCLR vocabulary's shipped encoder
    default = FinetuneConfig(out=str(tmp_path / "d"), csv=str(csv), targets=["logs"], task="regression")
    assert default.encoder.featurizer == "rich" and default.pretrained == "rich-gin-physchem"  # as the CLI's --csv
    assert FinetuneConfig(out=str(tmp_path / "e"), dataset="bbbp").encoder.featurizer == "molclr"
    results = run_finetune(config(tmp_path, csv, "random", pretrained="none", epochs=1), log=messages.append)
    assert results["method"] == "random-init" and results["encoder_source"] == "random initialization"


def test_own_csv_gets_the_measured_best_defaults_and_moleculenet_keeps_molclrs(tmp_path):
    """Issue 15.4: patience on (and descriptors, balanced classes) for a user's CSV; MolCLR's protocol for --dataset."""
    csv = dict(out=str(tmp_path / "a"), csv="x.csv", targets=["y"], task="classification")
    user = FinetuneConfig(**csv)
    assert (user.features, user.descriptor_scaling, user.patience, user.class_weight) == (
        "rdkit2d", "quantile", 10, "balanced")
    explicit = FinetuneConfig(**csv, features="none", patience=0, class_weight="none")
    assert (explicit.features, explicit.patience, explicit.class_weight) == ("none", 0, "none")
    assert FinetuneConfig(**csv, method="rf-ecfp").features == "none"  # a baseline computes its own features
    molclr = FinetuneConfig(out=str(tmp_path / "b"), dataset="bbbp")
    assert (molclr.features, molclr.descriptor_scaling, molclr.patience, molclr.class_weight) == (
        "none", "standard", None, "none")
    with pytest.raises(MolsslError, match="--patience"):
        FinetuneConfig(**csv, patience=-1)


def test_probe_epochs_train_the_head_on_the_frozen_encoder_first_then_everything(tmp_path, csv, monkeypatch):
    import molssl.chem.tasks.training as training

    torch.manual_seed(5)
    encoder = MolecularEncoder(TINY_RICH)
    save_encoder(encoder, tmp_path / "encoder.pt")
    stages, real_fit = [], training.fit

    def recording_fit(objective, *args, **kwargs):
        trainer = real_fit(objective, *args, **kwargs)
        state = objective.model.encoder.state_dict()
        stages.append((kwargs["run_config"].get("stage"), kwargs["config"].epochs,
                       all(torch.equal(state[k].cpu(), v) for k, v in encoder.state_dict().items())))
        return trainer

    monkeypatch.setattr(training, "fit", recording_fit)
    results = run_finetune(config(tmp_path, csv, "lpft", pretrained=str(tmp_path / "encoder.pt"), probe_epochs=2,
                                  epochs=2), log=lambda _m: None)
    # the probe: 2 epochs, every encoder tensor (weights and BatchNorm statistics) unchanged; then both move
    assert stages == [("probe", 2, True), (None, 2, False)]
    run = tmp_path / "lpft" / "seed_0"
    probe = json.loads((run / "result.json").read_text())["notes"]["probe"]
    assert probe["epochs_run"] == 2 and 0 <= probe["best_epoch"] < 2 and np.isfinite(probe["valid"])
    assert (run / "probe" / "metrics.jsonl").is_file() and not (run / "probe" / "checkpoint.pt").exists()
    model = load_property_model(run / "model.pt")
    assert not model.freeze_encoder and all(p.requires_grad for p in model.encoder.parameters())
    assert results["config"]["probe_epochs"] == 2


def test_a_run_resumed_after_its_probe_keeps_the_probe_record_and_cost(tmp_path, csv, monkeypatch):
    from molssl.core.trainer import Trainer, load_training_checkpoint

    save_encoder(MolecularEncoder(TINY_RICH), tmp_path / "encoder.pt")
    real_step, real_end = Trainer.train_step, Trainer._end_epoch

    def costly_probe_step(self, batch):  # 0.3 CPU seconds a probe step, so the probe's cost is visible
        if self.run_config.get("stage") == "probe":
            spend_cpu(0.3)
        return real_step(self, batch)

    def stop_in_the_second_stage(self, valid):
        real_end(self, valid)
        if "stage" not in self.run_config:
            raise KeyboardInterrupt  # the machine stops after the fine-tuning stage's first epoch

    monkeypatch.setattr(Trainer, "train_step", costly_probe_step)
    monkeypatch.setattr(Trainer, "_end_epoch", stop_in_the_second_stage)
    lpft = config(tmp_path, csv, "lpft", pretrained=str(tmp_path / "encoder.pt"), probe_epochs=2, epochs=2)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(lpft, log=lambda _m: None)
    run = tmp_path / "lpft" / "seed_0"
    record = json.loads((run / "probe" / "result.json").read_text())
    assert record["epochs_run"] == 2 and record["cpu_seconds"] >= 0.6
    stage_two = load_training_checkpoint(run / "checkpoint.pt")["state"]
    monkeypatch.setattr(Trainer, "_end_epoch", real_end)
    results = run_finetune(replace(lpft, resume=True), log=lambda _m: None)
    (model,) = results["seeds"][0]["models"].values()
    assert model["notes"]["probe"] == record and model["epochs_run"] == 2
    assert model["cpu_seconds"] >= record["cpu_seconds"] + stage_two["cpu_seconds"]
    assert model["seconds"] >= record["seconds"] + stage_two["seconds"]


def test_probe_epochs_are_checked(tmp_path, csv):
    with pytest.raises(MolsslError, match="--probe-epochs must be a whole number"):
        config(tmp_path, csv, "bad", probe_epochs=-1)
    with pytest.raises(MolsslError, match="cannot be combined with --freeze-encoder"):
        config(tmp_path, csv, "bad", probe_epochs=2, freeze_encoder=True)


def test_quantile_descriptor_scaling_round_trips_and_is_checked(tmp_path, csv):
    run_finetune(config(tmp_path, csv, "quantile", features="rdkit2d", descriptor_scaling="quantile"))
    model = load_property_model(tmp_path / "quantile" / "seed_0" / "model.pt")
    assert model.descriptor_scaling == "quantile" and model.descriptor_knots.shape[1] > 2
    values, valid = predict_member(model, SMILES[:4])
    assert valid.all() and np.isfinite(values).all()
    save_property_model(model, tmp_path / "copy.pt")
    again, _ = predict_member(load_property_model(tmp_path / "copy.pt"), SMILES[:4])
    np.testing.assert_allclose(again, values, rtol=1e-6)
    standard = load_property_model(tmp_path / "quantile" / "seed_0" / "model.pt")
    standard.descriptor_scaling = "standard"  # the same weights read the descriptors the other way
    assert not np.allclose(predict_member(standard, SMILES[:4])[0], values)
    with pytest.raises(MolsslError, match="--descriptor-scaling"):
        config(tmp_path, csv, "bad", features="rdkit2d", descriptor_scaling="minmax")


def test_a_model_file_with_unusable_descriptor_quantiles_is_refused(tmp_path, csv):
    """A model.pt whose knots are out of order (a crafted or damaged file with a matching digest) would scale
    descriptors wrongly and still predict confidently: loading names the problem instead."""
    from molssl.core.checkpoint import CorruptFileError

    run_finetune(config(tmp_path, csv, "q", features="rdkit2d", descriptor_scaling="quantile"))
    model = load_property_model(tmp_path / "q" / "seed_0" / "model.pt")
    model.descriptor_knots[:, 0] = model.descriptor_knots[:, -1] + 1  # the first knot above the last
    save_property_model(model, tmp_path / "bad.pt")
    with pytest.raises(CorruptFileError, match="descriptor quantiles"):
        load_property_model(tmp_path / "bad.pt")
    model.descriptor_scaling = "minmax"
    save_property_model(model, tmp_path / "unknown.pt")
    with pytest.raises(CorruptFileError, match="descriptor scaling"):
        load_property_model(tmp_path / "unknown.pt")


def test_a_cross_validation_fold_validates_on_its_fold_and_keeps_the_test_split(tmp_path, csv):
    whole = run_finetune(config(tmp_path, csv, "whole", split="scaffold", epochs=1), log=lambda message: None)
    rows = {}
    for fold in range(3):
        run_finetune(config(tmp_path, csv, f"fold{fold}", split="scaffold", epochs=1, folds=3, fold=fold),
                     log=lambda message: None)
        rows[fold] = json.loads((tmp_path / f"fold{fold}" / "split.json").read_text())
    reference = json.loads((tmp_path / "whole" / "split.json").read_text())
    assert all(rows[fold]["test"] == reference["test"] for fold in rows)
    validated = sorted(row for fold in rows for row in rows[fold]["valid"])
    assert validated == sorted(reference["train"] + reference["valid"])
    fold1 = json.loads((tmp_path / "fold1" / "results.json").read_text())
    assert whole["config"]["folds"] == 0 and (fold1["config"]["folds"], fold1["config"]["fold"]) == (3, 1)
    assert fold1["config"]["fold_acyclic"] == "together"


@pytest.mark.parametrize("changes, message", [({"folds": 1}, "--folds of at least 2"),
                                              ({"folds": 3, "fold": 3}, "a --fold from 0"),
                                              ({"folds": 3, "split": "random"}, "need --split scaffold"),
                                              ({"folds": 3, "split": "scaffold", "fold_acyclic": "apart"}, "unknown --fold-acyclic"),
                                              ({"split": "scaffold", "fold_acyclic": "spread"}, "give --folds too")])
def test_cross_validation_options_are_checked(tmp_path, csv, changes, message):
    with pytest.raises(MolsslError, match=message):
        config(tmp_path, csv, "bad", **changes)


def test_more_folds_than_scaffolds_is_a_clear_error(tmp_path, csv):
    with pytest.raises(MolsslError, match="--folds 50: 50 folds need at least 50 scaffolds"):
        run_finetune(config(tmp_path, csv, "many", split="scaffold", folds=50, fold=0), log=lambda message: None)
