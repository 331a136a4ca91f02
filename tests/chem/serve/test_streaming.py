"""`molssl predict` end to end: SD files in and out, stdin, streamed output that survives a kill and resumes,
and outputs checked before any work starts."""
import io
import json
import os

import pandas as pd
import pytest
from rdkit import Chem
from typer.testing import CliRunner

from molssl.chem.serve import predict as predict_module
from molssl.chem.serve import streaming
from molssl.cli.main import app
from sdf_helpers import sd_text
from tiny_models import finetune_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN", "C1CC(", "CCCl", "c1ccncc1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return str(finetune_run(tmp_path_factory.mktemp("stream"), "regression", seeds=(0, 1)))


def invoke(*args, input=None):
    return CliRunner().invoke(app, ["predict", *map(str, args)], input=input)


def write_sdf(path, broken: int = 1):
    """Three records with names and an ID property; record ``broken`` has an element RDKit does not know."""
    path.write_text(sd_text(broken))
    return path


def test_sdf_round_trip_keeps_names_properties_and_a_broken_record(run, tmp_path):
    out = tmp_path / "out.sdf"
    result = invoke("-m", run, "-i", write_sdf(tmp_path / "in.sdf"), "-o", out)
    assert result.exit_code == 0, result.output
    records = list(Chem.SDMolSupplier(str(out)))
    assert [r.GetProp("_Name") for r in records] == ["mol0", "mol1", "mol2"]
    assert [r.GetProp("ID") for r in records] == ["A0", "A1", "A2"]
    assert [Chem.MolToSmiles(r) for r in records] == ["CCO", "", "CC(=O)O"]
    status = [r.GetProp("status") for r in records]
    assert status[0] == status[2] == "ok" and status[1].startswith("invalid: RDKit cannot read this SD record (line ")
    assert float(records[0].GetProp("run_regression_lower")) < float(records[0].GetProp("run_regression"))
    assert not records[1].HasProp("run_regression")
    as_csv = tmp_path / "out.csv"
    assert invoke("-m", run, "-i", tmp_path / "in.sdf", "-o", as_csv).exit_code == 0
    table = pd.read_csv(as_csv, keep_default_na=False)
    assert table.columns[:3].tolist() == ["name", "smiles", "ID"] and table["ID"].tolist() == ["A0", "A1", "A2"]


def test_stdin_takes_smiles_lines_or_csv(run):
    lines = invoke("-m", run, "-i", "-", "--no-domain", input="CCO ethanol\n\nc1ccccc1\n")
    assert lines.exit_code == 0, lines.output
    table = pd.read_csv(io.StringIO(lines.stdout), keep_default_na=False)
    assert table["smiles"].tolist() == ["CCO", "c1ccccc1"] and table["name"].tolist() == ["ethanol", ""]
    csv = invoke("-m", run, "-i", "-", input="id,SMILES\n1,CCO\n2,C1CC(\n")
    table = pd.read_csv(io.StringIO(csv.stdout))
    assert table["id"].tolist() == [1, 2] and table["status"].tolist()[1].startswith("invalid")


def test_a_killed_run_leaves_a_valid_prefix_and_resumes(run, tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(SMILES)), "smiles": SMILES}).to_csv(source, index=False)
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 2)
    whole = tmp_path / "whole.csv"
    assert invoke("-m", run, "-i", source, "-o", whole).exit_code == 0
    out = tmp_path / "preds.csv"
    real, calls = predict_module.Predictor.predict_chunk, []

    def dies_on_third_chunk(self, chunk):
        calls.append(chunk.start)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is stopped half way
        return real(self, chunk)

    monkeypatch.setattr(predict_module.Predictor, "predict_chunk", dies_on_third_chunk)
    stopped = invoke("-m", run, "-i", source, "-o", out)
    assert stopped.exit_code != 0 and "--resume" in stopped.output
    partial, sidecar = tmp_path / "preds.partial.csv", tmp_path / "preds.csv.json"
    assert not out.exists() and partial.is_file()
    state = json.loads(sidecar.read_text())
    assert state["complete"] is False and state["rows"] == 4
    prefix = pd.read_csv(partial)
    assert prefix["id"].tolist() == [0, 1, 2, 3]  # a valid CSV of the rows done
    with open(partial, "a") as handle:
        handle.write("4,C1CC(,2.3")  # a kill in the middle of writing the next chunk
    monkeypatch.setattr(predict_module.Predictor, "predict_chunk", real)
    again = invoke("-m", run, "-i", source, "-o", out)
    assert again.exit_code == 2 and "--resume" in again.output  # never overwritten silently
    resumed = invoke("-m", run, "-i", source, "-o", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after row 4" in resumed.output and not partial.exists()
    assert out.read_text() == whole.read_text()
    assert json.loads(sidecar.read_text())["complete"] is True
    assert "nothing to resume" in invoke("-m", run, "-i", source, "-o", out, "--resume").output
    changed = invoke("-m", run, "-i", source, "-o", out, "--coverage", "0.8")
    assert changed.exit_code == 0  # a complete file is simply rewritten


def test_resume_refuses_another_input(run, tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    pd.DataFrame({"smiles": SMILES}).to_csv(source, index=False)
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 2)
    monkeypatch.setattr(predict_module.Predictor, "write", _stop_after_first_chunk(predict_module.Predictor.write))
    invoke("-m", run, "-i", source, "-o", tmp_path / "p.csv")
    monkeypatch.undo()
    pd.DataFrame({"smiles": SMILES[::-1]}).to_csv(source, index=False)
    os.utime(source, ns=(1, 1))
    result = invoke("-m", run, "-i", source, "-o", tmp_path / "p.csv", "--resume")
    assert result.exit_code == 2 and "input_" in result.output and "differ" in result.output


def _stop_after_first_chunk(write):
    def stopping(self, reader, sink, log=lambda _m: None):
        class Once:
            done = sink.done

            def write(self, table, mols):
                sink.write(table, mols)
                raise KeyboardInterrupt

            def stop(self):
                return sink.stop()

            def close(self):
                sink.close()
        return write(self, reader, Once(), log)
    return stopping


def test_outputs_and_inputs_are_checked_before_any_work(run, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"smiles": ["CCO"], "status": ["mine"]}).to_csv(source, index=False)
    cases = [(["-o", tmp_path], "is a folder"), (["-o", tmp_path / "p.parquet"], "must end in .csv or .sdf"),
             (["-o", source], "is the input file"), ([], "already has column(s) 'status'")]
    for extra, message in cases:
        result = invoke("-m", run, "-i", source, *extra)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, extra
    result = invoke("-m", "no-such-model", "-i", source, "-o", tmp_path)
    assert "is a folder" in result.output  # the output is checked before any model is loaded
    empty = tmp_path / "empty.csv"
    empty.write_text("smiles\n")
    result = invoke("-m", run, "-i", empty, "-o", tmp_path / "e.csv")
    assert result.exit_code == 2 and "contains no molecules" in result.output


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(run, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("-m", run, "-s", "CCO", "-o", locked / "p.csv")
        assert result.exit_code == 2 and "permission denied" in result.output
    finally:
        locked.chmod(0o700)
