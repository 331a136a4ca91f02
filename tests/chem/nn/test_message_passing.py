"""The bf16 neighbourhood sum as embedding bags (molssl.chem.nn.message_passing) against the fp32 sparse products."""
import numpy as np
import pytest
import torch

from molssl.chem.data.store import build_store
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
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
