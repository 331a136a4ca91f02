"""BRICS fragments: the reference-code rules (cut BRICS bonds, keep pieces > 3 atoms, no dummy atoms)."""
import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import BRICS

from molssl.chem.data.featurize import mol_to_graph
from molssl.chem.data.fragments import brics_fragment_atoms, brics_fragment_graphs

SPLITTABLE = [
    "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)CCOCC(=O)O",  # cetirizine
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",  # ibuprofen
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "C/C=C/c1ccc(OCCCC)cc1",  # a BRICS cut next to a stereo double bond
    "CC1=C(C(=O)OC2CCCC2)C(c2ccccc2[N+](=O)[O-])C(C(=O)OC)=C1N",
]


def _independent_fragments(mol, min_atoms):
    """Atom sets via RDKit's BreakBRICSBonds (which adds dummy atoms), minus the dummies."""
    broken = BRICS.BreakBRICSBonds(mol)
    pieces = Chem.GetMolFrags(broken, asMols=False, sanitizeFrags=False)
    n = mol.GetNumAtoms()
    cut_atoms = {a for (pair, _labels) in BRICS.FindBRICSBonds(mol) for a in pair}
    sets = [sorted(a for a in piece if a < n) for piece in pieces]
    return sorted(s for s in sets if len(s) >= min_atoms and cut_atoms & set(s))


@pytest.mark.parametrize("smiles", SPLITTABLE)
@pytest.mark.parametrize("min_atoms", [1, 4])
def test_fragment_atoms_match_break_brics_bonds(smiles, min_atoms):
    mol = Chem.MolFromSmiles(smiles)
    ours = sorted(a.tolist() for a in brics_fragment_atoms(mol, min_atoms))
    assert ours == _independent_fragments(mol, min_atoms)
    assert ours and all(len(a) >= min_atoms for a in ours)


def test_small_pieces_are_dropped_by_default():
    mol = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")  # aspirin: acetyl | O | benzene ring | COOH
    assert [a.tolist() for a in brics_fragment_atoms(mol)] == [[4, 5, 6, 7, 8, 9]]
    assert len(brics_fragment_atoms(mol, min_atoms=1)) == 4


@pytest.mark.parametrize("smiles", ["c1ccccc1", "CCO", "C", "CCCCCCCC", "[Na+].[Cl-]"])
def test_molecules_brics_does_not_split_have_no_fragment(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert brics_fragment_atoms(mol) == [] and brics_fragment_graphs(mol) == []


def test_components_without_a_cut_bond_are_not_fragments():
    mol = Chem.MolFromSmiles("CCCCCCOc1ccccc1.[Na+].CCCCCC")
    assert [a.tolist() for a in brics_fragment_atoms(mol)] == [[0, 1, 2, 3, 4, 5], [7, 8, 9, 10, 11, 12]]


@pytest.mark.parametrize("smiles", SPLITTABLE)
def test_fragment_graphs_are_parent_subgraphs_without_dummy_atoms(smiles):
    mol = Chem.MolFromSmiles(smiles)
    parent = mol_to_graph(mol)
    graphs = brics_fragment_graphs(mol)
    atom_sets = brics_fragment_atoms(mol)
    assert len(graphs) == len(atom_sets) > 0
    parent_bonds = {(int(s), int(d)): (int(t), int(r)) for s, d, t, r in parent.bonds}
    for graph, atoms in zip(graphs, atom_sets):
        assert graph.atoms.dtype == np.uint8 and graph.bonds.dtype == np.int32
        np.testing.assert_array_equal(graph.atoms, parent.atoms[atoms])  # same vocabulary, no dummy atom
        inside = {(int(atoms[s]), int(atoms[d])): (int(t), int(r)) for s, d, t, r in graph.bonds}
        expected = {k: v for k, v in parent_bonds.items() if k[0] in set(atoms) and k[1] in set(atoms)}
        assert inside == expected
        # the same graph as featurizing the fragment on its own (RDKit's own fragment molecule)
        frag_mol = Chem.RWMol(mol)
        for idx in sorted(set(range(mol.GetNumAtoms())) - set(atoms.tolist()), reverse=True):
            frag_mol.RemoveAtom(idx)
        alone = mol_to_graph(frag_mol)
        np.testing.assert_array_equal(alone.atoms, graph.atoms)
        np.testing.assert_array_equal(alone.bonds[:, 2:], graph.bonds[:, 2:])


def test_precomputed_parent_graph_is_used_and_checked():
    mol = Chem.MolFromSmiles(SPLITTABLE[0])
    direct = brics_fragment_graphs(mol)
    reused = brics_fragment_graphs(mol, graph=mol_to_graph(mol))
    assert all(np.array_equal(a.bonds, b.bonds) and np.array_equal(a.atoms, b.atoms) for a, b in zip(direct, reused))
    with pytest.raises(ValueError, match="atoms"):
        brics_fragment_graphs(mol, graph=mol_to_graph(Chem.MolFromSmiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O")))
    with pytest.raises(ValueError, match="min_atoms"):
        brics_fragment_atoms(mol, min_atoms=0)
