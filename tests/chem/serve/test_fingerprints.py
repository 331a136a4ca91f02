"""Learned fingerprints and the scikit-learn transformer.

scikit-learn's ``check_estimator`` feeds numeric 2-D arrays; this transformer takes SMILES strings
(tags: ``string=True``, ``two_d_array=False``), so ``check_estimator`` itself runs only the checks
that do not need numeric input. The API checks that apply are run one by one below; the data
checks that feed numbers (fit/transform on random floats, sparse input, NaN/inf, dtypes, 2-D
shapes, n_features_in_) do not apply, and their SMILES counterparts are tested here instead:
pickling, cloning, idempotent fit, sample-order and subset (batch) invariance, pipelines, grid
search, read-only and object-dtype input.
"""
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks as checks
from typer.testing import CliRunner

from molssl.chem.serve.fingerprints import InvalidSmilesInput, MolecularFingerprint, fingerprint, load_encoder
from molssl.cli.main import app
from molssl.chem.serve.zoo import list_models
from tiny_models import encoder_file, labelled_molecules

SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1", "C/C=C/C", "[Na+].[Cl-]"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder_path(tmp_path_factory):
    return encoder_file(tmp_path_factory.mktemp("fp") / "encoder.pt")


def test_fingerprint_is_the_encoder_representation(encoder_path):
    from molssl.chem.data.sources import SmilesBatches

    out = fingerprint(SMILES, model=encoder_path)
    assert out.shape == (len(SMILES), 16) and out.dtype == np.float32
    encoder = load_encoder(encoder_path)
    _, batch = next(iter(SmilesBatches(SMILES, batch_size=64)))
    with torch.no_grad():
        expected = encoder.represent(batch).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fingerprint(SMILES, model=encoder_path, batch_size=2), out, rtol=1e-5, atol=1e-6)


def test_invalid_smiles_raise_listing_all_or_give_nan_rows(encoder_path):
    smiles = ["CCO", "C1CC(", "c1ccccc1", "", "Xx"]
    with pytest.raises(InvalidSmilesInput) as info:
        fingerprint(smiles, model=encoder_path)
    assert [i for i, _, _ in info.value.invalid] == [1, 3, 4]
    assert "'C1CC('" in str(info.value) and "errors='nan'" in str(info.value)
    out = fingerprint(smiles, model=encoder_path, errors="nan")
    assert np.isnan(out[[1, 3, 4]]).all() and np.isfinite(out[[0, 2]]).all()
    np.testing.assert_allclose(out[[0, 2]], fingerprint(["CCO", "c1ccccc1"], model=encoder_path), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="errors must be"):
        fingerprint(smiles, model=encoder_path, errors="ignore")
    with pytest.raises(ValueError, match="position 1 holds 3"):
        fingerprint(["CCO", 3], model=encoder_path)
    with pytest.raises(TypeError, match=r"not a list; the molecules come first: fingerprint\(molecules, model=\.\.\.\)"):
        fingerprint(str(encoder_path), ["CCO"])  # swapped: the encoder's path, then the molecules


def test_threads_are_restored(encoder_path):
    fingerprint(SMILES, model=encoder_path, threads=2)
    assert torch.get_num_threads() == 1


def test_transformer_api_checks_from_scikit_learn(encoder_path):
    est = MolecularFingerprint(model=str(encoder_path))
    results = checks.check_estimator(est, on_fail=None)
    assert {r["check_name"] for r in results if r["status"] == "passed"} >= {"check_estimator_cloneable"}
    assert not [r for r in results if r["status"] == "failed"]
    name = type(est).__name__
    for check in (checks.check_no_attributes_set_in_init, checks.check_get_params_invariance, checks.check_set_params,
                  checks.check_estimator_repr, checks.check_mixin_order, checks.check_valid_tag_types,
                  checks.check_do_not_raise_errors_in_init_or_set_params, checks.check_transformers_unfitted,
                  checks.check_parameters_default_constructible, checks.check_estimator_tags_renamed):
        check(name, est)


def test_transformer_fit_transform_clone_pickle(encoder_path):
    est = MolecularFingerprint(model=str(encoder_path), batch_size=2, n_threads=1)
    X = np.asarray(SMILES, dtype=object)
    out = est.fit_transform(X)
    np.testing.assert_allclose(out, fingerprint(SMILES, model=encoder_path), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.fit(X).transform(X), out, rtol=1e-6)  # idempotent fit
    order = np.random.default_rng(0).permutation(len(SMILES))
    np.testing.assert_allclose(est.transform(X[order]), out[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(X[:2]), out[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(pd.DataFrame({"smiles": SMILES})), out, rtol=1e-5, atol=1e-6)
    readonly = X.copy()
    readonly.setflags(write=False)
    np.testing.assert_allclose(est.transform(readonly), out, rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.transform(X), out, rtol=1e-6)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "encoder_")
    assert est.get_feature_names_out()[:2].tolist() == ["fp0", "fp1"]
    with pytest.raises(ValueError, match="batch_size"):
        MolecularFingerprint(model=str(encoder_path), batch_size=0).fit(X)


def test_pipeline_and_grid_search(encoder_path):
    data = labelled_molecules()
    X, y = data["smiles"].to_numpy(dtype=object), data["size"].to_numpy()
    pipe = Pipeline([("fp", MolecularFingerprint(model=str(encoder_path))), ("ridge", Ridge())])
    search = GridSearchCV(pipe, {"ridge__alpha": [0.1, 10.0]}, cv=2).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert search.best_params_["ridge__alpha"] == [0.1, 10.0][int(np.argmax(means))]
    features = fingerprint(X, model=encoder_path)
    manual = Ridge(alpha=search.best_params_["ridge__alpha"]).fit(features, y)
    np.testing.assert_allclose(search.predict(X[:3]), manual.predict(features[:3]), rtol=1e-4)


def test_cli_writes_npy_and_csv(encoder_path, tmp_path):
    smi = tmp_path / "mols.smi"
    smi.write_text("CCO ethanol\nC1CC( bad\nc1ccccc1 benzene\n")
    runner = CliRunner()
    result = runner.invoke(app, ["fingerprint", "--input", str(smi), "--output", str(tmp_path / "fps.npy"),
                                 "--model", str(encoder_path)])
    assert result.exit_code == 0, result.output
    array = np.load(tmp_path / "fps.npy")
    assert array.shape == (3, 16) and np.isnan(array[1]).all()
    result = runner.invoke(app, ["fingerprint", "--input", str(smi), "--output", str(tmp_path / "fps.csv"),
                                 "--model", str(encoder_path)])
    table = pd.read_csv(tmp_path / "fps.csv")
    assert table["name"].tolist() == ["ethanol", "bad", "benzene"] and table.shape == (3, 2 + 1 + 16)
    np.testing.assert_allclose(table[[f"fp{i}" for i in range(16)]].to_numpy(), array, rtol=1e-5)
    result = runner.invoke(app, ["fingerprint", "--input", str(smi), "--output", str(tmp_path / "fps.npy"),
                                 "--model", str(encoder_path), "--errors", "raise"])
    assert result.exit_code == 2 and "C1CC(" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["fingerprint", "--smiles", "CCO", "--output", str(tmp_path / "fps.txt"),
                                 "--model", str(encoder_path)])
    assert result.exit_code != 0 and ".npy" in result.output


@pytest.mark.parametrize("name", [None, "molclr-gin-mix"])  # None: the default, rich-gin-physchem
def test_shipped_encoder(name):
    if (name or "rich-gin-physchem") not in {c.name for c in list_models()}:
        pytest.skip("shipped encoder not present")
    out = fingerprint(SMILES) if name is None else fingerprint(SMILES, model=name)
    assert out.shape == (len(SMILES), 512) and np.isfinite(out).all()
    cosine = out @ out.T / np.outer(np.linalg.norm(out, axis=1), np.linalg.norm(out, axis=1))
    assert cosine[0, 1] < 0.9999  # distinct molecules get distinct fingerprints


def test_mol_objects_and_series_are_accepted(encoder_path):
    from rdkit import Chem

    expected = fingerprint(SMILES, model=encoder_path)
    mols = [Chem.MolFromSmiles(s) for s in SMILES]
    np.testing.assert_allclose(fingerprint(mols, model=encoder_path), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fingerprint(pd.Series(mols, index=range(10, 16)), model=encoder_path), expected,
                               rtol=1e-5, atol=1e-6)
    est = MolecularFingerprint(model=str(encoder_path)).fit(mols)
    np.testing.assert_allclose(est.transform(mols), expected, rtol=1e-5, atol=1e-6)


def test_cli_output_checks_and_names(encoder_path, tmp_path, monkeypatch):
    import molssl.cli.fingerprint as cli_fingerprint

    runner = CliRunner()
    out = tmp_path / "out" / "FPU.NPY"
    result = runner.invoke(app, ["fingerprint", "-s", "CCO", "c1ccccc1", "-o", str(out), "-m", str(encoder_path)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not (tmp_path / "out" / "FPU.NPY.npy").exists() and str(out) in result.output
    assert np.load(out).shape == (2, 16)
    result = runner.invoke(app, ["fingerprint", "-s", "C1CC(", "CCO", "-o", str(out), "-m", str(encoder_path),
                                 "--errors", "raise"])
    assert result.exit_code == 2 and "--errors nan" in result.output and "errors='nan'" not in result.output
    monkeypatch.setattr(cli_fingerprint, "parquet_available", lambda: False)
    result = runner.invoke(app, ["fingerprint", "-s", "CCO", "-o", str(tmp_path / "f.parquet"), "-m", "no-such-model"])
    assert result.exit_code == 2 and "pyarrow" in result.output  # said before the model is even looked up
    result = runner.invoke(app, ["fingerprint", "-s", "CCO", "-o", str(tmp_path), "-m", str(encoder_path)])
    assert result.exit_code == 2 and "is a folder" in result.output
    taken = tmp_path / "taken.csv"
    taken.write_text("smiles,status\nCCO,mine\n")
    result = runner.invoke(app, ["fingerprint", "-i", str(taken), "-o", str(tmp_path / "f.csv"), "-m", str(encoder_path)])
    assert result.exit_code == 2 and "already has column(s) status" in result.output


def test_cli_reads_sd_files_and_stdin(encoder_path, tmp_path):
    from rdkit import Chem

    sdf = tmp_path / "m.sdf"
    writer = Chem.SDWriter(str(sdf))
    for i, smiles in enumerate(["CCO", "c1ccccc1"]):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", f"m{i}")
        writer.write(mol)
    writer.close()
    runner = CliRunner()
    result = runner.invoke(app, ["fingerprint", "-i", str(sdf), "-o", str(tmp_path / "f.csv"), "-m", str(encoder_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "f.csv")
    assert table["name"].tolist() == ["m0", "m1"] and table["status"].tolist() == ["ok", "ok"]
    expected = fingerprint(["CCO", "c1ccccc1"], model=encoder_path, precision="auto")  # the CLI default
    np.testing.assert_allclose(table[[f"fp{i}" for i in range(16)]].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    result = runner.invoke(app, ["fingerprint", "-i", "-", "-o", str(tmp_path / "s.npy"), "-m", str(encoder_path)],
                           input="CCO\nc1ccccc1\n")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), expected, rtol=1e-5, atol=1e-6)
