import numpy as np
import pytest
from rdkit import Chem

from molssl.chem.data import smiles_text
from molssl.chem.data.featurize import mol_to_graph
from molssl.chem.data.smiles_text import SANITIZE_FOR_MOLCLR, atomic_numbers_in_smiles, parse_for_graph


@pytest.mark.parametrize("smiles", ["[2H]C", "[Cs+]", "[se]1cccc1", "c1cc[nH]c1", "[NH4+]", "Br[Co]Cl", "[13CH4]",
                                    "C[C@@H](O)Cl", "[Sc]", "ClCBr", "O=c1[nH]cnc2nc[nH]c12", "CC(C)(C)[SiH2]C"])
def test_atomic_numbers_read_from_the_smiles_text_equal_rdkit(smiles):
    assert atomic_numbers_in_smiles(smiles) == [a.GetAtomicNum() for a in Chem.MolFromSmiles(smiles).GetAtoms()]


@pytest.mark.parametrize("smiles", [
    "C1=CC=CC=C1", "c1ccccc1[N+](=O)[O-]", "O=S(=O)(O)O", "[CH3]", "[13CH4]", "[NH4+]", "[Hg]Cl", "[He]",
    "C(C)(C)(C)(C)C", "c1cccc1", "C1CC", "[H]", "[H+]", "[H][H]", "[2H]O[2H]", "[H]C([H])([H])O", "CCO ethanol",
    "C[C@H](F)Cl |&1:1|", "F/C=C/Cl", "  c1ccncc1  ", "CN(C)(C)(C)C", "c1ccc2c(c1)-c1ccccc1-2", "[Fe+2]",
])
def test_parse_for_graph_gives_the_default_parse(smiles):
    """The read-and-sanitize path (no stereo, no hydrogen atoms, no extensions) and the cases that fall back
    to ``MolFromSmiles`` give the molecule RDKit's default parse gives: same validity, canonical SMILES, graph."""
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
    default_calls = []
    real = Chem.MolFromSmiles
    monkeypatch.setattr(smiles_text.Chem, "MolFromSmiles",
                        lambda text, **kw: (default_calls.append(text) if not kw else None) or real(text, **kw))
    for text in ["CCO", "c1ccccc1", "[NH4+]", "[Hg]Cl", "[13CH4]"]:
        smiles_text.parse_for_graph(text)
    assert default_calls == []
    for text in ["[H]C", "[2H]C", "C[C@H](F)Cl", "F/C=C/Cl", "CCO ethanol", "C1CC1 |$;;$|"]:
        smiles_text.parse_for_graph(text)
    assert default_calls == ["[H]C", "[2H]C", "C[C@H](F)Cl", "F/C=C/Cl", "CCO ethanol", "C1CC1 |$;;$|"]


def test_the_default_sanitize_steps_keep_what_the_rich_featurizer_reads():
    """Hybridization and conjugation (rich atom and bond fields) are set by the default steps; only the MolCLR
    steps, whose vocabulary reads neither, leave them out."""
    rich = parse_for_graph("C=CC=O")
    assert rich.GetAtomWithIdx(1).GetHybridization() == Chem.HybridizationType.SP2
    assert rich.GetBondWithIdx(1).GetIsConjugated()
    molclr = parse_for_graph("C=CC=O", SANITIZE_FOR_MOLCLR)
    assert not molclr.GetBondWithIdx(1).GetIsConjugated()
