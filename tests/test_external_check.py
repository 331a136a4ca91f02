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
                                     "CCO", "CCCO", "Cl[Pt]Cl", "O", "not a smiles", "CCN"],
                          "a": [1.0, 1.0, 1.0, 2.0, np.nan, 3.0, 4.0, 5.0, np.nan],
                          "b": [1.0, 1.0, 1.0, np.nan, 0.0, 3.0, 4.0, 5.0, np.nan]})
    kept, counts = check.external_set(table, reference, "TOY")
    assert kept["smiles"].tolist() == ["CCO", "CCCO"]  # one label of two is enough
    assert kept["b"].tolist()[1] == 0.0
    assert counts == {"rows": 9, "unparsable or unlabelled": 2, "in TOY (same InChIKey skeleton)": 3,
                      "not organic (metal, inorganic)": 2, "kept": 2}


def test_a_text_label_becomes_one_where_it_names_the_positive_class(check, tmp_path):
    path = tmp_path / "set.tsv"
    path.write_text("SMILES\tlabel\nCCO\tBBB+\nCCN\tBBB-\nCCC\tBBB+\nCCCC\t\n")
    table = check.read_external(path, "SMILES", ["label"], ["p_np"], "BBB+")
    assert table["p_np"].tolist()[:3] == [1.0, 0.0, 1.0]
    assert np.isnan(table["p_np"].iloc[3])  # an empty cell is a missing label, not a negative one
    path.with_suffix(".csv").write_text("SMILES,logS,NR-AR\nCCO,-1.5,x\nCCN,n/a,1\n")  # Tox21's files write x
    numeric = check.read_external(path.with_suffix(".csv"), "SMILES", ["logS", "NR-AR"], ["y", "NR-AR"], None)
    assert numeric["y"].iloc[0] == -1.5 and np.isnan(numeric["y"].iloc[1])
    assert np.isnan(numeric["NR-AR"].iloc[0]) and numeric["NR-AR"].iloc[1] == 1.0


def test_a_check_on_the_card_replaces_the_last_one_and_the_untested_sentence_points_to_it(check):
    template = ("Trained on ESOL only. Not tested on other assays, conditions or chemical series; check the "
                "applicability-domain columns.")
    once = check.with_check(template, "Checked outside ESOL (day 1): RMSE 1.3.")
    assert once == ("Trained on ESOL only. Beyond the check below, not tested on other assays, conditions or chemical "
                    "series; check the applicability-domain columns. Checked outside ESOL (day 1): RMSE 1.3.")
    again = check.with_check(once, "Checked outside ESOL (day 2): RMSE 1.2.")
    assert again == once.replace("(day 1): RMSE 1.3", "(day 2): RMSE 1.2")
