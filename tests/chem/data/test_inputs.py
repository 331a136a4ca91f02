"""Reading molecules with all of their rows' columns: CSV, SMILES lines, SD files (gzipped too), stdin, Python objects."""
import gzip
import io

import pandas as pd
import pytest
from rdkit import Chem

from molssl.chem.data.inputs import MoleculeReader, file_sha256
from molssl.chem.data.objects import molecules_chunk, split_chunk
from molssl.chem.data.sdf import text_properties
from molssl.errors import InputFileError
from sdf_helpers import sd_text as shared_sd_text


def sd_text(broken: int = -1) -> str:
    return shared_sd_text(broken, clashing_properties=True)


def rows(reader, skip=0):
    return [record for chunk in reader.chunks(skip) for record in chunk.table.to_dict("records")]


@pytest.mark.parametrize("gzipped", [False, True])
def test_sd_file_rows_keep_names_properties_and_broken_records(tmp_path, gzipped):
    path = tmp_path / ("m.sdf.gz" if gzipped else "m.sdf")
    with (gzip.open(path, "wt") if gzipped else open(path, "w")) as handle:
        handle.write(sd_text(broken=1))
    reader = MoleculeReader(path, chunk_size=2)
    assert reader.columns == ["name", "smiles", "ID", "sd_smiles", "note"]
    chunks = list(reader)
    assert [c.start for c in chunks] == [0, 2] and chunks[0].reasons == {1: "RDKit cannot read this SD record (line 15)"}
    assert [m is not None for c in chunks for m in c.mols] == [True, False, True]
    got = rows(reader)
    assert [r["name"] for r in got] == ["mol0", "mol1", "mol2"] and [r["ID"] for r in got] == ["A0", "A1", "A2"]
    assert [r["smiles"] for r in got] == ["CCO", "", "CC(=O)O"]
    assert got[2]["sd_smiles"] == "given" and got[2]["note"] == "two\nlines"
    assert [r["name"] for r in rows(reader, skip=2)] == ["mol2"]


def test_text_properties_of_a_record_rdkit_cannot_read():
    record = sd_text(broken=0).split("$$$$\n")[0]
    assert text_properties(record) == {"ID": "A0"}


def test_csv_and_smiles_lines(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("id,SMILES\n1,CCO\n2,\n3,c1ccccc1\n")
    reader = MoleculeReader(csv, chunk_size=2)
    assert reader.columns == ["id", "SMILES"] and reader.smiles_column == "SMILES"
    assert [c.smiles for c in reader] == [["CCO", ""], ["c1ccccc1"]]
    assert [c.table.index.tolist() for c in reader.chunks(skip=1)] == [[1], [2]]
    smi = tmp_path / "a.smi"
    smi.write_text("smiles\nCCO ethanol\n\nC1CC( broken one\n")
    assert rows(MoleculeReader(smi)) == [{"smiles": "CCO", "name": "ethanol"}, {"smiles": "C1CC(", "name": "broken one"}]
    with pytest.raises(InputFileError, match="has no column 'mol'"):
        MoleculeReader(csv, "mol")
    with pytest.raises(InputFileError, match="is not a CSV file"):
        MoleculeReader(smi, "mol")
    with pytest.raises(InputFileError, match="it is a folder"):
        MoleculeReader(tmp_path)


def test_stdin_is_smiles_lines_or_a_csv_with_a_smiles_header():
    lines = MoleculeReader("-", stream=io.StringIO("CCO x\nc1ccccc1\n"))
    assert lines.kind == "smi" and rows(lines) == [{"smiles": "CCO", "name": "x"}, {"smiles": "c1ccccc1", "name": ""}]
    table = MoleculeReader("-", stream=io.StringIO("name,smiles\na,CCO\nb,c1ccccc1\n"))
    assert table.kind == "csv" and rows(table) == [{"name": "a", "smiles": "CCO"}, {"name": "b", "smiles": "c1ccccc1"}]
    named = MoleculeReader("-", "mol", stream=io.StringIO("id,mol\n1,CCO\n"))
    assert rows(named) == [{"id": "1", "mol": "CCO"}]
    with pytest.raises(InputFileError, match="only once"):
        list(named.chunks())


def test_python_objects_keep_their_index():
    mol = Chem.MolFromSmiles("c1ccccc1")
    chunk = molecules_chunk(pd.Series(["CCO", mol, None], index=["x", "y", "z"]))
    assert chunk.table.index.tolist() == ["x", "y", "z"] and chunk.smiles == ["CCO", "c1ccccc1", ""]
    assert chunk.mols[1] is mol and chunk.mols[0] is None
    frame = pd.DataFrame({"ROMol": [mol], "value": [1.5]}, index=[7])
    assert molecules_chunk(frame).smiles == ["c1ccccc1"] and molecules_chunk(frame).table is frame
    assert molecules_chunk("CCO").smiles == ["CCO"] and molecules_chunk(mol).smiles == ["c1ccccc1"]
    assert [(c.start, c.smiles) for c in split_chunk(molecules_chunk(["C", "CC", "CCC"]), 2)] == [(0, ["C", "CC"]),
                                                                                               (2, ["CCC"])]
    with pytest.raises(InputFileError, match="position 1 holds 3"):
        molecules_chunk(["CCO", 3])


def test_file_sha256(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


VARIED = gzip.compress(b"".join(b"C" * (i % 47 + 1) + b"O%d\n" % i for i in range(5000)))


@pytest.mark.parametrize("name, content, message", [
    ("latin.csv", b"smiles\nCCO\nC\xe9O\n", r"latin\.csv is not UTF-8 text \(it holds byte 0xe9\); save it as UTF-8"),
    ("deep.smi", b"CCO\n" * 5000 + b"C\xffO\n", r"deep\.smi is not UTF-8 text \(it holds byte 0xff\)"),
    ("packed.csv", gzip.compress(b"smiles\nCCO\n"), r"packed\.csv is gzip-compressed; name it with a \.gz suffix"),
    ("plain.csv.gz", b"smiles\nCCO\n", r"plain\.csv\.gz ends in \.gz but is not gzip-compressed"),
    ("cut.smi.gz", VARIED[: len(VARIED) // 2], r"cut\.smi\.gz ends early \(a truncated compressed file\?\)"),
])
def test_files_that_are_not_text_say_which_and_why(tmp_path, name, content, message):
    """Wrong encodings and compression are named as such (not as a bare codec error), wherever they
    sit in the file, by both readers (rows for prediction, SMILES for featurization)."""
    from molssl.chem.data.inputs import iter_smiles

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        for _ in MoleculeReader(path, chunk_size=1000):
            pass
    with pytest.raises(InputFileError, match=message):
        for _ in iter_smiles(path, chunk_size=1000):
            pass


@pytest.mark.parametrize("content, message", [
    # an unquoted comma in a name: pandas would shift "c" into smiles and "CC" into y if only some columns were read
    ("name,smiles,y\na,CCO,1\nb, c,CC,0\nd,CCC,1\n",
     r"bad\.csv, line 3: 4 fields where the header has 3 \(put a value that holds a comma in double quotes\)"),
    ("name,smiles,y\na,CCO,1\nb,CC,0\n\"d,CCC,1\ne,CCCC,0\n",
     r"bad\.csv, line 4: a double quote opens a value that is never closed"),
])
def test_csv_syntax_errors_name_the_files_own_line(tmp_path, content, message):
    """Both readers (rows for prediction, SMILES with labels for featurization) stop at a malformed row and name
    its line, counted as an editor does (the header is line 1), instead of reading values into the wrong columns."""
    from molssl.chem.data.inputs import iter_smiles

    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputFileError, match=message):
        rows(MoleculeReader(path, chunk_size=2))
    with pytest.raises(InputFileError, match=message):
        for _ in iter_smiles(path, columns=["y"], chunk_size=2):
            pass
