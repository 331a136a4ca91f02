import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from molssl.chem.serve import domain, loading, reliability, uncertainty, zoo, zoo_export
from molssl.chem.serve.ensemble import PropertyEnsemble, load_ensemble
from molssl.chem.serve.loading import load_property_model
from molssl.chem.serve.predict import predict_member as member_predict
from molssl.chem.serve.fingerprints import fingerprint
from molssl.chem.serve.predict import Predictor
from molssl.cli.main import app
from molssl.core.checkpoint import GZIP_MAGIC, atomic_save, load_checkpoint
from molssl.errors import MolsslError
from tiny_models import encoder_file, finetune_run, labelled_molecules

SHIPPED = ("molclr-gin-mix", "rich-gin-physchem", "esol", "freesolv", "lipo", "bbbp", "bace", "clintox", "tox21", "sider")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    runs = [finetune_run(folder / "a", "regression", seeds=(0,)), finetune_run(folder / "b", "regression", seeds=(1,))]
    models = folder / "models"
    card = zoo_export.export_property_model(runs, "toy", title="toy size", description="A test model.", training_data="made up",
                                     commands=["molssl finetune --csv labelled.csv ..."], task_labels={"size": "n/3"},
                                     units="Å", models_dir=models)
    enc = encoder_file(folder / "pre" / "encoder.pt")
    (folder / "pre" / "summary.json").write_text(json.dumps({"steps": 3, "final_loss": 1.0}))
    enc_card = zoo_export.export_encoder(enc.parent, "toy-gin", title="toy encoder", description="", training_data="none",
                                  commands=["molssl pretrain ..."], probe_smiles=["CCO", "c1ccccc1", "CC(=O)O"],
                                  models_dir=models)
    return {"runs": runs, "models": models, "card": card, "encoder_card": enc_card, "encoder": enc}


def test_pack_unpack_bounds_the_rounding_error():
    torch.manual_seed(0)
    state = {"w": torch.randn(300, 600), "b": torch.randn(300), "n": torch.tensor(7), "head.w": torch.randn(64, 64),
             "x_embeddings.0.weight": torch.randn(3, 300), "out.weight": torch.randn(1, 300)}
    packed = loading.pack_state(state, skip_prefix="head.")
    assert "head.w" not in packed and packed["w"]["q"].dtype == torch.int8
    assert "q" in packed["x_embeddings.0.weight"] and "t" in packed["out.weight"]  # a token table; a small matrix
    restored = loading.unpack_state(packed)
    assert torch.equal(restored["b"], state["b"]) and torch.equal(restored["n"], state["n"])
    error = (restored["w"] - state["w"]).abs()
    row_max = state["w"].abs().amax(dim=1, keepdim=True)
    assert (error <= row_max / 127 / 2 + 1e-6).all() and error.max() > 0


def test_card_records_ensemble_score_and_provenance(exported):
    card = exported["card"]
    results = [json.loads((run / "results.json").read_text()) for run in exported["runs"]]
    assert card.members == 2 and card.tasks == ["size"] and card.units == "Å" and card.split == "scaffold"
    # the --csv defaults, and the card says how descriptors are scaled when it is not the standard way
    assert card.inputs == {"featurizer": "molclr", "features": "rdkit2d", "descriptor_scaling": "quantile"}
    assert "(quantile descriptor scaling)" in card.to_markdown()
    assert card.member_test_scores == [r["seeds"][0]["test"] for r in results] and card.budget["seeds"] == [0, 1]
    assert card.budget["epochs_run"] == [e for r in results for e in r["budget"]["epochs_run"]]  # not the first run's
    assert len(card.budget["epochs_run"]) == 2
    assert card.test_molecules == len(json.loads((exported["runs"][0] / "split.json").read_text())["test"])
    folder = exported["models"] / "toy"
    data = (folder / zoo.WEIGHTS_FILE).read_bytes()
    assert card.sha256 == hashlib.sha256(data).hexdigest() and card.size_bytes == len(data)
    assert zoo.get_card("toy", exported["models"]) == card
    markdown = (folder / zoo.CARD_MARKDOWN).read_text()
    assert "molssl finetune --csv labelled.csv" in markdown and "RMSE" in markdown


def test_an_ensemble_of_fold_models_loads_calibrates_and_names_its_folds(tmp_path, monkeypatch):
    """Members validated on different cross-validation folds: their calibration records are pooled, not aligned.
    Too few of the scaffold split's validation molecules lie in their folds (one scaffold of 10 here, fewer than
    MIN_LABELS), so they keep their whole folds, and the card says why."""
    runs = [finetune_run(tmp_path / f"f{fold}", "classification", seeds=(0,), folds=3, fold=fold) for fold in (0, 1)]
    card = zoo_export.export_property_model(runs, "folded", title="t", description="", training_data="made up",
                                            commands=["c"], models_dir=tmp_path / "models")
    assert card.budget["folds"] == ["0 of 3", "1 of 3"] and card.budget["seeds"] == [0, 0]
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path / "models")
    model = load_ensemble("folded")
    valid = [set(json.loads((run / "split.json").read_text())["valid"]) for run in runs]
    assert not valid[0] & valid[1] and model.calibration is not None
    assert [set(m.meta["calibration"]["rows"].tolist()) for m in model.members] == valid
    assert "Calibrated on the members' whole validation folds: only" in card.notes
    # the domain keeps the strictest member's threshold chosen on its whole fold
    originals = [load_property_model(p).meta["domain"] for run in runs for p in loading.run_member_files(run)]
    assert model.domain.threshold == max(d["threshold"] for d in originals)
    assert model.domain.summary()["threshold_rule"] == domain.THRESHOLD_RULE


def test_fold_models_calibrate_on_the_scaffold_splits_validation_molecules(tmp_path, monkeypatch):
    """With enough of them, fold members keep only the calibration records of the ordinary scaffold split's
    validation molecules (the ones drawn like the test split), each from the member whose fold holds it."""
    monkeypatch.setattr(uncertainty, "MIN_LABELS", 5)
    runs = [finetune_run(tmp_path / f"f{fold}", "regression", seeds=(0,), folds=3, fold=fold) for fold in (0, 1, 2)]
    ordinary = set(json.loads((finetune_run(tmp_path / "plain", "regression", seeds=(0,)) / "split.json")
                              .read_text())["valid"])
    folds = [set(json.loads((run / "split.json").read_text())["valid"]) for run in runs]
    assert ordinary and ordinary <= set.union(*folds)  # the folds share out training + validation
    card = zoo_export.export_property_model(runs, "folded", title="t", description="", training_data="made up",
                                            commands=["c"], models_dir=tmp_path / "models")
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path / "models")
    model = load_ensemble("folded")  # the cut records pass the digest check
    kept = [set(m.meta["calibration"]["rows"].tolist()) for m in model.members]
    assert kept == [f & ordinary for f in folds]
    assert all(m.meta["calibration"]["split"] == reliability.SCAFFOLD_VALID for m in model.members)
    assert all(len(m.meta["calibration"]["smiles"]) == len(m.meta["calibration"]["y_true"]) == len(rows)
               for m, rows in zip(model.members, kept))
    assert sum(model.calibration.n) == len(ordinary)  # pooled: one residual per validation molecule
    assert f"validation folds ({len(ordinary)})" in card.notes
    # the domain's threshold is chosen on the same molecules: each one's similarity to its own member's training
    # set, recomputed here from the run's SMILES, pooled over the members
    similarity = []
    for run, rows in zip(runs, kept):
        member = load_property_model(next(iter(loading.run_member_files(run))))
        record = member.meta["calibration"]
        smiles = [s for s, r in zip(record["smiles"], np.asarray(record["rows"]).tolist()) if r in rows]
        found, _ = domain.nearest(domain.describe_smiles(smiles).fingerprints,
                                  torch.from_numpy(np.asarray(member.meta["domain"]["fingerprints"])))
        similarity.append(found)
    expected = float(np.quantile(np.concatenate(similarity), domain.THRESHOLD_QUANTILE, method="lower"))
    assert model.domain.threshold == pytest.approx(expected, abs=1e-6)
    assert [len(m.meta["domain"]["valid_similarity"]) for m in model.members] == [len(rows) for rows in kept]
    assert model.domain.summary()["threshold_rule"] == reliability.POOLED_THRESHOLD_RULE
    assert "similarity threshold is chosen on the same molecules" in card.notes
    # fine-tuning marked those molecules in each fold's record, and the fold runs used directly make the same cut
    for run, fold in zip(runs, folds):
        record = load_property_model(next(iter(loading.run_member_files(run)))).meta["calibration"]
        mask = np.asarray(record[reliability.LIKE_TEST], dtype=bool)
        assert mask.size == len(fold) and set(np.asarray(record["rows"])[mask].tolist()) == fold & ordinary
    direct = PropertyEnsemble("direct", [load_property_model(p) for run in runs for p in loading.run_member_files(run)])
    assert [set(np.asarray(r["calibration"]["rows"]).tolist()) for r in direct.records] == kept
    assert direct.calibration.n == model.calibration.n
    assert direct.domain.threshold == pytest.approx(model.domain.threshold, abs=1e-6)


def test_fold_runs_made_before_the_mark_get_it_from_the_data_when_exported(tmp_path, monkeypatch):
    """Fold runs fine-tuned before molssl marked the scaffold split's validation molecules (the shipped models'
    runs): used directly they calibrate on their whole folds; exported, the mark is found from the data, and the
    export is the one a marked run gives."""
    monkeypatch.setattr(uncertainty, "MIN_LABELS", 5)
    runs = [finetune_run(tmp_path / f"f{fold}", "regression", seeds=(0,), folds=3, fold=fold) for fold in (0, 1, 2)]
    kwargs = dict(title="t", description="", training_data="made up", commands=["c"], models_dir=tmp_path / "models")
    marked = zoo_export.export_property_model(runs, "marked", **kwargs)
    whole = 0
    for path in (p for run in runs for p in loading.run_member_files(run)):
        ckpt = load_checkpoint(path)
        ckpt["calibration"] = {k: v for k, v in ckpt["calibration"].items() if k != reliability.LIKE_TEST}
        ckpt.update(reliability.with_digest({key: ckpt[key] for key in reliability.KEYS}))
        atomic_save(ckpt, path)
        whole += len(ckpt["calibration"]["rows"])
    members = [load_property_model(p) for run in runs for p in loading.run_member_files(run)]
    assert sum(PropertyEnsemble("direct", members).calibration.n) == whole  # nothing to cut by
    unmarked = zoo_export.export_property_model(runs, "unmarked", **kwargs)
    assert unmarked.notes == marked.notes and "Calibrated only on" in unmarked.notes
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path / "models")
    assert load_ensemble("unmarked").domain.threshold == load_ensemble("marked").domain.threshold
    assert load_ensemble("unmarked").calibration.n == load_ensemble("marked").calibration.n


def test_runs_with_different_test_splits_are_refused(tmp_path):
    run = finetune_run(tmp_path, "regression", seeds=(0, 1), split="random")
    with pytest.raises(MolsslError, match="different splits"):
        zoo_export.export_property_model(run, "bad", title="t", description="", training_data="t", commands=["x"],
                                  models_dir=tmp_path / "models")
    assert not (tmp_path / "models" / "bad").exists()


def test_shipped_ensemble_predicts_like_its_members(exported, monkeypatch):
    monkeypatch.setattr(zoo, "MODELS_DIR", exported["models"])
    smiles = ["CCO", "c1ccccc1", "CCN"]
    members = [load_property_model(p) for run in exported["runs"] for p in sorted(run.rglob("model.pt"))]
    expected = np.mean([member_predict(m, smiles)[0][:, 0] for m in members], axis=0)
    table = Predictor(["toy"]).predict_smiles(smiles)
    assert "toy" in table.columns and "toy_std" in table.columns
    np.testing.assert_allclose(table["toy"], expected, rtol=2e-2, atol=1e-3)  # int8 weights


def test_encoder_export_and_fingerprints(exported, monkeypatch):
    monkeypatch.setattr(zoo, "MODELS_DIR", exported["models"])
    assert exported["encoder_card"].compression["min_cosine_to_uncompressed"] > 0.99
    np.testing.assert_allclose(fingerprint(["CCO"], model="toy-gin"), fingerprint(["CCO"], model=exported["encoder"]),
                               rtol=0.05, atol=0.05)
    with pytest.raises(MolsslError, match="property model"):
        fingerprint(["CCO"], model="toy")
    with pytest.raises(MolsslError, match="not a property model"):
        Predictor(["toy-gin"])
    # the exported folder by its path, without the zoo: the same fingerprints, and it names where it came from
    monkeypatch.undo()
    by_path = exported["models"] / "toy-gin"
    np.testing.assert_array_equal(fingerprint(["CCO"], model=str(by_path)),
                                  fingerprint(["CCO"], model=loading.load_shipped_encoder("toy-gin", exported["models"])))
    assert loading.resolve_encoder(by_path)[1] == f"exported encoder {by_path}"


def test_list_and_cli(exported, monkeypatch):
    monkeypatch.setattr(zoo, "MODELS_DIR", exported["models"])
    assert [c.name for c in zoo.list_models()] == ["toy-gin", "toy"]
    runner = CliRunner()
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "toy" in result.output and "RMSE" in result.output and "toy-gin" in result.output
    result = runner.invoke(app, ["models", "show", "toy"])
    assert result.exit_code == 0 and "## Commands that produced it" in result.output
    result = runner.invoke(app, ["models", "show", "nope"])
    assert result.exit_code == 2 and "available: toy-gin, toy" in result.output


def test_shipped_zoo_is_complete_and_small():
    cards = {c.name: c for c in zoo.list_models()}
    if not cards:
        pytest.skip("no shipped models in this checkout")
    assert set(SHIPPED) <= set(cards)
    total = sum(p.stat().st_size for p in zoo.MODELS_DIR.rglob("*") if p.is_file())
    assert total < 50e6
    for card in cards.values():
        data = (zoo.MODELS_DIR / card.name / zoo.WEIGHTS_FILE).read_bytes()
        assert hashlib.sha256(data).hexdigest() == card.sha256, card.name
        assert card.commands and card.date and card.training_data
        if card.kind == "property":
            assert card.split == "scaffold" and card.test_score is not None and card.members >= 1
            _, members = loading.load_shipped_members(card.name)
            assert card.inputs == zoo_export.model_inputs(members[0].meta), card.name  # the card says what it reads
    assert len(cards["tox21"].tasks) == 12 and len(cards["sider"].tasks) == 27


def test_cli_export(exported, tmp_path):
    runner = CliRunner()
    args = ["models", "export", *map(str, exported["runs"]), "--name", "cli-toy", "--title", "t", "--training-data", "d",
            "--command", "molssl finetune ...", "--label", "size=atoms/3", "--units", "Å", "--baseline", "RF-ECFP4=1.25",
            "--baseline", "chemprop v2=0.75", "--limitations", "Only tiny made-up molecules.", "--models-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = zoo.get_card("cli-toy", tmp_path)
    assert card.members == 2 and card.task_labels == {"size": "atoms/3"} and card.commands == ["molssl finetune ..."]
    assert card.baselines == {"RF-ECFP4": 1.25, "chemprop v2": 0.75} and card.limitations == "Only tiny made-up molecules."
    markdown = (tmp_path / "cli-toy" / zoo.CARD_MARKDOWN).read_text()
    assert "RF-ECFP4, same split | 1.250" in markdown and "Only tiny made-up molecules." in markdown
    bad = runner.invoke(app, [*args[:-2], "--baseline", "RF=high", "--models-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "NAME=SCORE" in bad.output
    result = runner.invoke(app, [*args[:-2], "--label", "no-equals-sign", "--models-dir", str(tmp_path)])
    assert result.exit_code != 0 and "TASK=LABEL" in result.output


def test_a_retired_name_says_what_replaced_it(tmp_path):
    with pytest.raises(MolsslError, match="'molclr-gin' was replaced: use molclr-gin-mix"):
        zoo.model_folder("molclr-gin", tmp_path)
    result = CliRunner().invoke(app, ["fingerprint", "--smiles", "CCO", "--model", "molclr-gin",
                                      "--output", str(tmp_path / "fps.npy")])
    assert result.exit_code == 2 and "replaced: use molclr-gin-mix" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "fps.npy").exists()
    with pytest.raises(MolsslError, match="'rich-gin-chembl' was replaced: use rich-gin-physchem"):
        zoo.model_folder("rich-gin-chembl", tmp_path)


def test_zoo_file_is_compressed_and_members_share_equal_descriptor_statistics(exported):
    path = exported["models"] / "toy" / zoo.WEIGHTS_FILE
    assert path.read_bytes()[:2] == GZIP_MAGIC
    a, b = (member["state"]["descriptor_knots"]["t"] for member in load_checkpoint(path)["members"])
    assert torch.equal(a, b) and a.data_ptr() == b.data_ptr()  # one split, one copy in the file


def test_repack_writes_the_same_content_compressed_and_updates_the_card(exported, tmp_path, monkeypatch):
    folder = tmp_path / "toy"
    shutil.copytree(exported["models"] / "toy", folder)
    atomic_save(load_checkpoint(folder / zoo.WEIGHTS_FILE), folder / zoo.WEIGHTS_FILE)  # the form shipped before
    plain = (folder / zoo.WEIGHTS_FILE).read_bytes()
    card = json.loads((folder / zoo.CARD_FILE).read_text())
    card.update(sha256=hashlib.sha256(plain).hexdigest(), size_bytes=len(plain))
    (folder / zoo.CARD_FILE).write_text(json.dumps(card))
    repacked = zoo_export.repack(folder)
    data = (folder / zoo.WEIGHTS_FILE).read_bytes()
    assert data[:2] == GZIP_MAGIC and len(data) < len(plain)
    assert repacked.sha256 == hashlib.sha256(data).hexdigest() == zoo.read_card(folder).sha256
    smiles = ["CCO", "c1ccccc1"]
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    after = Predictor(["toy"]).predict_smiles(smiles)["toy"]
    monkeypatch.setattr(zoo, "MODELS_DIR", exported["models"])
    np.testing.assert_array_equal(after, Predictor(["toy"]).predict_smiles(smiles)["toy"])


def test_a_fold_ensembles_forests_on_training_and_validation_molecules_show_beside_the_usual_ones():
    """`molssl models` puts the fair forest for a fold ensemble (trained on what its members saw) next to the
    card's usual baseline; cards without one read as before."""
    card = zoo.ModelCard(name="bace", kind="property", title="t", description="", training_data="", date="",
                         commands=[], metric="roc_auc", test_score=0.865,
                         baselines={"RF-ECFP4": 0.869, zoo.POOLED_BASELINE.format("RF-ECFP4"): 0.895,
                                    "chemprop v2": 0.698})
    assert card.baseline_text("RF-ECFP4") == "86.9 (89.5 on train + valid)"
    assert card.baseline_text("chemprop v2") == "69.8"
    row = zoo.models_rows([card])[1]
    assert "86.9 (89.5 on train + valid)" in row and "69.8" in row
    assert "| RF-ECFP4 on training + validation, same split | 89.5 |" in card.to_markdown()


def test_the_card_gives_the_test_error_inside_and_outside_the_domain():
    regression, classification = (type("Test", (), {"task_type": kind})() for kind in ("regression", "classification"))
    found = {"in_domain": 0.8, "error_in_domain": 0.412, "error_out_of_domain": 0.9}
    assert zoo_export._domain_errors(found, regression) == " (mean absolute error 0.412 inside, 0.9 outside)"
    assert "of the probabilities 0.412 inside" in zoo_export._domain_errors(found, classification)
    assert zoo_export._domain_errors({**found, "error_out_of_domain": None}, regression) == ""  # all inside


def test_per_target_fold_members_are_marked_and_cut_per_target(tmp_path, monkeypatch):
    """One model per target (MolCLR's protocol): each target has its own molecules, so its own scaffold split; each
    member's record marks that target's validation molecules, and the ensemble cuts every target by its own."""
    from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
    from tiny_models import TINY

    monkeypatch.setattr(uncertainty, "MIN_LABELS", 3)
    frame = labelled_molecules()
    frame["half"] = np.where(np.arange(len(frame)) % 2 == 0, frame["size"] * 2, np.nan)  # another molecule set
    csv = tmp_path / "two.csv"
    frame.to_csv(csv, index=False)

    def run(out, **folds):
        run_finetune(FinetuneConfig(out=str(out), csv=str(csv), targets=["size", "half"], task="regression",
                                    protocol="molclr-per-target", seeds=[0], epochs=1, batch_size=16, encoder=TINY,
                                    threads=1, cache_dir=str(tmp_path / "cache"), progress=False, pretrained="none",
                                    **folds), log=lambda _m: None)
        return out

    plain = run(tmp_path / "plain")
    ordinary = {p.parent.name: set(json.loads(p.read_text())["valid"]) for p in plain.rglob("split.json")}
    runs = [run(tmp_path / f"fold{fold}", folds=3, fold=fold) for fold in range(3)]
    members = [load_property_model(p) for r in runs for p in loading.run_member_files(r)]
    ensemble = PropertyEnsemble("two", members)
    for member, record in zip(members, ensemble.records):
        target = next(p for p in ordinary if p.endswith(member.tasks[0]))
        assert set(np.asarray(record["calibration"]["rows"]).tolist()) <= ordinary[target]
    kept = {task: sum(len(r["calibration"]["rows"]) for m, r in zip(members, ensemble.records) if m.tasks == [task])
            for task in ("size", "half")}
    assert kept == {task: len(ordinary[next(p for p in ordinary if p.endswith(task))]) for task in ("size", "half")}
