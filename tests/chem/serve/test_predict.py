import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from molssl.chem.data import sources
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
    table = Predictor([runs["regression"]]).predict_smiles(INPUTS)
    assert table["smiles"].tolist() == INPUTS
    assert table["status"].tolist() == ["ok", "invalid: RDKit cannot parse this SMILES", "ok", "invalid: empty SMILES",
                                        "ok"]
    value, std = "run_regression:size [Å]", "run_regression:size std [Å]"
    assert list(table.columns) == ["smiles", value, std, "status"]
    ok = table["status"] == "ok"
    assert table.loc[ok, value].notna().all() and table.loc[~ok, value].isna().all()
    assert (table.loc[ok, std] > 0).all()


def test_ensemble_is_mean_and_std_of_members(runs):
    members = [load_property_model(p) for p in sorted(runs["regression"].rglob("model.pt"))]
    each = np.stack([member_predict(m, INPUTS)[0][:, 0] for m in members])
    table = Predictor([PropertyEnsemble("e", members)]).predict_smiles(INPUTS)
    np.testing.assert_allclose(table["e:size [Å]"], each.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["e:size std [Å]"], each.std(0), rtol=1e-4, atol=1e-6)


def test_several_models_into_one_table_single_model_has_no_std(runs):
    single = next(runs["classification"].rglob("model.pt"))
    table = Predictor([runs["regression"], single], batch_size=2).predict_smiles(INPUTS)
    assert "labelled:has_o" in table.columns and "labelled:has_o std" not in table.columns
    probabilities = table["labelled:has_o"].dropna()
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


def test_large_file_path_through_store_matches_in_memory(runs, tmp_path, monkeypatch):
    csv = tmp_path / "big.csv"
    pd.DataFrame({"smiles": INPUTS * 3}).to_csv(csv, index=False)
    small = Predictor([runs["regression"]]).predict_file(csv)
    monkeypatch.setattr(sources, "IN_MEMORY_LIMIT", 4)
    large = Predictor([runs["regression"]]).predict_file(csv, cache_dir=str(tmp_path / "cache"))
    assert (tmp_path / "cache").is_dir()
    pd.testing.assert_frame_equal(small, large, rtol=1e-5)


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


def test_cli_prints_table_and_writes_csv(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["predict", "--model", str(runs["regression"]), "--smiles", "CCO", "C1CC(", "c1ccccc1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "run_regression:size [Å]" in lines[0] and len(lines) == 4
    assert "invalid: RDKit cannot parse this SMILES" in lines[2]
    out = tmp_path / "preds.csv"
    csv = tmp_path / "in.csv"
    pd.DataFrame({"mol": INPUTS}).to_csv(csv, index=False)
    result = runner.invoke(app, ["predict", "-m", str(runs["regression"]), "--input", str(csv), "--smiles-column",
                                 "mol", "--output", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, keep_default_na=False)
    assert written["mol"].tolist() == INPUTS and len(written.columns) == 4


def test_cli_needs_input_or_smiles(runs):
    result = CliRunner().invoke(app, ["predict", "--model", str(runs["regression"])])
    assert result.exit_code != 0 and "--smiles" in result.output


@pytest.mark.skipif(not any(c.name == "esol" for c in list_models()), reason="shipped models not present")
def test_shipped_models_predict_known_trends():
    table = predict_module.predict(["OCC(O)CO", "Clc1c(Cl)c(Cl)c(Cl)c(Cl)c1Cl", "not a smiles"], model=["esol", "bbbp"])
    logs = [c for c in table.columns if c.startswith("esol:") and " std" not in c][0]
    assert table[logs][0] > table[logs][1] + 2  # glycerol is far more water-soluble than hexachlorobenzene
    assert table["status"][2].startswith("invalid")
    assert any(c.startswith("esol:") and " std" in c for c in table.columns)
