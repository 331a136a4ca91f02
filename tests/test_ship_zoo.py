"""How benchmarks/ship_zoo.py chooses a shipped model: the validation score of each ensemble as it would ship."""
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def ship():
    return benchmark_script("ship_zoo")


def _record(tasks, y_true, y_pred, rows=(5, 6, 7, 8)):
    return {"tasks": list(tasks), "calibration": {"rows": np.asarray(rows), "y_true": np.asarray(y_true, float),
                                                  "y_pred": np.asarray(y_pred, float)}}


def test_ensemble_score_averages_members_per_task(ship):
    y = [[0.0], [1.0], [2.0], [3.0]]
    over, under = _record(["t"], y, [[1.0], [2.0], [3.0], [4.0]]), _record(["t"], y, [[-1.0], [0.0], [1.0], [2.0]])
    assert ship.ensemble_valid_score([over], "rmse") == pytest.approx(1.0)
    assert ship.ensemble_valid_score([over, under], "rmse") == pytest.approx(0.0)  # errors cancel in the mean
    # per-target members (one model per task, as ClinTox ships): each task's column from its own members
    a = _record(["a"], [[0], [1], [0], [1]], [[0.1], [0.9], [0.2], [0.8]])
    b = _record(["b"], [[1], [0], [1], [0]], [[0.4], [0.6], [0.3], [0.7]])
    assert ship.ensemble_valid_score([a, b], "roc_auc") == pytest.approx(0.5)  # mean of 1.0 and 0.0


def test_a_lead_counts_only_when_it_survives_resampling_the_validation_rows(ship):
    rng = np.random.default_rng(1)
    y = (rng.random((150, 1)) < 0.3).astype(float)
    noisy = np.where(y == 1, 0.6, 0.4) + rng.normal(0, 0.3, y.shape)  # a fair model
    rows = np.arange(150)
    shipped = [_record(["t"], y, noisy, rows)]
    perfect = [_record(["t"], y, y * 0.5 + 0.25, rows)]
    assert ship.bootstrap_lead(perfect, shipped, "roc_auc", higher=True) > 0.99
    assert ship.bootstrap_lead(shipped, shipped, "roc_auc", higher=True) == 0.0  # a tie is no lead
    one_flipped = noisy.copy()
    one_flipped[np.argmax(np.where(y[:, 0] == 1, -noisy[:, 0], -np.inf))] += 1.0  # the lowest-scored positive, now high
    nudged = [_record(["t"], y, one_flipped, rows)]
    assert ship.ensemble_valid_score(nudged, "roc_auc") > ship.ensemble_valid_score(shipped, "roc_auc")
    lead = ship.bootstrap_lead(nudged, shipped, "roc_auc", higher=True)
    assert 0.3 < lead < 0.9  # better on the split, yet not in 90% of resamples: the shipped model stays
    assert ship.bootstrap_lead(shipped, perfect, "rmse", higher=False) == 0.0  # direction follows the metric
    with pytest.raises(SystemExit, match="different rows"):
        ship.bootstrap_lead(perfect, [_record(["t"], y, noisy, rows + 1)], "roc_auc", higher=True)


def test_members_validated_on_different_rows_are_refused(ship):
    y = [[0.0], [1.0], [2.0], [3.0]]
    with pytest.raises(SystemExit, match="different rows"):
        ship.ensemble_valid_score([_record(["t"], y, y), _record(["t"], y, y, rows=(1, 2, 3, 4))], "rmse")


def test_candidates_are_one_config_under_one_folder_and_name_their_encoder(ship, tmp_path):
    for seed, valid in ((0, 0.70), (1, 0.80), (2, 0.75)):
        run = tmp_path / "abl" / f"seed{seed}" / "rich-rdkit2d-quantile" / "bace" / "pretrained"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"valid_mean": valid}))
        (run / "config.json").write_text(json.dumps({"pretrained": "runs/gpu-rich"}))
    unfinished = tmp_path / "abl" / "seed3" / "rich-rdkit2d-quantile" / "bace" / "pretrained"
    unfinished.mkdir(parents=True)
    (found,) = ship.candidates_of([tmp_path / "abl"], ["rich-rdkit2d", "rich-rdkit2d-quantile"], "bace")
    assert sorted(found.runs) == [0, 1, 2]  # seed 3 has no results.json yet
    assert (found.featurizer, found.features, found.scaling, found.encoder) == ("rich", "rdkit2d", "quantile",
                                                                                "runs/gpu-rich")
    assert ship.best_seeds(found, 2, higher=True) == [1, 2] and ship.best_seeds(found, 2, higher=False) == [0, 2]


def _runs(root, config: dict, seeds=(0, 1), init="pretrained"):
    for seed in seeds:
        run = root / f"seed{seed}" / "rich-rdkit2d-quantile" / "lipo" / init
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"valid_mean": 0.6 + seed / 100}))
        (run / "config.json").write_text(json.dumps({"pretrained": "rich-gin-chembl", **config}))


def test_a_sweep_setting_is_remade_by_the_sweep_and_named_on_the_card(ship, tmp_path):
    _runs(tmp_path / "sweep" / "dropout-0.1", {"dropout": 0.1, "lr_head": 5e-4, "lr_encoder": 1e-4,
                                                "weight_decay": 1e-6})
    (found,) = ship.candidates_of([tmp_path / "sweep" / "dropout-0.1"], ["rich-rdkit2d-quantile"], "lipo")
    assert found.tuned == {"dropout": 0.1} and found.sweep_setting == "dropout-0.1"
    command = ship.run_command(found, "lipo", [0, 1], "data")
    assert command.startswith(f"python benchmarks/finetune_sweep.py --out {tmp_path / 'sweep'} --datasets lipo")
    assert "--settings dropout-0.1 --featurizer rich --features rdkit2d --descriptor-scaling quantile" in command
    assert command.endswith("--init pretrained --encoder rich-gin-chembl --data-dir data")


def test_two_sweeps_of_one_setting_stay_two_candidates(ship, tmp_path):
    settings = {"dropout": 0.1, "lr_head": 5e-4, "lr_encoder": 1e-4, "weight_decay": 1e-6}
    for name in ("sweep-a", "sweep-b"):
        _runs(tmp_path / name / "dropout-0.1", settings)
    found = ship.candidates_of([tmp_path / n / "dropout-0.1" for n in ("sweep-a", "sweep-b")],
                               ["rich-rdkit2d-quantile"], "lipo")
    assert [c.label() for c in found] == ["sweep-a/dropout-0.1/rich-rdkit2d-quantile/pretrained",
                                          "sweep-b/dropout-0.1/rich-rdkit2d-quantile/pretrained"]
    _runs(tmp_path / "ablation", {})
    (plain,) = ship.candidates_of([tmp_path / "ablation"], ["rich-rdkit2d-quantile"], "lipo")
    assert plain.label() == "ablation/rich-rdkit2d-quantile/pretrained"


def test_a_pooling_setting_is_a_sweep_setting_of_random_init(ship, tmp_path):
    _runs(tmp_path / "sweep" / "pool-add", {"dropout": 0.3, "encoder": {"pool": "add"}}, init="random-init")
    (found,) = ship.candidates_of([tmp_path / "sweep" / "pool-add"], ["rich-rdkit2d-quantile"], "lipo")
    assert found.tuned == {"pool": "add"} and found.sweep_setting == "pool-add"
    assert "--settings pool-add" in ship.run_command(found, "lipo", [0, 1], "data")
    _runs(tmp_path / "ablation", {"encoder": {"pool": "add"}}, init="random-init")  # not remade by the ablation
    (outside,) = ship.candidates_of([tmp_path / "ablation"], ["rich-rdkit2d-quantile"], "lipo")
    with pytest.raises(SystemExit, match="not a finetune_sweep.py setting"):
        ship.run_command(outside, "lipo", [0, 1], "data")


def test_changed_settings_outside_a_sweep_folder_are_refused(ship, tmp_path):
    _runs(tmp_path / "ablation", {"dropout": 0.1})  # the folder's name is no sweep setting: no command remakes it
    (found,) = ship.candidates_of([tmp_path / "ablation"], ["rich-rdkit2d-quantile"], "lipo")
    assert found.sweep_setting is None
    with pytest.raises(SystemExit, match="not a finetune_sweep.py setting"):
        ship.run_command(found, "lipo", [0, 1], "data")
    _runs(tmp_path / "defaults", {"dropout": 0.3, "lr_head": 5e-4})  # MolCLR's settings: the ablation's command
    (plain,) = ship.candidates_of([tmp_path / "defaults"], ["rich-rdkit2d-quantile"], "lipo")
    assert plain.tuned == {} and ship.run_command(plain, "lipo", [0], "d").startswith(
        "python benchmarks/quality_ablation.py")


def test_a_reship_names_the_external_check_it_drops(ship, monkeypatch):
    from types import SimpleNamespace

    from molssl.chem.serve import zoo
    from molssl.errors import MolsslError

    cards = {"esol": "Trained on ESOL only. Checked outside ESOL (2026-12-05, ...): RMSE 1.256.",
             "lipo": "Trained on Lipophilicity only."}

    def folder(name):
        if name not in cards:
            raise MolsslError(f"no shipped model named {name!r}")
        return name

    monkeypatch.setattr(zoo, "model_folder", folder)
    monkeypatch.setattr(zoo, "read_card", lambda name: SimpleNamespace(limitations=cards[name]))
    assert ship.previous_external_check("esol") == "outside ESOL"
    assert ship.previous_external_check("lipo") == ""
    assert ship.previous_external_check("not-shipped") == ""


def test_the_baselines_origin_keeps_nested_parentheses(ship):
    """A re-shipped card names where its baselines were measured: the whole first parenthesis of the old card's
    notes, not the text up to the first ')' of a parenthesis inside it."""
    notes = ("Baselines on the card: mean test score over their seeds (as on the card of 2026-12-02: RF-ECFP4 3, "
             "chemprop v2 3 (seed 2 added 2026-12-05), RF-RDKit2D 3); chemprop v2.3.1 with its defaults")
    assert ship._first_parenthesized(notes) == ("as on the card of 2026-12-02: RF-ECFP4 3, chemprop v2 3 (seed 2 "
                                                "added 2026-12-05), RF-RDKit2D 3")
    assert ship._first_parenthesized("RF-ECFP4 3 (none)") == "none"


SETTINGS = {"molclr": {}, "lr-x0.3": {"lr_head": 1.5e-4, "lr_encoder": 3e-5},
            "lr-x3": {"lr_head": 1.5e-3, "lr_encoder": 3e-4}, "dropout-0.1": {"dropout": 0.1}}


def _cv_runs(root, setting, scores, encoder="rich-gin-chembl", **config):
    """Cross-validation runs of one setting: scores[seed][fold] (finetune_sweep.py --folds's layout)."""
    for seed, per_fold in enumerate(scores):
        for fold, valid in enumerate(per_fold):
            run = root / setting / f"seed{seed}" / f"fold{fold}" / "rich-rdkit2d-quantile" / "lipo" / "pretrained"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps({"valid_mean": valid}))
            (run / "config.json").write_text(json.dumps({"pretrained": encoder, "folds": len(per_fold), "fold": fold,
                                                         **SETTINGS[setting], **config}))


def test_cross_validation_candidates_are_sweep_settings_with_their_fold_runs(ship, tmp_path):
    _cv_runs(tmp_path / "cv", "lr-x0.3", [[0.60, 0.70], [0.65, 0.75]])
    (tmp_path / "cv" / "not-a-setting").mkdir()
    (found,) = ship.cv_candidates([tmp_path / "cv"], ["rich-rdkit2d-quantile"], "lipo")
    assert found.label() == "cv/lr-x0.3/rich-rdkit2d-quantile/pretrained" and found.sweep_setting == "lr-x0.3"
    assert {run: ship.valid_mean(path) for run, path in found.folds.items()} == {
        (0, 0): 0.60, (0, 1): 0.70, (1, 0): 0.65, (1, 1): 0.75}
    command = ship.run_command(found, "lipo", [1], "data", cv=found.folds[1, 0])
    assert command.startswith(f"python benchmarks/finetune_sweep.py --out {tmp_path / 'cv'} --datasets lipo "
                              "--seeds 1 --folds 2 --settings lr-x0.3 ")
    standard = ("python benchmarks/finetune_sweep.py --out runs/sweep --datasets lipo --seeds 0 2 --settings lr-x0.3 "
                "--featurizer rich --features rdkit2d --descriptor-scaling quantile --init pretrained --encoder "
                "rich-gin-chembl --data-dir data")
    assert ship.same_configuration(command, standard)  # the shipped model's setting, found among the folds
    assert not ship.same_configuration(command, standard.replace("lr-x0.3", "molclr"))
    # folds with the acyclic molecules shared out: the command says so, and the setting is still the same
    _cv_runs(tmp_path / "spread", "lr-x0.3", [[0.60, 0.70]], fold_acyclic="spread")
    (spread,) = ship.cv_candidates([tmp_path / "spread"], ["rich-rdkit2d-quantile"], "lipo")
    spread_command = ship.run_command(spread, "lipo", [0], "data", cv=spread.folds[0, 0])
    assert "--seeds 0 --folds 2 --fold-acyclic spread --settings lr-x0.3 " in spread_command
    assert "--fold-acyclic" not in command and ship.same_configuration(spread_command, standard)
    # regression: the seed whose folds have the lower mean error gives the members, its first folds
    assert ship.fold_members(found.folds, 1, higher=False) == (0, [0])
    assert ship.fold_members(found.folds, 2, higher=True) == (1, [0, 1])
    # a fold that is one scaffold set is not a member; too few others is an error, not a smaller ensemble
    assert ship.fold_members(found.folds, 1, higher=False, one_set=lambda run: "fold0" in str(run)) == (0, [1])
    with pytest.raises(SystemExit, match="1 folds that are not one scaffold set; 2 members"):
        ship.fold_members(found.folds, 2, higher=False, one_set=lambda run: "fold0" in str(run))


def test_cross_validation_chooses_by_the_mean_and_keeps_the_shipped_setting_on_a_weak_lead(ship, tmp_path, capsys):
    _cv_runs(tmp_path / "cv", "molclr", [[0.70, 0.72, 0.74, 0.70, 0.71]])
    _cv_runs(tmp_path / "cv", "lr-x0.3", [[0.66, 0.70, 0.70, 0.68, 0.69]])  # lower error in every fold (regression)
    candidates = ship.cv_candidates([tmp_path / "cv"], ["rich-rdkit2d-quantile"], "lipo")
    by_setting = {c.sweep_setting: c.label() for c in candidates}
    molclr, tuned = by_setting["molclr"], by_setting["lr-x0.3"]
    chosen, ranking, scores, basis = ship._choose_by_cv("lipo", candidates, molclr, higher=False, lead_confidence=0.9)
    assert chosen.label() == tuned and ranking == [tuned, molclr]
    assert scores[molclr] == pytest.approx(0.714) and basis.startswith("5-fold scaffold cross-validation")
    assert ship.cv_lead([0.66, 0.70, 0.70, 0.68, 0.69], [0.70, 0.72, 0.74, 0.70, 0.71], higher=False) == 1.0
    mixed = [0.69, 0.73, 0.70, 0.71, 0.69]  # better on average, worse in two folds of five
    assert 0.5 < ship.cv_lead(mixed, [0.70, 0.72, 0.74, 0.70, 0.71], higher=False) < 0.9
    chosen, ranking, _, _ = ship._choose_by_cv("lipo", candidates, tuned, higher=True, lead_confidence=0.9)
    assert chosen.label() == molclr  # higher is better: molclr leads in every fold, so it replaces the shipped one
    _cv_runs(tmp_path / "cv2", "molclr", [[0.70, 0.72, 0.74, 0.70, 0.71]])
    _cv_runs(tmp_path / "cv2", "lr-x0.3", [[0.69, 0.73, 0.70, 0.71, 0.69]])
    weak = ship.cv_candidates([tmp_path / "cv2"], ["rich-rdkit2d-quantile"], "lipo")
    shipped = next(c.label() for c in weak if c.sweep_setting == "molclr")
    chosen, ranking, _, _ = ship._choose_by_cv("lipo", weak, shipped, higher=False, lead_confidence=0.9)
    assert chosen.label() == shipped and "leads the shipped model's setting in" in capsys.readouterr().out


def test_the_best_of_many_candidates_must_lead_by_more(ship, tmp_path, monkeypatch, capsys):
    assert ship.required_lead(0.9, 1) == pytest.approx(0.9)
    assert ship.required_lead(0.9, 12) == pytest.approx(1 - 0.1 / 12)  # Bonferroni: 99.2% for the best of 12
    assert ship.required_lead(0.9, 0) == pytest.approx(0.9)
    monkeypatch.setattr(ship, "cv_lead", lambda *args, **kwargs: 0.95)  # a lead in 95% of resamples
    for n_settings, replaced in ((2, True), (4, False)):  # one challenger: 95% >= 90%; three: 95% < 96.7%
        root = tmp_path / f"cv{n_settings}"
        _cv_runs(root, "molclr", [[0.70, 0.72, 0.74, 0.70, 0.71]])
        for i, setting in enumerate(["lr-x0.3", "lr-x3", "dropout-0.1"][:n_settings - 1]):
            _cv_runs(root, setting, [[0.66 + 0.001 * i, 0.70, 0.70, 0.68, 0.69]])
        candidates = ship.cv_candidates([root], ["rich-rdkit2d-quantile"], "lipo")
        shipped = next(c.label() for c in candidates if c.sweep_setting == "molclr")
        chosen, _, _, _ = ship._choose_by_cv("lipo", candidates, shipped, higher=False, lead_confidence=0.9)
        assert (chosen.label() != shipped) == replaced
        assert f"for the best of {n_settings - 1} candidates" in capsys.readouterr().out


def test_cross_validation_needs_runs_or_the_recorded_score_of_the_shipped_setting(ship, tmp_path, monkeypatch, capsys):
    _cv_runs(tmp_path / "cv", "lr-x0.3", [[0.66, 0.70]])
    shipped = tmp_path / "models" / "lipo"
    shipped.mkdir(parents=True)
    monkeypatch.setattr(ship.zoo, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(ship.zoo, "read_card", lambda folder: type("Card", (), {"commands": [
        "python benchmarks/finetune_sweep.py --out runs/s --datasets lipo --seeds 0 --settings molclr --featurizer rich"
    ]})())
    (shipped / ship.zoo.CARD_FILE).write_text("{}")
    ship.ship("lipo", [], ["rich-rdkit2d-quantile"], 2, "data", False, cv_roots=[tmp_path / "cv"])
    assert "skipped, the shipped model's setting has no cross-validation runs" in capsys.readouterr().out
    # or against the score its card records (--incumbent-cv): the candidate (RMSE 0.68) must be better by the margin
    monkeypatch.setattr(ship, "one_scaffold_set", lambda run: False)  # these runs have no model files
    ship.ship("lipo", [], ["rich-rdkit2d-quantile"], 2, "data", True, cv_roots=[tmp_path / "cv"],
              incumbent_cv=0.685, cv_margin=0.01)
    out = capsys.readouterr().out
    assert "against the shipped setting's recorded 0.6850" in out and "keeping the shipped model" in out
    assert "would export" not in out
    ship.ship("lipo", [], ["rich-rdkit2d-quantile"], 2, "data", True, cv_roots=[tmp_path / "cv"],
              incumbent_cv=0.70, cv_margin=0.01)
    out = capsys.readouterr().out
    assert "keeping" not in out and "would export" in out


def test_a_quality_ablation_command_is_the_sweeps_molclr_setting(ship):
    """A model shipped from quality_ablation.py (MolCLR's fine-tuning settings) is found among the molclr setting's
    cross-validation runs, with the same configuration, encoder and data; anything else tells them apart."""
    ablation = ("python benchmarks/quality_ablation.py --out runs/physchem-quantile --datasets tox21 --seeds 0 2 "
                "--configs rich:rdkit2d --init pretrained --encoder rich=runs/pretrain/physchem-rich "
                "--descriptor-scaling quantile --data-dir data")
    sweep = ("python benchmarks/finetune_sweep.py --out runs/cv-tox21 --datasets tox21 --seeds 1 --folds 5 "
             "--settings molclr --featurizer rich --features rdkit2d --descriptor-scaling quantile --init pretrained "
             "--encoder runs/pretrain/physchem-rich --data-dir data")
    assert ship.same_configuration(sweep, ablation) and ship.same_configuration(ablation, sweep)
    assert not ship.same_configuration(sweep.replace("--settings molclr", "--settings dropout-0.1"), ablation)
    assert not ship.same_configuration(sweep, ablation.replace("physchem-rich", "physchem-full"))
    assert not ship.same_configuration(sweep, ablation.replace(" --descriptor-scaling quantile", ""))  # standard
    assert not ship.same_configuration(sweep, ablation.replace("--init pretrained", "--init random-init"))
    assert not ship.same_configuration(sweep, ablation + " --epochs 30")  # not MolCLR's protocol
    assert not ship.same_configuration(sweep, ablation.replace("rich:rdkit2d", "rich:rdkit2d molclr:rdkit2d"))
    assert not ship.same_configuration(sweep, "molssl finetune --csv x.csv")
    # without descriptors there is nothing to scale, whatever either script's default
    graph_only = ship.setting_of(ablation.replace("rich:rdkit2d", "rich:none").replace(" --descriptor-scaling quantile", ""))
    assert graph_only == ship.setting_of(sweep.replace("--features rdkit2d", "--features none"))


def test_pooled_forests_train_on_training_and_validation_molecules_and_go_on_fold_ensembles_cards(tmp_path, monkeypatch):
    """benchmarks/pooled_baselines.py: the fair forest for a fold ensemble, and only a fold ensemble's card gets it."""
    pooled = benchmark_script("pooled_baselines")
    split = pooled.Split(np.array([0, 1, 2]), np.array([3, 4]), np.array([5]))
    both = pooled.pooled(split)
    assert sorted(both.train) == [0, 1, 2, 3, 4] and list(both.valid) == [3, 4] and list(both.test) == [5]
    from molssl.chem.serve import zoo
    for name, folds in (("folded", ["0 of 5", "1 of 5"]), ("plain", None)):
        folder = tmp_path / name
        folder.mkdir()
        card = zoo.ModelCard(name=name, kind="property", title=name, description="", training_data="", date="",
                             commands=[], budget={"folds": folds} if folds else {}, baselines={"RF-ECFP4": 0.8})
        (folder / zoo.CARD_FILE).write_text(json.dumps(asdict(card)))
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    assert pooled.record_on_card("folded", "RF-ECFP4", 0.85)
    assert zoo.read_card(tmp_path / "folded").baselines == {"RF-ECFP4": 0.8, "RF-ECFP4 on training + validation": 0.85}
    assert not pooled.record_on_card("plain", "RF-ECFP4", 0.85)  # trained on the training split: the card's forest is fair
    assert zoo.read_card(tmp_path / "plain").baselines == {"RF-ECFP4": 0.8}
    assert not pooled.record_on_card("no-such-model", "RF-ECFP4", 0.85)


def test_a_reship_carries_the_pooled_forests_only_to_a_fold_ensemble(ship):
    card = {"baselines": {"RF-ECFP4": 0.869, "RF-ECFP4 on training + validation": 0.895, "chemprop v2": 0.698}}
    assert ship.carried_baselines(card, fold_ensemble=True) == card["baselines"]
    assert ship.carried_baselines(card, fold_ensemble=False) == {"RF-ECFP4": 0.869, "chemprop v2": 0.698}


def test_chemprop_fold_models_train_on_the_folds_and_are_scored_as_one_ensemble(tmp_path, monkeypatch):
    """pooled_baselines.py --methods chemprop: chemprop's counterpart of a fold ensemble, its members validated on
    their own scaffold fold and the test part untouched; the score is that of the mean of their test predictions."""
    from types import SimpleNamespace

    from molssl.chem.tasks import chemprop_baseline
    from molssl.chem.tasks.metrics import score

    pooled = benchmark_script("pooled_baselines")
    keys = np.array([0, 0, 1, 1, 2, 2, 3, 4, 5, 6])  # scaffold key per molecule
    labels = np.array([[0.0], [1.0], [0.0], [1.0], [0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
    data = SimpleNamespace(name="toy", metric="roc_auc", labels=labels, scaffold_keys=lambda chiral=False: keys)
    group = SimpleNamespace(name="all", task_index=[0])
    split = pooled.Split(np.arange(0, 6), np.array([6, 7]), np.array([8, 9]))
    seen = []

    def fake_chemprop(data_, task_index, fold_split, seed, out_dir, resume=False):
        seen.append((sorted(fold_split.train), sorted(fold_split.valid), list(fold_split.test), resume))
        return {"test_predictions": np.array([[0.9], [0.2]]) if len(seen) == 1 else np.array([[0.1], [0.6]])}

    monkeypatch.setattr(chemprop_baseline, "run_chemprop", fake_chemprop)
    value = pooled.chemprop_folds(data, group, split, 0, [0, 1], 4, tmp_path)
    assert len(seen) == 2 and all(test == [8, 9] and resume for *_, test, resume in seen)
    for train, valid, _, _ in seen:  # each fold: whole scaffold sets of the training + validation molecules
        assert sorted(train + valid) == list(range(8)) and not set(keys[train]) & set(keys[valid])
    assert seen[0][1] != seen[1][1]
    assert value == pytest.approx(score("roc_auc", labels[[8, 9]], np.array([[0.5], [0.4]])))
    assert value == 1.0  # the mean prediction ranks the active first; the members' mean score would be 0.5


def test_the_shipped_fold_ensemble_is_kept_or_exported_again_with_re_export(ship, tmp_path, monkeypatch, capsys):
    """--re-export: the rule's choice, when it is the shipped fold ensemble, is exported again (same runs), so that
    what the export writes beside the weights (calibration, card) is made anew; without it the model is kept."""
    _cv_runs(tmp_path / "cv", "lr-x0.3", [[0.66, 0.70, 0.68]])
    (candidate,) = ship.cv_candidates([tmp_path / "cv"], ["rich-rdkit2d-quantile"], "lipo")
    command = ship.run_command(candidate, "lipo", [0], "data", cv=candidate.folds[0, 0])
    shipped = tmp_path / "models" / "lipo"
    shipped.mkdir(parents=True)
    (shipped / ship.zoo.CARD_FILE).write_text("{}")
    monkeypatch.setattr(ship.zoo, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(ship.zoo, "read_card", lambda folder: type("Card", (), {"commands": [command]})())
    monkeypatch.setattr(ship, "one_scaffold_set", lambda run: False)  # these runs have no model files
    ship.ship("lipo", [], ["rich-rdkit2d-quantile"], 2, "data", True, cv_roots=[tmp_path / "cv"])
    out = capsys.readouterr().out
    assert "lipo: keeping the shipped model (already the fold ensemble" in out and "would export" not in out
    ship.ship("lipo", [], ["rich-rdkit2d-quantile"], 2, "data", True, cv_roots=[tmp_path / "cv"], again=True)
    out = capsys.readouterr().out
    runs = [candidate.folds[0, 0], candidate.folds[0, 1]]
    assert "lipo: exporting again the shipped model" in out and f"would export {runs[0]}, {runs[1]}" in out


def test_a_recorded_score_without_its_value_is_a_usage_error(ship, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["ship_zoo.py", "--models", "--cv", "runs/cv", "--incumbent-cv", "sider"])
    with pytest.raises(SystemExit) as exit_info:
        ship.main()
    assert exit_info.value.code == 2 and "--incumbent-cv takes NAME=SCORE" in capsys.readouterr().err


def test_re_export_without_cross_validation_runs_is_a_usage_error(ship, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["ship_zoo.py", "--models", "bace", "--re-export"])
    with pytest.raises(SystemExit) as stopped:
        ship.main()
    assert stopped.value.code == 2 and "--re-export exports a shipped fold ensemble again" in capsys.readouterr().err


def test_a_fold_of_one_scaffold_set_is_found_from_its_model_file_and_said_when_fine_tuning(ship, tmp_path):
    """The tiny runs' 10 scaffold sets outside the test split (10 molecules each): in 10 folds each fold is one set,
    in 5 folds two."""
    sys.path.insert(0, str(Path(__file__).parent / "chem" / "serve"))
    from tiny_models import finetune_run

    said: dict[int, list[str]] = {10: [], 5: []}
    alone = finetune_run(tmp_path / "ten", "regression", seeds=(0,), folds=10, fold=0, log=said[10].append)
    paired = finetune_run(tmp_path / "five", "regression", seeds=(0,), folds=5, fold=0, log=said[5].append)
    assert ship.one_scaffold_set(alone) and not ship.one_scaffold_set(paired)
    # fine-tuning says so itself
    assert any("fold 0 of 10 is one scaffold set (10 molecules)" in line for line in said[10])
    assert not any("one scaffold set" in line for line in said[5])
