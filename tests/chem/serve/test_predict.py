import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import molssl
from molssl.chem.serve import predict as predict_module
from molssl.chem.serve.loading import load_property_model
from molssl.chem.serve.predict import predict_member as member_predict
from molssl.chem.data.sources import SmilesBatches
from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.serve.predict import Predictor, load_model
from molssl.cli.main import app
from molssl.chem.serve.zoo import list_models
from molssl.errors import MolsslError
from tiny_models import finetune_run

INPUTS = ["CCO", "C1CC(", "c1ccccc1", "", "CC(=O)Oc1ccccc1C(=O)O"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    return {"regression": finetune_run(folder, "regression", seeds=(0, 1)),
            "classification": finetune_run(folder, "classification", seeds=(0,))}


def test_rows_kept_in_order_with_status_and_std(runs):
    table = Predictor([runs["regression"]], domain=False, coverage=None).predict_smiles(INPUTS)
    assert table["smiles"].tolist() == INPUTS
    assert table["status"].tolist() == ["ok", "invalid: RDKit cannot parse this SMILES", "ok", "invalid: empty SMILES",
                                        "ok"]
    value, std = "run_regression", "run_regression_std"
    assert list(table.columns) == ["smiles", value, std, "status"]
    ok = table["status"] == "ok"
    assert table.loc[ok, value].notna().all() and table.loc[~ok, value].isna().all()
    assert (table.loc[ok, std] > 0).all()


def test_plain_column_names_with_intervals_and_domain(runs):
    table = Predictor([runs["regression"]], nearest=True).predict_smiles(INPUTS)
    assert list(table.columns) == ["smiles", "run_regression", "run_regression_std", "run_regression_lower",
                                   "run_regression_upper", "run_regression_nearest_similarity",
                                   "run_regression_in_domain", "run_regression_nearest_smiles",
                                   "run_regression_nearest_row", "run_regression_domain_note", "status"]
    ok = table["status"] == "ok"
    assert (table.loc[ok, "run_regression_lower"] < table.loc[ok, "run_regression"]).all()
    assert (table.loc[ok, "run_regression_upper"] > table.loc[ok, "run_regression"]).all()
    assert table.loc[~ok, "run_regression_in_domain"].isna().all()
    assert table.loc[ok, "run_regression_nearest_smiles"].str.len().gt(0).all()


def test_non_finite_predictions_are_a_row_status(runs, monkeypatch):
    predictor = Predictor([runs["regression"]], domain=False)
    model = predictor.models[0]
    real = model.predict_batch

    def broken(batch):
        mean, std = real(batch)
        mean[0] = np.inf
        return mean, std

    monkeypatch.setattr(model, "predict_batch", broken)
    table = predictor.predict_smiles(["CCO", "c1ccccc1"])
    assert table["status"].tolist() == ["invalid: non-finite prediction from model run_regression", "ok"]
    assert np.isnan(table["run_regression"][0]) and np.isfinite(table["run_regression"][1])


def test_mol_objects_series_and_dataframes_keep_their_index(runs):
    from rdkit import Chem

    mols = [Chem.MolFromSmiles("CCO"), Chem.MolFromSmiles("c1ccccc1")]
    from_mols = predict_module.predict(mols, model=runs["regression"], domain=False)
    from_text = predict_module.predict(["CCO", "c1ccccc1"], model=runs["regression"], domain=False)
    assert from_mols["status"].tolist() == ["ok", "ok"] and from_mols["smiles"].tolist() == ["CCO", "c1ccccc1"]
    np.testing.assert_allclose(from_mols["run_regression"], from_text["run_regression"])
    series = pd.Series(["CCO", mols[1], None], index=["a", "b", "c"])
    table = predict_module.predict(series, model=runs["regression"], domain=False)
    assert table.index.tolist() == ["a", "b", "c"] and table["status"].tolist() == ["ok", "ok", "invalid: empty SMILES"]
    frame = pd.DataFrame({"id": [7, 8], "SMILES": ["CCO", "C1CC("]}, index=[10, 10])
    table = predict_module.predict(frame, model=runs["regression"], domain=False)
    assert table.index.tolist() == [10, 10] and table["id"].tolist() == [7, 8]
    assert table["status"].tolist() == ["ok", "invalid: RDKit cannot parse this SMILES"]
    with pytest.raises(MolsslError, match="already has column"):
        predict_module.predict(pd.DataFrame({"smiles": ["CCO"], "status": ["x"]}), model=runs["regression"])


def test_ensemble_is_mean_and_std_of_members(runs):
    members = [load_property_model(p) for p in sorted(runs["regression"].rglob("model.pt"))]
    each = np.stack([member_predict(m, INPUTS)[0][:, 0] for m in members])
    table = Predictor([PropertyEnsemble("e", members)]).predict_smiles(INPUTS)
    np.testing.assert_allclose(table["e"], each.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["e_std"], each.std(0), rtol=1e-4, atol=1e-6)


def test_several_models_into_one_table_single_model_has_no_std(runs):
    single = next(runs["classification"].rglob("model.pt"))
    table = Predictor([runs["regression"], single], batch_size=2).predict_smiles(INPUTS)
    assert "labelled" in table.columns and "labelled_std" not in table.columns
    probabilities = table["labelled"].dropna()
    assert len(probabilities) == 3 and ((probabilities > 0) & (probabilities < 1)).all()
    one_batch = Predictor([runs["regression"], single], batch_size=256).predict_smiles(INPUTS)
    pd.testing.assert_frame_equal(table, one_batch, rtol=1e-5)


def test_same_name_twice_is_refused(runs):
    with pytest.raises(MolsslError, match="same name"):
        Predictor([runs["regression"], runs["regression"]])


def test_csv_and_smi_inputs_keep_all_rows_and_columns(runs, tmp_path):
    csv = tmp_path / "mols.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "SMILES": INPUTS}).to_csv(csv, index=False)
    table = Predictor([runs["regression"]]).predict_file(csv)
    assert table["id"].tolist() == ["a", "b", "c", "d", "e"] and table["SMILES"].tolist() == INPUTS
    smi = tmp_path / "mols.smi"
    smi.write_text("smiles\nCCO ethanol\n\nC1CC( broken one\nc1ccccc1\n")
    table = Predictor([runs["regression"]]).predict_file(smi)
    assert table["name"].tolist() == ["ethanol", "broken one", ""]
    assert table["status"].str.startswith("invalid").tolist() == [False, True, False]


def test_files_are_read_in_chunks_with_the_same_result(runs, tmp_path, monkeypatch):
    csv = tmp_path / "big.csv"
    pd.DataFrame({"smiles": INPUTS * 3}).to_csv(csv, index=False)
    whole = Predictor([runs["regression"]]).predict_file(csv)
    monkeypatch.setattr(predict_module, "CHUNK_ROWS", 4)
    chunked = Predictor([runs["regression"]]).predict_file(csv)
    assert chunked.index.tolist() == list(range(15))
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-5)


def test_parallel_featurization_gives_the_same_batches():
    smiles = INPUTS * 5
    serial = SmilesBatches(smiles, batch_size=4, chunk_size=3)
    parallel = SmilesBatches(smiles, batch_size=4, chunk_size=3, workers=2)
    rows_a = np.concatenate([rows for rows, _ in serial])
    rows_b = np.concatenate([rows for rows, _ in parallel])
    assert rows_a.tolist() == rows_b.tolist() == [i for i, s in enumerate(smiles) if s in ("CCO", "c1ccccc1",
                                                                                          INPUTS[-1])]
    assert serial.status == parallel.status


def test_unknown_model_names_the_shipped_ones():
    with pytest.raises(MolsslError, match="no shipped model named 'nope'"):
        load_model("nope")


@pytest.mark.parametrize("spec", ["runs/missing", "missing/model.pt", "model.pt"])
def test_a_missing_path_is_called_a_missing_path(spec):
    with pytest.raises(MolsslError, match=rf"^{spec}: no such file or directory \(nor a shipped model: .*esol"):
        load_model(spec)


def test_model_and_molecules_swapped_says_so():
    """predict("esol", [...]) would look for a model named after the first SMILES."""
    with pytest.raises(MolsslError, match=r"molecules first and the model second: predict\(molecules, model='esol'\)"):
        molssl.predict("esol", ["CCO", "CCN"])


def test_cli_prints_a_table_on_a_terminal_and_writes_csv(runs, tmp_path, monkeypatch):
    import molssl.cli.predict as cli_predict

    runner = CliRunner()
    monkeypatch.setattr(cli_predict, "stdout_is_terminal", lambda: True)
    result = runner.invoke(app, ["predict", "--model", str(runs["regression"]), "--smiles", "CCO", "C1CC(", "c1ccccc1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["smiles", "run_regression"] and len(lines) == 4
    assert "invalid: RDKit cannot parse this SMILES" in lines[2]
    out = tmp_path / "preds.csv"
    csv = tmp_path / "in.csv"
    pd.DataFrame({"mol": INPUTS}).to_csv(csv, index=False)
    result = runner.invoke(app, ["predict", "-m", str(runs["regression"]), "--input", str(csv), "--smiles-column",
                                 "mol", "--output", str(out), "--no-domain", "--coverage", "0"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, keep_default_na=False)
    assert written["mol"].tolist() == INPUTS and list(written.columns) == ["mol", "run_regression",
                                                                            "run_regression_std", "status"]
    sidecar = json.loads((tmp_path / "preds.csv.json").read_text())
    assert sidecar["complete"] and sidecar["rows"] == 5 and sidecar["columns"]["run_regression"]["units"] == "Å"


def test_stdout_csv_is_parseable_and_list_options_take_several_values(runs):
    single = next(runs["classification"].rglob("model.pt"))
    result = CliRunner().invoke(app, ["predict", "-m", str(runs["regression"]), str(single), "-s", "CCO", "c1ccccc1",
                                      "C1CC("])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table["smiles"].tolist() == ["CCO", "c1ccccc1", "C1CC("]
    assert {"run_regression", "run_regression_lower", "labelled", "labelled_in_domain"} <= set(table.columns)
    assert table["status"].tolist()[:2] == ["ok", "ok"]


def test_help_and_version():
    runner = CliRunner()
    for args in (["-h"], ["predict", "-h"], ["fingerprint", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "--help" in result.output, args
    assert "--coverage" in runner.invoke(app, ["predict", "-h"]).output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"molssl {molssl.__version__}"


def test_cli_needs_input_or_smiles(runs):
    result = CliRunner().invoke(app, ["predict", "--model", str(runs["regression"])])
    assert result.exit_code != 0 and "--smiles" in result.output


@pytest.mark.skipif(not any(c.name == "esol" for c in list_models()), reason="shipped models not present")
def test_shipped_models_predict_known_trends():
    table = predict_module.predict(["OCC(O)CO", "Clc1c(Cl)c(Cl)c(Cl)c(Cl)c1Cl", "not a smiles"], model=["esol", "bbbp"])
    assert table["esol"][0] > table["esol"][1] + 2  # glycerol is far more water-soluble than hexachlorobenzene
    assert table["status"][2].startswith("invalid")
    assert {"esol_std", "bbbp"} <= set(table.columns)  # shipped files made before calibration: no intervals
