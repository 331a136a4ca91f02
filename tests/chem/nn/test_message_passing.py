"""The bf16 neighbourhood sum as embedding bags (molssl.chem.nn.message_passing) against the fp32 sparse products."""
import contextlib

import numpy as np
import pytest
import torch

from molssl.chem.data.store import build_store
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder, per_atom_first_product
from molssl.chem.nn.message_passing import ROW_MULTIPLE, _side_by_side, neighbourhood

BF16_ULP = 2.0 ** -7  # bf16's relative spacing: a once-rounded result lies within half of it


def _directed_graph(n_atoms=40, n_edges=90, n_codes=6, seed=0):
    """A non-symmetric graph (molecules are symmetric, so they cannot tell a matrix from its transpose)."""
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n_atoms, (2, n_edges), generator=generator)
    codes = torch.randint(0, n_codes - 1, (n_edges,), generator=generator)
    return neighbourhood(edge_index, codes, n_atoms, n_codes, n_codes - 1)


def test_side_by_side_bags_are_the_matrix_a_beside_c():
    graph = _directed_graph()
    indices, offsets = _side_by_side(graph.adjacency, graph.codes)
    n_atoms, n_codes = graph.codes.shape
    dense = torch.zeros(n_atoms, n_atoms + n_codes)
    for row in range(n_atoms):
        for column in indices[offsets[row]:offsets[row + 1]].tolist():
            dense[row, column] += 1
    expected = torch.cat([graph.adjacency.to_dense(), graph.codes.to_dense()], dim=1)
    torch.testing.assert_close(dense, expected)


def test_bf16_bags_equal_the_fp32_sum_rounded_once_with_the_transposed_gradients():
    graph = _directed_graph()
    generator = torch.Generator().manual_seed(1)
    h = torch.randn(40, 16, generator=generator).bfloat16().float().requires_grad_()  # exact in bf16
    table = torch.randn(6, 16, generator=generator).bfloat16().float().requires_grad_()
    upstream = torch.randn(40, 16, generator=generator).bfloat16().float()
    expected = graph.aggregate(h, table)  # fp32 sparse products
    (expected * upstream).sum().backward()
    fp32_grads = h.grad.clone(), table.grad.clone()
    h.grad = table.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        summed = graph.aggregate(h, table)
    assert summed.dtype == torch.bfloat16
    (summed.float() * upstream).sum().backward()
    bound = expected.detach().abs() * BF16_ULP / 2 + 1e-6  # only the final rounding: sums of bf16 values, fp32 kept
    assert ((summed.float() - expected.detach()).abs() <= bound).all()
    for got, want in zip((h.grad, table.grad), fp32_grads):
        assert ((got - want).abs() <= want.abs() * BF16_ULP / 2 + 1e-6).all()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # prediction: no autograd, same sums
        torch.testing.assert_close(graph.aggregate(h, table), summed.detach(), rtol=0, atol=0)


def test_weighted_sums_keep_the_fp32_products_under_bf16():
    """GCN's normalized weights 1/sqrt(d_i d_j) would be rounded by a bf16 bag: those sums stay in fp32."""
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    graph = neighbourhood(edge_index, torch.zeros(4, dtype=torch.long), 3, 2, 1,
                          weights=torch.full((4,), 0.5), self_weights=torch.full((3,), 0.25))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        summed = graph.aggregate(torch.randn(3, 4).bfloat16(), torch.randn(2, 4))
    assert summed.dtype == torch.float32


@pytest.mark.parametrize("kind, normalize", [("gin", True), ("gcn", False)])
def test_encoder_under_bf16_follows_its_fp32_self(smiles_file, kind, normalize):
    """The whole encoder with bag sums (GIN; GCN without normalization) stays within bf16 round-off of fp32."""
    store = build_store(smiles_file, progress=False)
    batch = store.gather(np.arange(len(store)))
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(kind=kind, num_layers=3, emb_dim=32, feat_dim=24, proj_dim=12,
                                           gcn_normalize=normalize)).train()
    assert model.neighbourhood(batch).unit_weights
    fp32 = model.represent(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model.represent(batch)
    bf16.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.gnns.parameters())
    scale = fp32.detach().abs().max()
    assert (bf16.float() - fp32.detach()).abs().max() < 0.05 * scale


def test_padded_bf16_sums_add_only_rows_of_zeros_whose_gradients_drop_out():
    graph = _directed_graph(n_atoms=40)
    generator = torch.Generator().manual_seed(2)
    h = torch.randn(40, 16, generator=generator).requires_grad_()
    table = torch.randn(6, 16, generator=generator).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = graph.aggregate(h, table)
        padded = graph.aggregate(h, table, padded=True)
    assert padded.shape == (ROW_MULTIPLE, 16) and plain.shape == (40, 16)
    assert torch.equal(padded[:40], plain) and not padded[40:].any()
    upstream = torch.randn(ROW_MULTIPLE, 16, generator=generator)  # non-zero on the extra rows too
    (plain.float() * upstream[:40]).sum().backward()
    expected = h.grad.clone(), table.grad.clone()
    h.grad = table.grad = None
    (padded.float() * upstream).sum().backward()
    assert torch.equal(h.grad, expected[0]) and torch.equal(table.grad, expected[1])
    assert graph.aggregate(h, table, padded=True).shape == (40, 16)  # fp32: never padded


def test_gin_layer_under_bf16_drops_the_padding(monkeypatch):
    """The padded rows change no atom's output and no gradient (compared with padding switched off)."""
    import molssl.chem.nn.message_passing as message_passing
    from molssl.chem.data.featurizers import get_featurizer
    from molssl.chem.nn.encoders import GINLayer

    torch.manual_seed(0)
    layer = GINLayer(300, get_featurizer("molclr"))
    graph = _directed_graph(n_atoms=600, n_edges=1200, n_codes=15)  # >= 512 rows: the fused oneDNN products
    h = torch.randn(600, 300, requires_grad=True)
    results = []
    for multiple in (ROW_MULTIPLE, 1):
        monkeypatch.setattr(message_passing, "ROW_MULTIPLE", multiple)
        graph.__dict__.pop("_padded_bags", None)  # built again for this multiple
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(h, graph)
        assert out.shape == (600, 300)
        out.float().square().sum().backward()
        results.append((out.detach().float(), h.grad.clone(), layer.mlp[0].weight.grad.clone()))
        h.grad = None
        layer.zero_grad()
    for padded, plain in zip(*results):
        torch.testing.assert_close(padded, plain, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("weighted", [False, True])
def test_sums_by_kind_equal_sums_over_neighbours(weighted):
    """K @ t == A @ t[kinds], where several neighbours of an atom share a kind (K's weights are then sums), and K's
    backward pass (through its transpose) gives the gradient of the per-atom formulation."""
    generator = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, 40, (2, 90), generator=generator)
    codes = torch.randint(0, 5, (90,), generator=generator)
    weights = dict(weights=torch.rand(90, generator=generator), self_weights=torch.rand(40, generator=generator))
    graph = neighbourhood(edge_index, codes, 40, 6, 5, **(weights if weighted else {}))
    kinds = torch.randint(0, 4, (40,), generator=generator)
    by_kind = graph.by_kind(kinds, 4)
    assert by_kind.adjacency.shape == (40, 4) and by_kind.adjacency.values().max() > 1 - weighted
    rows = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    table = torch.randn(6, 7, dtype=torch.float64)
    dense_a, dense_c = graph.adjacency.to_dense().double(), graph.codes.to_dense().double()
    expected = dense_a @ rows[kinds] + dense_c @ table
    torch.testing.assert_close(by_kind.aggregate(rows.float(), table.float()).double(), expected, rtol=1e-5, atol=1e-5)
    grad = torch.randn(40, 7, dtype=torch.float64)
    (expected * grad).sum().backward()
    expected_grad, rows.grad = rows.grad, None
    (by_kind.aggregate(rows, table) * grad).sum().backward()
    torch.testing.assert_close(rows.grad.double(), expected_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("featurizer", ["molclr", "rich"])
def test_first_product_over_atom_kinds_equals_the_product_over_atoms(smiles_file, featurizer):
    """The first GIN product taken over the batch's distinct atoms (fp32 on the CPU) gives the outputs and gradients
    of the product over every atom, to fp32 rounding; masked atoms are kinds like any other. (At MolCLR's sizes both
    differ from a float64 reference by the same amount: notes of the thirty-eighth session.)"""
    from molssl.chem.data.featurizers import get_featurizer
    from molssl.chem.nn.augment import mask_atoms

    store = build_store(smiles_file, progress=False, featurizer=featurizer)
    spec = get_featurizer(featurizer)
    batch = mask_atoms(store.gather(np.arange(len(store))), 0.3, torch.Generator().manual_seed(0), spec.atom_mask)
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(num_layers=3, emb_dim=32, feat_dim=24, proj_dim=12,
                                           featurizer=featurizer)).train()
    graph = model.neighbourhood(batch)
    kinds, inverse = model._atom_kinds(batch.x)
    assert model._folds_first_product(batch, graph) and len(kinds) < batch.num_atoms
    assert torch.equal(kinds[inverse], batch.x)
    weights = torch.randn(batch.num_graphs, 24)
    results = []
    for fold in (True, False):
        model.zero_grad()
        with contextlib.nullcontext() if fold else per_atom_first_product():
            assert model._folds_first_product(batch, graph) == fold
            h = model.represent(batch)
        (h * weights).sum().backward()
        results.append((h.detach(), {name: p.grad.clone() for name, p in model.named_parameters()
                                     if p.grad is not None}))
    (h_fold, grads_fold), (h_atoms, grads_atoms) = results
    torch.testing.assert_close(h_fold, h_atoms, rtol=1e-5, atol=1e-5)
    assert grads_fold.keys() == grads_atoms.keys() and "gnns.0.mlp.0.weight" in grads_fold
    for name in grads_atoms:
        # as in tests/chem/nn/test_encoders.py: fp32 round-off through BatchNorm, on gradients of order 10
        torch.testing.assert_close(grads_fold[name], grads_atoms[name], rtol=1e-4, atol=2e-4, msg=name)


def test_first_product_is_taken_over_atoms_in_bf16_and_for_gcn(smiles_file):
    """The kinds path needs weights of 1 and fp32 (module docstring of molssl.chem.nn.encoders)."""
    batch = build_store(smiles_file, progress=False).gather(np.arange(3))
    gin, gcn = (MolecularEncoder(EncoderConfig(kind=kind, num_layers=2, emb_dim=16)) for kind in ("gin", "gcn"))
    assert gin._folds_first_product(batch, gin.neighbourhood(batch))
    assert not gcn._folds_first_product(batch, gcn.neighbourhood(batch))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not gin._folds_first_product(batch, gin.neighbourhood(batch))
