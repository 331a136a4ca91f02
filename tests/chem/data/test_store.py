import gzip
import json

import numpy as np
import pytest
import torch

from molssl.chem.data.featurize import smiles_to_graph
from molssl.chem.data.inputs import iter_smiles
from molssl.chem.data.store import MoleculeStore, build_store, open_corpus
from molssl.errors import InputFileError, InvalidSmilesError


def test_reads_smi_with_names_header_and_blank_lines(tmp_path):
    path = tmp_path / "a.smi"
    path.write_text("SMILES name\nCCO ethanol\n\nc1ccccc1 benzene\n")
    chunks = list(iter_smiles(path))
    assert [c.smiles for c in chunks] == [["CCO", "c1ccccc1"]]
    assert chunks[0].lines == [2, 4]


def test_reads_gzipped_csv_with_named_column(tmp_path):
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("id,mol\n1,CCO\n2,\n3,CCN\n")
    chunks = list(iter_smiles(path, "mol", chunk_size=2))
    assert [s for c in chunks for s in c.smiles] == ["CCO", "", "CCN"]
    assert [line for c in chunks for line in c.lines] == [2, 3, 4]


@pytest.mark.parametrize("content, column, message", [
    ("a,b\n1,2\n", None, "has no SMILES column"),
    ("smiles\nCCO\n", "mol", "has no column 'mol'"),
    ("", None, "empty or not a readable CSV"),
])
def test_csv_errors_are_one_sentence(tmp_path, content, column, message):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(InputFileError, match=message):
        build_store(path, smiles_column=column, progress=False)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        build_store(tmp_path / "nope.smi", progress=False)
    empty = tmp_path / "empty.smi"
    empty.write_text("\n\n")
    with pytest.raises(InputFileError, match="contains no SMILES"):
        build_store(empty, progress=False)


def test_store_round_trip_matches_featurizer(smiles_file, small_smiles):
    store = build_store(smiles_file, progress=False)
    assert len(store) == len(small_smiles) and store.n_invalid == 0
    batch = store.gather(np.array([2, 0, 5]))
    assert batch.num_graphs == 3
    offset = 0
    for position, i in enumerate([2, 0, 5]):
        graph = smiles_to_graph(small_smiles[i])
        n = graph.atoms.shape[0]
        assert torch.equal(batch.x[offset:offset + n], torch.from_numpy(graph.atoms.astype(np.int64)))
        assert int(batch.ptr[position]) == offset
        offset += n
    # every bond appears in both directions, consecutively, within its own graph
    ei = batch.edge_index
    assert torch.equal(ei[0, 0::2], ei[1, 1::2]) and torch.equal(ei[1, 0::2], ei[0, 1::2])
    assert torch.equal(batch.batch[ei[0]], batch.batch[ei[1]])
    assert int(batch.bonds_per_graph().sum()) == sum(smiles_to_graph(small_smiles[i]).bonds.shape[0] for i in [2, 0, 5])


def test_store_is_reused_and_rebuilt_when_input_changes(smiles_file):
    first = build_store(smiles_file, progress=False)
    again = build_store(smiles_file, progress=False)
    assert again.folder == first.folder
    smiles_file.write_text(smiles_file.read_text() + "CCCC\n")
    changed = build_store(smiles_file, progress=False)
    assert changed.folder != first.folder and len(changed) == len(first) + 1


def test_parallel_build_equals_serial(tmp_path, small_smiles):
    path = tmp_path / "many.smi"
    path.write_text("\n".join(small_smiles * 5) + "\n")
    serial = build_store(path, workers=1, chunk_size=7, cache_dir=tmp_path / "a", progress=False)
    parallel = build_store(path, workers=2, chunk_size=7, cache_dir=tmp_path / "b", progress=False)
    for name in ("atoms", "atom_ptr", "bonds", "bond_ptr"):
        np.testing.assert_array_equal(getattr(serial.graphs, name), getattr(parallel.graphs, name))
    np.testing.assert_array_equal(serial.rows, parallel.rows)


def test_invalid_rows_are_named_and_skippable(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("smiles\nCCO\nnot_a_smiles\n\nc1ccccc1\nC1CC\n")
    with pytest.raises(InvalidSmilesError) as err:
        open_corpus(path, progress=False)
    message = str(err.value)
    assert "3 invalid SMILES" in message and "line 3: 'not_a_smiles'" in message and "line 4: ''" in message
    assert "--skip-invalid" in message
    rejected = tmp_path / "run" / "rejected.csv"
    store = open_corpus(path, skip_invalid=True, rejected_out=rejected, progress=False)
    assert len(store) == 2 and store.rows.tolist() == [0, 3]
    assert rejected.read_text().splitlines()[1:] == [
        "1,3,not_a_smiles,RDKit cannot parse this SMILES", "2,4,,empty SMILES", "4,6,C1CC,RDKit cannot parse this SMILES"]


def test_store_meta_records_provenance(smiles_file):
    store = build_store(smiles_file, progress=False)
    meta = json.loads((store.folder / "meta.json").read_text())
    assert meta["n_molecules"] == len(store) and meta["featurizer"] and meta["source"].endswith("mols.smi")
    assert isinstance(MoleculeStore(store.folder).graphs.atoms, np.ndarray)


def test_real_corpus_sample_featurizes(shared_data, tmp_path):
    source = shared_data / "moleculenet" / "BBBP.csv.gz"
    store = build_store(source, progress=False, cache_dir=tmp_path)
    assert store.n_invalid == 11  # PROVENANCE.md: 11 BBBP SMILES RDKit cannot parse
    assert len(store) == 2039
