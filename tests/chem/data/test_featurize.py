import numpy as np
import pytest
from rdkit import Chem

from molssl.chem.data.featurize import (
    MASK_ATOM, InvalidMolecule, mol_to_graph, smiles_to_graph, smiles_to_graphs, try_smiles_to_graph,
)


def _sorted_bonds(bonds):
    return bonds[np.lexsort((bonds[:, 1], bonds[:, 0]))]


def test_atom_and_bond_vocabulary():
    g = smiles_to_graph("N[C@@H](C)C(=O)O")
    assert g.atoms[:, 0].tolist() == [6, 5, 5, 5, 7, 7]  # Z - 1
    assert g.atoms[1, 1] == 1  # @@ -> CW in RDKit's tags for this SMILES
    benzene = smiles_to_graph("c1ccccc1")
    assert set(benzene.bonds[:, 2].tolist()) == {3}  # aromatic
    assert smiles_to_graph("C#N").bonds[:, 2].tolist() == [2]
    assert smiles_to_graph("C=O").bonds[:, 2].tolist() == [1]
    assert MASK_ATOM == 118


def test_bond_direction_and_hydrogens_implicit():
    g = smiles_to_graph("C/C=C/C")
    assert g.atoms.shape == (4, 2)  # no explicit hydrogens
    assert sorted(g.bonds[:, 3].tolist()) == [0, 1, 1]


@pytest.mark.parametrize("smiles", ["CC(=O)Oc1ccccc1C(=O)O", "F/C=C\\Cl", "C[C@H](N)C(=O)O", "[Na+].[Cl-]",
                                    "c1ccc2[nH]ccc2c1", "O=[N+]([O-])c1ccccc1"])
def test_fast_path_equals_full_read(smiles):
    mol = Chem.MolFromSmiles(smiles)
    fast, full = mol_to_graph(mol, smiles_hint=smiles), mol_to_graph(mol)
    np.testing.assert_array_equal(fast.atoms, full.atoms)
    np.testing.assert_array_equal(_sorted_bonds(fast.bonds), _sorted_bonds(full.bonds))


@pytest.mark.parametrize("smiles, reason", [
    ("", "empty SMILES"),
    ("C1CC", "cannot parse"),
    ("*C", "dummy atom"),
    ("[Fe]<-N", "unsupported bond type DATIVE"),
])
def test_invalid_molecules_have_reasons(smiles, reason):
    with pytest.raises(InvalidMolecule, match=reason):
        smiles_to_graph(smiles)
    graph, why = try_smiles_to_graph(smiles)
    assert graph is None and reason in why


def test_batched_featurization_equals_one_by_one():
    smiles = ["CC(=O)Oc1ccccc1C(=O)O", "", "C1CC", "*C", "[Fe]<-N", "F/C=C\\Cl", "C[C@H](N)C(=O)O", "C",
              "[Na+].[Cl-]", "C#N", "O=[N+]([O-])c1ccccc1", "  CCO", "c1ccc2[nH]ccc2c1", "*", "CC*CC", "[Cu]$[Cu]",
              "OCC1OC(O)C(O)C(O)C1O", "[2H]C([2H])([2H])Cl", None]
    batched = smiles_to_graphs(smiles)
    assert len(batched) == len(smiles)
    for text, (graph, reason) in zip(smiles, batched):
        expected, expected_reason = try_smiles_to_graph(text)
        assert reason == expected_reason, text
        if expected is None:
            assert graph is None, text
        else:
            np.testing.assert_array_equal(graph.atoms, expected.atoms)
            np.testing.assert_array_equal(graph.bonds, expected.bonds)  # same rows in the same order
            assert graph.atoms.dtype == expected.atoms.dtype and graph.bonds.dtype == expected.bonds.dtype
    assert sum(graph is None for graph, _ in batched) == 8  # "", C1CC, *C, [Fe]<-N, *, CC*CC, [Cu]$[Cu], None
    assert smiles_to_graphs([]) == []


@pytest.mark.parametrize("smiles", ["[2H]C", "[Cs+]", "[se]1cccc1", "c1cc[nH]c1", "[NH4+]", "Br[Co]Cl", "[13CH4]",
                                    "C[C@@H](O)Cl", "[Sc]", "ClCBr", "O=c1[nH]cnc2nc[nH]c12", "CC(C)(C)[SiH2]C"])
def test_atomic_numbers_read_from_the_smiles_text_equal_rdkit(smiles):
    from molssl.chem.data.featurize import atomic_numbers_in_smiles

    assert atomic_numbers_in_smiles(smiles) == [a.GetAtomicNum() for a in Chem.MolFromSmiles(smiles).GetAtoms()]


def test_explicit_hydrogens_rdkit_removes_fall_back_to_reading_the_molecule():
    from molssl.chem.data.featurize import atomic_numbers_in_smiles

    assert atomic_numbers_in_smiles("[H]C") == [1, 6]  # two tokens; RDKit keeps one atom
    graph = smiles_to_graphs(["[H]C([H])([H])O"])[0][0]
    assert graph.atoms[:, 0].tolist() == [5, 7]


@pytest.mark.parametrize("featurizer", ["molclr", "rich"])
def test_chunk_results_are_the_same_with_and_without_the_molecules_kept(featurizer):
    """Without extras a chunk is featurized one molecule at a time (each let go once read); with an extra the
    molecules are kept for it. Both paths give the same graphs and the same reasons, size limit included."""
    from molssl.chem.data.inputs import SmilesChunk
    from molssl.chem.data.parallel import featurize_chunk

    smiles = ["CCO", "", "C1CC", "*C", "C" * 40, "c1ccccc1O", "F/C=C\\Cl", "[2H]C([2H])([2H])Cl", "CC(=O)[O-]"]
    chunk = SmilesChunk(list(range(len(smiles))), [i + 2 for i in range(len(smiles))], smiles)
    streamed = featurize_chunk(chunk, featurizer=featurizer, max_atoms=30)
    kept = featurize_chunk(chunk, extras=("scaffold",), featurizer=featurizer, max_atoms=30)
    assert streamed.rejected == kept.rejected
    assert [row for row, *_ in streamed.rejected] == [1, 2, 3, 4]
    assert streamed.rejected[3][3] == "40 heavy atoms, more than the limit of 30 (--max-atoms)"
    for field in ("atoms", "atom_ptr", "bonds", "bond_ptr"):
        np.testing.assert_array_equal(getattr(streamed.graphs, field), getattr(kept.graphs, field))
    assert streamed.rows.tolist() == kept.rows.tolist() == [0, 5, 6, 7, 8]


@pytest.mark.parametrize("smiles", [
    "C1=CC=CC=C1", "c1ccccc1[N+](=O)[O-]", "O=S(=O)(O)O", "[CH3]", "[13CH4]", "[NH4+]", "[Hg]Cl", "[He]",
    "C(C)(C)(C)(C)C", "c1cccc1", "C1CC", "[H]", "[H+]", "[H][H]", "[2H]O[2H]", "[H]C([H])([H])O", "CCO ethanol",
    "C[C@H](F)Cl |&1:1|", "F/C=C/Cl", "  c1ccncc1  ", "CN(C)(C)(C)C", "c1ccc2c(c1)-c1ccccc1-2", "[Fe+2]",
])
def test_parse_for_graph_gives_the_default_parse(smiles):
    """The read-and-sanitize path (no stereo, no hydrogen atoms, no extensions) and the cases that fall back
    to ``MolFromSmiles`` give the molecule RDKit's default parse gives: same validity, canonical SMILES, graph."""
    from molssl.chem.data.featurize import SANITIZE_FOR_MOLCLR, parse_for_graph

    default = Chem.MolFromSmiles(smiles.strip())
    for ours in (parse_for_graph(smiles), parse_for_graph(smiles, SANITIZE_FOR_MOLCLR)):
        assert (ours is None) == (default is None)
        if default is not None:
            assert Chem.MolToSmiles(ours) == Chem.MolToSmiles(default)
            a, b = mol_to_graph(ours, smiles_hint=smiles), mol_to_graph(default, smiles_hint=smiles)
            np.testing.assert_array_equal(a.atoms, b.atoms)
            np.testing.assert_array_equal(a.bonds, b.bonds)


def test_parse_for_graph_reads_and_sanitizes_only_plain_smiles(monkeypatch):
    """Only SMILES without stereo, hydrogen atoms or extensions skip the default parse."""
    from molssl.chem.data import featurize

    default_calls = []
    real = Chem.MolFromSmiles
    monkeypatch.setattr(featurize.Chem, "MolFromSmiles",
                        lambda text, **kw: (default_calls.append(text) if not kw else None) or real(text, **kw))
    for text in ["CCO", "c1ccccc1", "[NH4+]", "[Hg]Cl", "[13CH4]"]:
        featurize.parse_for_graph(text)
    assert default_calls == []
    for text in ["[H]C", "[2H]C", "C[C@H](F)Cl", "F/C=C/Cl", "CCO ethanol", "C1CC1 |$;;$|"]:
        featurize.parse_for_graph(text)
    assert default_calls == ["[H]C", "[2H]C", "C[C@H](F)Cl", "F/C=C/Cl", "CCO ethanol", "C1CC1 |$;;$|"]
