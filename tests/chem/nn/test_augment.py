import numpy as np
import pytest
import torch

from molssl.chem.nn.augment import (
    MolecularAugmentation, delete_bonds, mask_atoms, random_rank_in_groups, remove_subgraph, subgraph_atoms,
)
from molssl.chem.data.featurize import MASK_ATOM
from molssl.chem.data.store import build_store


@pytest.fixture
def batch(tmp_path, small_smiles):
    path = tmp_path / "m.smi"
    path.write_text("\n".join(small_smiles * 3) + "\n")
    store = build_store(path, progress=False)
    return store.gather(np.arange(len(store)))


def _edge_set(batch, graph):
    ei = batch.edge_index[:, batch.batch[batch.edge_index[0]] == graph]
    return {tuple(e) for e in ei.t().tolist()}


def test_random_rank_is_a_permutation_within_each_group():
    group = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    rank = random_rank_in_groups(group, 3, torch.Generator().manual_seed(0))
    for g in range(3):
        assert sorted(rank[group == g].tolist()) == list(range(int((group == g).sum())))


def test_mask_counts_are_exact_per_graph(batch):
    out = mask_atoms(batch, 0.25, torch.Generator().manual_seed(1))
    n = batch.atoms_per_graph()
    expected = torch.clamp(torch.floor(n * 0.25).long(), min=1)
    masked = out.x[:, 0] == MASK_ATOM
    assert torch.equal(torch.bincount(out.batch[masked], minlength=batch.num_graphs), expected)
    assert (out.x[masked, 1] == 0).all()
    assert torch.equal(out.x[~masked], batch.x[~masked])  # other atoms untouched
    assert torch.equal(out.edge_index, batch.edge_index)


def test_bond_deletion_counts_and_symmetry(batch):
    out = delete_bonds(batch, 0.25, torch.Generator().manual_seed(2))
    m = batch.bonds_per_graph()
    assert torch.equal(out.bonds_per_graph(), m - torch.floor(m * 0.25).long())
    ei = out.edge_index
    assert torch.equal(ei[0, 0::2], ei[1, 1::2]) and torch.equal(ei[1, 0::2], ei[0, 1::2])
    for g in range(batch.num_graphs):
        assert _edge_set(out, g) <= _edge_set(batch, g)  # only deletions, within the graph
    assert torch.equal(out.x, batch.x)


def test_subgraph_removal_is_connected_exact_and_cuts_its_bonds(batch):
    gen = torch.Generator().manual_seed(3)
    removed = subgraph_atoms(batch, 0.25, gen)
    n = batch.atoms_per_graph()
    assert torch.equal(torch.bincount(batch.batch[removed], minlength=batch.num_graphs),
                       torch.clamp(torch.floor(n * 0.25).long(), min=1))
    out = remove_subgraph(batch, 0.25, torch.Generator().manual_seed(3))
    gone = (out.x[:, 0] == MASK_ATOM).nonzero().squeeze(1)
    assert torch.equal(gone, removed.nonzero().squeeze(1))
    assert not torch.isin(out.edge_index, gone).any()  # no edge touches a removed atom
    # in a connected molecule the removed region is connected; in a salt it may span components
    for g in range(batch.num_graphs):
        atoms = set(range(int(batch.ptr[g]), int(batch.ptr[g + 1])))
        region = set((removed & (batch.batch == g)).nonzero().squeeze(1).tolist())
        edges = _edge_set(batch, g)
        if _n_components(atoms, edges) == 1:
            assert _n_components(region, {(a, b) for a, b in edges if a in region and b in region}) == 1


def _n_components(nodes, edges):
    parent = {n: n for n in nodes}

    def find(n):
        while parent[n] != n:
            n = parent[n]
        return n

    for a, b in edges:
        parent[find(a)] = find(b)
    return len({find(n) for n in nodes})


def test_augmentations_are_seeded_and_graph_local(batch):
    aug = MolecularAugmentation(("subgraph", "mask", "delete"))
    a = aug(batch, torch.Generator().manual_seed(7))
    b = aug(batch, torch.Generator().manual_seed(7))
    c = aug(batch, torch.Generator().manual_seed(8))
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    assert not (torch.equal(a.x, c.x) and torch.equal(a.edge_index, c.edge_index))
    assert torch.equal(a.batch[a.edge_index[0]], a.batch[a.edge_index[1]])


def test_augmentation_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown augmentation"):
        MolecularAugmentation(("rotate",))
    with pytest.raises(ValueError, match="mask_rate"):
        MolecularAugmentation(mask_rate=1.5)
