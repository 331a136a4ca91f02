"""RDKit 2D descriptors: computed in families, yet equal to RDKit's functions called one by one."""
import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from molssl.chem.data.descriptors import _FAMILIES, RDKIT2D_NAMES, rdkit2d, rdkit2d_one_by_one

MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "[CH3]", "[13CH4]", "C", "[He]",
             "O=C(O)C[C@H](N)C(=O)O", "F[B-](F)(F)F", "C1CC2CCC1CC2", "CN1CCN(CC1)c1ccc2nc(-c3ccco3)oc2c1",
             "O=[N+]([O-])c1ccc(cc1)S(=O)(=O)N"]


def test_families_cover_the_descriptors_they_replace():
    names = {RDKIT2D_NAMES[j] for _, columns in _FAMILIES for j in columns}
    assert {"MaxEStateIndex", "MinEStateIndex", "MaxAbsEStateIndex", "MinAbsEStateIndex", "Ipc", "AvgIpc", "MolLogP",
            "MolMR"} <= names


@pytest.mark.parametrize("smiles", MOLECULES)
def test_rdkit2d_equals_rdkit_functions_one_by_one(smiles):
    # two parses: RDKit caches some intermediates on the molecule object, the reference must not see ours
    got, expected = rdkit2d(Chem.MolFromSmiles(smiles)), rdkit2d_one_by_one(Chem.MolFromSmiles(smiles))
    assert got.shape == (len(RDKIT2D_NAMES),)
    np.testing.assert_array_equal(got, expected)  # NaN where RDKit fails, bit-identical elsewhere
    fresh = Chem.MolFromSmiles(smiles)
    for name in ("MaxEStateIndex", "MinAbsEStateIndex", "Ipc", "AvgIpc", "MolLogP", "MolMR"):  # the families
        assert got[RDKIT2D_NAMES.index(name)] == np.float32(getattr(Descriptors, name)(fresh)), name


def test_a_failing_family_is_nan_and_the_rest_still_computed(monkeypatch):
    import molssl.chem.data.descriptors as descriptors

    def broken(mol):
        raise RuntimeError("boom")

    monkeypatch.setattr(descriptors, "_FAMILIES", tuple((broken, columns) for _, columns in descriptors._FAMILIES))
    values = descriptors.rdkit2d(Chem.MolFromSmiles("c1ccccc1O"))
    family = [j for _, columns in descriptors._FAMILIES for j in columns]
    assert np.isnan(values[family]).all()
    assert values[RDKIT2D_NAMES.index("MolWt")] == pytest.approx(94.113, abs=1e-3)
