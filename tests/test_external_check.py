"""What benchmarks/external_check.py counts as an external compound: not in the data set by InChIKey skeleton,
organic, labelled; and how a text label column becomes 0/1."""
import numpy as np
import pandas as pd
import pytest
from benchmark_helpers import benchmark_script


@pytest.fixture(scope="module")
def check():
    return benchmark_script("external_check")


def test_compounds_sharing_a_skeleton_with_the_data_set_or_not_organic_are_left_out(check):
    reference = ["C[C@H](N)C(=O)O", "c1ccccc1O"]  # L-alanine, phenol
    table = pd.DataFrame({"smiles": ["C[C@@H](N)C(=O)O",  # D-alanine: same skeleton, other stereo
                                     "C[C@H]([NH3+])C(=O)[O-]",  # the zwitterion: same skeleton, other charges
                                     "[2H]c1ccccc1O",  # deuterated phenol: same skeleton
                                     "CCO", "Cl[Pt]Cl", "O", "not a smiles", "CCN"],
                          "y": [1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, np.nan]})
    kept, counts = check.external_set(table, reference, "TOY")
    assert kept["smiles"].tolist() == ["CCO"]
    assert counts == {"rows": 8, "unparsable or unlabelled": 2, "in TOY (same InChIKey skeleton)": 3,
                      "not organic (metal, inorganic)": 2, "kept": 1}


def test_a_text_label_becomes_one_where_it_names_the_positive_class(check, tmp_path):
    path = tmp_path / "set.tsv"
    path.write_text("SMILES\tlabel\nCCO\tBBB+\nCCN\tBBB-\nCCC\tBBB+\n")
    table = check.read_external(path, "SMILES", "label", "BBB+")
    assert table["y"].tolist() == [1.0, 0.0, 1.0]
    path.with_suffix(".csv").write_text("SMILES,logS\nCCO,-1.5\nCCN,n/a\n")
    numeric = check.read_external(path.with_suffix(".csv"), "SMILES", "logS", None)
    assert numeric["y"].iloc[0] == -1.5 and np.isnan(numeric["y"].iloc[1])
