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


def test_explicit_hydrogens_rdkit_removes_fall_back_to_reading_the_molecule():
    from molssl.chem.data.smiles_text import atomic_numbers_in_smiles

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
