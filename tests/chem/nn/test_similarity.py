"""ECFP packing and on-device Tanimoto, checked against RDKit's own bit vectors and BulkTanimotoSimilarity."""
import numpy as np
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from molssl.chem.data.descriptors import ecfp_bits
from molssl.chem.nn.similarity import negative_weights, tanimoto_matrix, unpack_bits

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",  # ibuprofen
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
    "CN1CCC[C@H]1c1cccnc1",  # nicotine
    "O=C(O)c1ccccc1O",  # salicylic acid
    "c1ccc2ccccc2c1",
    "CCO",
    "C",
    "[Na+].[Cl-]",
    "CC1=C(C(=O)OC2CCCC2)C(c2ccccc2[N+](=O)[O-])C(C(=O)OC)=C1N",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)CCOCC(=O)O",
    "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",
    "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",
    "FC(F)(F)c1ccc(Oc2ccccc2)cc1",
]


def _mols():
    return [Chem.MolFromSmiles(s) for s in SMILES]


@pytest.mark.parametrize("n_bits,radius", [(1024, 2), (2048, 2), (512, 3)])
def test_ecfp_bits_packs_rdkit_morgan_bits(n_bits, radius):
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    for mol in _mols():
        packed = ecfp_bits(mol, n_bits=n_bits, radius=radius)
        assert packed.dtype == np.uint8 and packed.shape == (n_bits // 8,)
        on_bits = np.flatnonzero(unpack_bits(torch.from_numpy(packed[None]))[0].numpy())
        assert on_bits.tolist() == list(generator.GetFingerprint(mol).GetOnBits())


def test_ecfp_bits_rejects_bad_sizes():
    mol = Chem.MolFromSmiles("CCO")
    with pytest.raises(ValueError, match="multiple of 8"):
        ecfp_bits(mol, n_bits=1001)
    with pytest.raises(ValueError, match="radius"):
        ecfp_bits(mol, radius=-1)
    with pytest.raises(TypeError, match="RDKit molecule"):
        ecfp_bits(Chem.MolFromSmiles("not a smiles"))


def test_tanimoto_equals_rdkit_bulk_tanimoto_exactly():
    mols = _mols()
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fps = [generator.GetFingerprint(m) for m in mols]
    packed = torch.from_numpy(np.stack([ecfp_bits(m) for m in mols]))
    ours = tanimoto_matrix(packed, dtype=torch.float64)
    expected = torch.tensor([DataStructs.BulkTanimotoSimilarity(fp, fps) for fp in fps], dtype=torch.float64)
    assert torch.equal(ours, expected)
    assert (ours.diagonal() == 1).all() and (ours < 1).any()
    # rectangular (N, M) and the default fp32 result
    cross = tanimoto_matrix(packed[:5], packed[5:])
    assert cross.dtype == torch.float32 and cross.shape == (5, len(SMILES) - 5)
    torch.testing.assert_close(cross, expected[:5, 5:].float(), rtol=0, atol=1e-7)


def test_tanimoto_is_exact_under_bf16_autocast_and_empty_fingerprints_give_zero():
    packed = torch.from_numpy(np.stack([ecfp_bits(m) for m in _mols()]))
    packed = torch.cat([packed, torch.zeros(2, packed.shape[1], dtype=torch.uint8)])
    reference = tanimoto_matrix(packed)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = tanimoto_matrix(packed)
    assert under_autocast.dtype == torch.float32 and torch.equal(under_autocast, reference)
    empty = DataStructs.ExplicitBitVect(1024)
    assert reference[-1, -1].item() == DataStructs.TanimotoSimilarity(empty, empty) == 0.0
    assert (reference[-2:, :].sum() == 0).item()


def test_tanimoto_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        tanimoto_matrix(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="same K"):
        tanimoto_matrix(torch.zeros(3, 4, dtype=torch.uint8), torch.zeros(3, 8, dtype=torch.uint8))


def test_negative_weights():
    tanimoto = torch.tensor([[1.0, 0.2], [0.2, 1.0]])
    torch.testing.assert_close(negative_weights(tanimoto, 0.5), torch.tensor([[0.5, 0.9], [0.9, 0.5]]))
    assert torch.equal(negative_weights(tanimoto, 0.0), torch.ones(2, 2))
    with pytest.raises(ValueError, match="lambda1"):
        negative_weights(tanimoto, 1.5)
