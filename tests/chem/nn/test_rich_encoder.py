"""Encoders and augmentations in the rich vocabulary: every field embedded, every field masked."""
import numpy as np
import torch

from molssl.chem.data.batch import graphs_to_arrays
from molssl.chem.data.featurize_rich import ATOM_MASK, ATOM_VOCAB, BOND_VOCAB, RICH
from molssl.chem.nn.augment import MolecularAugmentation, mask_atoms
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder, mixed_radix_strides, edge_codes

SMILES = ["CC(=O)[O-].[Na+]", "c1ccccc1/C=C/C", "[13CH3]O", "C[C@H](N)C(=O)O"]
CONFIG = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8, featurizer="rich")


def rich_batch():
    graphs = [g for g, _ in RICH.graphs(SMILES)]
    return graphs_to_arrays(graphs, len(ATOM_VOCAB), 2 + len(BOND_VOCAB)).gather(np.arange(len(graphs)))


def test_masking_sets_every_field_of_a_masked_atom_to_its_mask_token():
    batch = rich_batch()
    masked = mask_atoms(batch, rate=0.5, generator=torch.Generator().manual_seed(0), mask_values=ATOM_MASK)
    changed = (masked.x != batch.x).any(dim=1)
    assert changed.any()
    assert (masked.x[changed] == torch.tensor(ATOM_MASK)).all()
    assert torch.equal(masked.x[~changed], batch.x[~changed])


def test_augmentation_with_the_wrong_vocabulary_is_refused():
    batch = rich_batch()
    try:
        MolecularAugmentation(("mask",))(batch)  # MolCLR's two-field mask on ten-field atoms
    except ValueError as exc:
        assert "different featurizers" in str(exc)
    else:
        raise AssertionError("a mask of the wrong width was accepted")


def test_combined_bond_table_equals_the_sum_of_field_embeddings():
    encoder = MolecularEncoder(CONFIG)
    layer = encoder.gnns[0]
    batch = rich_batch()
    codes = edge_codes(batch.edge_attr, BOND_VOCAB)
    direct = layer.edge_embedding1(batch.edge_attr[:, 0]) + layer.edge_embedding2(batch.edge_attr[:, 1])
    for j, embedding in enumerate(layer.edge_embeddings, start=2):
        direct = direct + embedding(batch.edge_attr[:, j])
    torch.testing.assert_close(layer.table()[codes], direct)
    loop = torch.tensor([RICH.self_loop])
    assert layer.self_loop_code == int((loop[0] * torch.tensor(mixed_radix_strides(BOND_VOCAB))).sum())


def test_every_atom_field_changes_the_representation():
    torch.manual_seed(0)
    encoder = MolecularEncoder(CONFIG).eval()
    batch = rich_batch()
    base = encoder.represent(batch)
    for field in range(len(ATOM_VOCAB)):
        x = batch.x.clone()
        x[:, field] = (x[:, field] + 1) % ATOM_VOCAB[field]
        assert not torch.allclose(encoder.represent(batch.with_(x=x)), base), field
