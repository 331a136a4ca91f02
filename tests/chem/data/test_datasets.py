"""MoleculeNet registry, file resolution, download (offline, via file:// URLs), loaders and CLI."""
from __future__ import annotations

import gzip
import hashlib
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from molssl.chem.data import datasets
from molssl.chem.data.datasets import REGISTRY, ChecksumError, DatasetNotFound, file_md5, find_local, normalised_md5
from molssl.chem.data.labelled import load_csv, load_dataset
from molssl.cli.data import app
from molssl.errors import MolsslError

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "moleculenet"  # beside the repo
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="reference MoleculeNet copies absent")

FIXTURE = "smiles,p_np,extra\nCCO,1,a\nc1ccccc1,0,b\nCC(=O)O,,c\nnot_a_smiles,1,d\n"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the real cache, data folder or network mirror."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MOLSSL_DATA_DIR", raising=False)
    monkeypatch.delenv("MOLSSL_DATA_URL", raising=False)


def write(path: Path, text: str, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def fake_bbbp_spec(monkeypatch, md5: str | None) -> None:
    spec = REGISTRY["bbbp"]
    fake = datasets.DatasetSpec(spec.name, spec.title, spec.file_name, md5, "smiles", ("p_np",), 1,
                                4, "classification", "roc_auc")
    monkeypatch.setitem(REGISTRY, "bbbp", fake)


# --- registry ----------------------------------------------------------------------------------

def test_registry_covers_molclr_sets_with_consistent_metrics():
    assert list(REGISTRY) == ["bbbp", "tox21", "clintox", "hiv", "bace", "sider", "muv", "toxcast",
                              "freesolv", "esol", "lipo", "qm7", "qm8", "qm9"]
    for spec in REGISTRY.values():
        expected = {"classification": {"roc_auc"}, "regression": {"rmse", "mae"}}[spec.task_type]
        assert spec.metric in expected
        assert spec.tasks is None or len(spec.tasks) == spec.n_tasks
        assert spec.url == datasets.BASE_URL + spec.file_name
    assert {s.name for s in REGISTRY.values() if s.metric == "mae"} == {"qm7", "qm8", "qm9"}
    assert REGISTRY["bace"].smiles_column == "mol" and REGISTRY["bace"].tasks == ("Class",)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="known: bbbp, tox21"):
        datasets.get_spec("nope")


@needs_shared
@pytest.mark.parametrize("name", list(REGISTRY))
def test_registry_columns_match_real_headers(name):
    spec = REGISTRY[name]
    header = list(pd.read_csv(find_local(name, SHARED), nrows=0).columns)
    assert spec.smiles_column in header
    tasks = spec.tasks or [c for c in header if c != spec.smiles_column]
    assert set(tasks) <= set(header) and len(tasks) == spec.n_tasks


@needs_shared
@pytest.mark.parametrize("name", [n for n, s in REGISTRY.items() if s.md5 and s.n_molecules < 50000])
def test_registry_checksums_match_reference_copies(name):
    assert file_md5(find_local(name, SHARED)) == REGISTRY[name].md5


# --- checksums ---------------------------------------------------------------------------------

def test_normalised_md5_ignores_line_endings_blank_lines_and_compression(tmp_path):
    text = "a,b\n1,2\n3,4\n"
    expected = hashlib.md5(text.encode()).hexdigest()
    assert normalised_md5(b"a,b\r\n1,2\r\n\r\n3,4") == expected
    assert normalised_md5(b"a,b\r1,2\r3,4\r") == expected
    assert file_md5(write(tmp_path / "x.csv.gz", "a,b\r\n1,2\n3,4\n", compress=True)) == expected
    assert normalised_md5(b"a,b\n1,2\n3,5\n") != expected


# --- resolution --------------------------------------------------------------------------------

def test_resolution_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    cache = write(datasets.cache_dir() / "BBBP.csv", FIXTURE)
    assert find_local("bbbp") == cache
    env = write(tmp_path / "env" / "BBBP.csv.gz", FIXTURE, compress=True)
    monkeypatch.setenv("MOLSSL_DATA_DIR", str(env.parent))
    assert find_local("bbbp") == env
    explicit = write(tmp_path / "explicit" / "BBBP.csv", FIXTURE)
    assert find_local("bbbp", explicit.parent) == explicit
    assert find_local("bbbp", tmp_path / "empty") == env  # falls through an empty folder


def test_missing_without_download_names_the_folders(tmp_path):
    with pytest.raises(DatasetNotFound, match="BBBP not found in .*empty"):
        datasets.resolve("bbbp", tmp_path / "empty", download=False)


# --- download (no network: file:// URLs and a failing opener) -----------------------------------

def test_fetch_downloads_verifies_and_loads_from_cache(tmp_path, monkeypatch):
    mirror = write(tmp_path / "mirror" / "BBBP.csv", FIXTURE.replace("\n", "\r\n"))
    monkeypatch.setenv("MOLSSL_DATA_URL", mirror.parent.as_uri())
    fake_bbbp_spec(monkeypatch, normalised_md5(FIXTURE.encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified download loads without any warning
        data = load_dataset("bbbp")  # not found locally -> downloaded into the cache
    assert find_local("bbbp") == datasets.cache_dir() / "BBBP.csv"
    assert data.smiles[:2] == ["CCO", "c1ccccc1"] and len(data) == 3 and len(data.invalid) == 1
    assert list(datasets.cache_dir().iterdir()) == [datasets.cache_dir() / "BBBP.csv"]


def test_fetch_rejects_checksum_mismatch_and_keeps_nothing(tmp_path, monkeypatch):
    mirror = write(tmp_path / "mirror" / "BBBP.csv", FIXTURE)
    monkeypatch.setenv("MOLSSL_DATA_URL", mirror.parent.as_uri())
    fake_bbbp_spec(monkeypatch, "0" * 32)
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="expected 0000"):
        datasets.fetch("bbbp", dest)
    assert list(dest.iterdir()) == []


def test_offline_download_gives_one_clear_sentence(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetNotFound) as info:
        load_dataset("bace")
    message = str(info.value)
    assert "could not download BACE from https://deepchemdata" in message
    assert "--data-dir" in message and "MOLSSL_DATA_DIR" in message and message.count(". ") == 0
    assert not any(datasets.cache_dir().glob("*"))


def test_local_copy_with_other_content_loads_with_warning(tmp_path, monkeypatch):
    fake_bbbp_spec(monkeypatch, "0" * 32)
    write(tmp_path / "BBBP.csv", FIXTURE)
    with pytest.warns(UserWarning, match="differs from the registry"):
        assert len(load_dataset("bbbp", tmp_path)) == 3  # and the unparsable row is listed, not loaded


# --- loading -----------------------------------------------------------------------------------

@needs_shared
def test_load_bbbp_real_file():
    data = load_dataset("bbbp", SHARED)
    # MolCLR drops the 11 SMILES RDKit cannot parse; they are listed (data row, SMILES, reason), never lost
    assert len(data) == 2039 and len(data.invalid) == 11 and data.tasks == ["p_np"] and data.labels.shape == (2039, 1)
    assert data.smiles[0] == "[Cl].CC(C)NCC(O)COc1cccc2ccccc12" and data.labels[0, 0] == 1.0
    invalid_rows = {row for row, _, _ in data.invalid}
    assert not set(data.rows) & invalid_rows and sorted(set(data.rows) | invalid_rows) == list(range(2050))
    raw = pd.read_csv(SHARED / "BBBP.csv.gz")
    assert [data.smiles[i] for i in range(5)] == [raw["smiles"][r] for r in data.rows[:5]]
    assert all(raw["smiles"][row] == smi for row, smi, _ in data.invalid)


def test_missing_labels_stay_nan_and_rows_track_file_positions(tmp_path):
    data = load_csv(write(tmp_path / "mine.csv.gz", FIXTURE, compress=True), "smiles", "p_np",
                    "classification")
    assert data.name == "mine" and data.metric == "roc_auc"
    assert np.isnan(data.labels[2, 0]) and data.labels[:, 0].tolist()[:2] == [1.0, 0.0]
    assert data.rows.tolist() == [0, 1, 2] and data.invalid == [(3, "not_a_smiles", "RDKit cannot parse this SMILES")]
    assert data.smiles == ["CCO", "c1ccccc1", "CC(=O)O"]


def test_load_csv_missing_column_lists_available(tmp_path):
    path = write(tmp_path / "mine.csv", FIXTURE)
    with pytest.raises(MolsslError, match=r"no column\(s\) 'logS'; its columns are: smiles, p_np, extra"):
        load_csv(path, "smiles", ["logS"], "regression")


def test_load_csv_non_numeric_label_names_row_and_value(tmp_path):
    path = write(tmp_path / "mine.csv", FIXTURE)
    with pytest.raises(MolsslError, match=r"mine.csv: line 2: column 'extra' holds 'a', which is not a number"):
        load_csv(path, "smiles", ["extra"], "regression")


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e999"])
def test_load_csv_rejects_infinite_labels_naming_the_line(tmp_path, cell):
    path = write(tmp_path / "mine.csv", f"smiles,y\nCCO,1.5\nCCC,{cell}\n")
    with pytest.raises(MolsslError, match=rf"line 3: column 'y' holds '{cell}'; labels must be finite"):
        load_csv(path, "smiles", "y", "regression")


def test_load_csv_classification_rejects_non_binary(tmp_path):
    path = write(tmp_path / "mine.csv", "smiles,y\nCCO,0\nCCC,2\n")
    with pytest.raises(MolsslError, match=r"\.csv: line 3: column 'y' holds 2, which is not a class label"):
        load_csv(path, "smiles", "y", "classification")
    assert load_csv(path, "smiles", "y", "regression", metric="mae").labels[:, 0].tolist() == [0, 2]


def test_load_csv_rejects_bad_task_and_metric(tmp_path):
    path = write(tmp_path / "mine.csv", FIXTURE)
    with pytest.raises(MolsslError, match="task must be"):
        load_csv(path, "smiles", "p_np", "ranking")
    with pytest.raises(MolsslError, match="does not fit a classification task"):
        load_csv(path, "smiles", "p_np", "classification", metric="rmse")
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_csv(tmp_path / "absent.csv", "smiles", "p_np", "classification")


# --- CLI ---------------------------------------------------------------------------------------

def test_cli_list_and_path(tmp_path):
    write(tmp_path / "bace.csv.gz", "mol,Class\nCCO,1\n", compress=True)
    runner = CliRunner()
    listing = runner.invoke(app, ["list", "--data-dir", str(tmp_path)])
    assert listing.exit_code == 0
    lines = {line.split()[0]: line.split() for line in listing.output.splitlines()}
    assert lines["bace"] == ["bace", "BACE", "classification", "roc_auc", "1", "1513",
                             str(tmp_path / "bace.csv.gz")]
    assert " ".join(lines["qm9"][6:]) == "not found (downloads on use)"
    found = runner.invoke(app, ["path", "bace", "--data-dir", str(tmp_path)])
    assert found.exit_code == 0 and found.output.strip() == str(tmp_path / "bace.csv.gz")
    missing = runner.invoke(app, ["path", "qm9", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "QM9 not found" in missing.output


def test_cli_fetch_offline_and_from_mirror(tmp_path, monkeypatch):
    runner = CliRunner()
    mirror = write(tmp_path / "mirror" / "BBBP.csv", FIXTURE)
    monkeypatch.setenv("MOLSSL_DATA_URL", mirror.parent.as_uri())
    fake_bbbp_spec(monkeypatch, normalised_md5(FIXTURE.encode()))
    ok = runner.invoke(app, ["fetch", "bbbp", "--data-dir", str(tmp_path / "dest")])
    assert ok.exit_code == 0 and (tmp_path / "dest" / "BBBP.csv").read_text() == FIXTURE

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    failed = runner.invoke(app, ["fetch", "all", "--data-dir", str(tmp_path / "dest")])
    assert failed.exit_code == 2  # one line per data set, exit code 2 as every failed command
    assert "bbbp: " + str(tmp_path / "dest" / "BBBP.csv") in failed.output  # already there
    assert "tox21: error: could not download Tox21" in failed.output
