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
