"""The rich featurizer: every field checked against RDKit on charged, isotopic, radical, aromatic and stereo molecules."""
import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdchem

from molssl.chem.data.featurize_rich import ATOM_MASK, ATOM_VOCAB, BOND_VOCAB, RICH, rich_graph
from molssl.chem.data.featurizers import get_featurizer

MOLECULES = ["C", "[CH3]", "[13CH4]", "[C+8]", "CC(=O)[O-].[Na+]", "[NH4+]", "c1ccccc1/C=C/C", "F/C=C\\Cl",
             "C[C@H](N)C(=O)O", "[O][O]", "c1ccc2[nH]ccc2c1", "O=[N+]([O-])c1ccccc1", "[2H]OC([2H])([2H])C#N",
             "C1CC1", "[Fe+3]"]
HYBRIDIZATION = {rdchem.HybridizationType.UNSPECIFIED: 0, rdchem.HybridizationType.S: 1,
                 rdchem.HybridizationType.SP: 2, rdchem.HybridizationType.SP2: 3, rdchem.HybridizationType.SP3: 4,
                 rdchem.HybridizationType.SP3D: 5, rdchem.HybridizationType.SP3D2: 6}


@pytest.mark.parametrize("smiles", MOLECULES)
def test_atom_fields_match_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    graph = rich_graph(mol)
    assert graph.atoms.shape == (mol.GetNumAtoms(), len(ATOM_VOCAB))
    for atom, row in zip(mol.GetAtoms(), graph.atoms.tolist()):
        charge = atom.GetFormalCharge()
        expected = [atom.GetAtomicNum() - 1,
                    {rdchem.ChiralType.CHI_UNSPECIFIED: 0, rdchem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
                     rdchem.ChiralType.CHI_TETRAHEDRAL_CCW: 2}.get(atom.GetChiralTag(), 3),
                    charge + 4 if -4 <= charge <= 4 else 9,
                    min(atom.GetTotalNumHs(), 5), min(atom.GetDegree(), 6),
                    HYBRIDIZATION.get(atom.GetHybridization(), 7), int(atom.GetIsAromatic()), int(atom.IsInRing()),
                    int(atom.GetIsotope() != 0), min(atom.GetNumRadicalElectrons(), 2)]
        assert row == expected, (smiles, atom.GetIdx())
    assert (graph.atoms < np.array(ATOM_MASK)).all()  # the mask token is never a real value


@pytest.mark.parametrize("smiles", MOLECULES)
def test_bond_fields_match_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    graph = rich_graph(mol)
    assert graph.bonds.shape == (mol.GetNumBonds(), 2 + len(BOND_VOCAB))
    for bond, row in zip(mol.GetBonds(), graph.bonds.tolist()):
        i, k = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        stereo = {rdchem.BondStereo.STEREOZ: 1, rdchem.BondStereo.STEREOCIS: 1, rdchem.BondStereo.STEREOE: 2,
                  rdchem.BondStereo.STEREOTRANS: 2}.get(bond.GetStereo(), 0)
        direction = {rdchem.BondDir.ENDUPRIGHT: 1, rdchem.BondDir.ENDDOWNRIGHT: 2}.get(bond.GetBondDir(), 0)
        kind = {rdchem.BondType.SINGLE: 0, rdchem.BondType.DOUBLE: 1, rdchem.BondType.TRIPLE: 2,
                rdchem.BondType.AROMATIC: 3}[bond.GetBondType()]
        assert row == [min(i, k), max(i, k), kind, direction, stereo, int(bond.GetIsConjugated()),
                       int(bond.IsInRing())], smiles


def test_molecules_molclr_confuses_are_distinct():
    """C, [CH3], [13CH4] and [C+8] are one graph in the MolCLR vocabulary, four in the rich one."""
    rich = [tuple(g.atoms.ravel()) for g, _ in RICH.graphs(["C", "[CH3]", "[13CH4]", "[C+8]"])]
    molclr = [tuple(g.atoms.ravel()) for g, _ in get_featurizer("molclr").graphs(["C", "[CH3]", "[13CH4]", "[C+8]"])]
    assert len(set(rich)) == 4 and len(set(molclr)) == 1


def test_invalid_molecules_name_their_reason():
    results = RICH.graphs(["C1CC", "", "*C", "CC"])
    assert [reason for _, reason in results] == ["RDKit cannot parse this SMILES", "empty SMILES",
                                                "dummy atom '*' is not in the atom vocabulary", None]


TRICKY = ["CCN(CC)c1ccc(N(=O)=O)cc1", "OCl(=O)(=O)=O", "C |^1:0|", "F/C=C/C |c:1|", "CCO ethanol", "[CH3]", "[13CH4]",
          "F/C=C\\Cl", "C[C@H](F)Cl", "[2H]O[2H]", "[H]C", "C1=CC=CC=C1", "c1cccc1", "", "*C", "[Fe]<-N", "C" * 200,
          "  c1ccncc1  ", "[NH4+].[Cl-]", "CC(=O)[O-]"]


def test_smiles_path_and_hints_give_the_graphs_of_the_default_parse():
    """Parsing with parse_for_graph and reading with SMILES hints (skipping fields the text rules out) gives the
    graph, or the reason, of reading every field of the molecule RDKit's default parse gives. N(=O)=O and
    perchlorate matter: sanitizing charges atoms written outside brackets."""
    from molssl.chem.data.featurize import InvalidMolecule, parse_many

    streamed, kept = RICH.graphs(TRICKY), RICH.featurize(parse_many(TRICKY), TRICKY)
    for text, (graph, reason), (kept_graph, kept_reason) in zip(TRICKY, streamed, kept):
        mol = Chem.MolFromSmiles(text.strip())
        if mol is None or mol.GetNumAtoms() == 0:
            assert graph is None and kept_graph is None and reason == kept_reason and reason, text
            continue
        try:
            expected = rich_graph(mol)  # no hint: every field read
        except InvalidMolecule as exc:
            assert graph is None and reason == kept_reason == str(exc), text
            continue
        for got in (graph, kept_graph):
            np.testing.assert_array_equal(got.atoms, expected.atoms, err_msg=text)
            np.testing.assert_array_equal(got.bonds, expected.bonds, err_msg=text)
    nitro = streamed[0][0]
    assert sorted(nitro.atoms[:, 2].tolist())[0] == 3 and sorted(nitro.atoms[:, 2].tolist())[-1] == 5  # O- and N+
    radical = streamed[2][0]
    assert radical.atoms[0, 9] == 1  # the CXSMILES radical on an atom written outside brackets


def test_size_limit_on_the_smiles_path():
    results = RICH.graphs(["CCO", "C" * 50], max_atoms=30)
    assert results[0][0] is not None and results[1] == (None, "50 heavy atoms, more than the limit of 30 (--max-atoms)")
