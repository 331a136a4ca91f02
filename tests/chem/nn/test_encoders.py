import numpy as np
import pytest
import torch
from torch_geometric.utils import scatter

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.data.featurize import NUM_BOND_DIRECTIONS, SELF_LOOP_BOND
from molssl.chem.data.store import build_store


@pytest.fixture
def batch(smiles_file):
    store = build_store(smiles_file, progress=False)
    return store.gather(np.arange(len(store)))


def _reference_forward(model, batch):
    """MolCLR's formulation: explicit self-loop edges, two bond-embedding lookups, scatter-add."""
    n = batch.num_atoms
    loops = torch.arange(n)
    edge_index = torch.cat([batch.edge_index, torch.stack([loops, loops])], dim=1)
    edge_attr = torch.cat([batch.edge_attr, torch.tensor([[SELF_LOOP_BOND, 0]]).repeat(n, 1)])
    h = model.x_embedding1(batch.x[:, 0]) + model.x_embedding2(batch.x[:, 1])
    for i, (conv, norm) in enumerate(zip(model.gnns, model.batch_norms)):
        if model.config.kind == "gin":
            e = conv.edge_embedding1(edge_attr[:, 0]) + conv.edge_embedding2(edge_attr[:, 1])
            h = conv.mlp(scatter(h[edge_index[0]] + e, edge_index[1], dim=0, dim_size=n, reduce="sum"))
        else:
            e = conv.bonds.edge_embedding1(edge_attr[:, 0]) + conv.bonds.edge_embedding2(edge_attr[:, 1])
            xw = h @ conv.weight
            deg = scatter(torch.ones(edge_index.shape[1]), edge_index[1], dim=0, dim_size=n, reduce="sum")
            c = deg[edge_index[0]].rsqrt() * deg[edge_index[1]].rsqrt() if conv.normalize else torch.ones(len(e))
            h = scatter(c[:, None] * (xw[edge_index[0]] + e), edge_index[1], dim=0, dim_size=n) + conv.bias
        h = norm(h)
        if i < len(model.gnns) - 1:
            h = torch.relu(h)
    pooled = scatter(h, batch.batch, dim=0, dim_size=batch.num_graphs, reduce="mean")
    return model.feat_lin(pooled)


@pytest.mark.parametrize("kind, normalize", [("gin", True), ("gcn", True), ("gcn", False)])
def test_lean_message_passing_equals_reference(batch, kind, normalize):
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(kind=kind, num_layers=3, emb_dim=32, feat_dim=24, proj_dim=12,
                                           gcn_normalize=normalize)).eval()
    with torch.no_grad():
        h, z = model(batch)
        expected = _reference_forward(model, batch)
    assert h.shape == (batch.num_graphs, 24) and z.shape == (batch.num_graphs, 12)
    torch.testing.assert_close(h, expected, rtol=1e-4, atol=1e-5)
    assert NUM_BOND_DIRECTIONS == 3


@pytest.mark.parametrize("kind, normalize", [("gin", True), ("gcn", True), ("gcn", False)])
def test_lean_message_passing_gradients_equal_reference(batch, kind, normalize):
    """The sparse products' own backward (transposes built once per batch) gives autograd's gradients."""
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(kind=kind, num_layers=3, emb_dim=32, feat_dim=24, proj_dim=12,
                                           gcn_normalize=normalize)).train()
    weights = torch.randn(batch.num_graphs, 24)
    (model.represent(batch) * weights).sum().backward()
    lean = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    (_reference_forward(model, batch) * weights).sum().backward()
    reference = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert lean.keys() == reference.keys() and any(name.startswith("gnns.0.") for name in lean)
    for name in lean:
        # fp32 round-off through BatchNorm: up to ~5e-5 on gradients of order 10 (the same with torch.sparse.mm)
        torch.testing.assert_close(lean[name], reference[name], rtol=1e-4, atol=2e-4, msg=name)


def test_aggregate_backward_uses_the_transposes():
    """On non-symmetric matrices (molecular graphs are symmetric, so the encoder tests cannot tell)."""
    from molssl.chem.nn.message_passing import _Aggregate
    generator = torch.Generator().manual_seed(0)
    adjacency = torch.randn(5, 5, generator=generator) * (torch.rand(5, 5, generator=generator) > 0.5)
    codes = torch.randn(5, 3, generator=generator) * (torch.rand(5, 3, generator=generator) > 0.5)
    h = torch.randn(5, 4, generator=generator, requires_grad=True)
    table = torch.randn(3, 4, generator=generator, requires_grad=True)
    upstream = torch.randn(5, 4, generator=generator)
    csr = lambda m: m.contiguous().to_sparse_csr()  # noqa: E731
    out = _Aggregate.apply(csr(adjacency), csr(adjacency.t()), csr(codes), csr(codes.t()), h, table)
    (out * upstream).sum().backward()
    torch.testing.assert_close(out, adjacency @ h + codes @ table)
    torch.testing.assert_close(h.grad, adjacency.t() @ upstream)
    torch.testing.assert_close(table.grad, codes.t() @ upstream)


def test_sparse_product_ignores_the_uninitialized_result():
    """``beta=0`` must not read the result buffer: NaNs left there by the allocator cannot leak in."""
    from molssl.chem.nn.message_passing import _product_into_result
    dense = torch.randn(3, 4)
    sparse = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.0]]).to_sparse_csr()
    out = torch.full((3, 4), float("nan"))
    torch.addmm(out, sparse, dense, beta=0, out=out)
    torch.testing.assert_close(out, sparse.to_dense() @ dense)
    torch.testing.assert_close(_product_into_result(sparse, dense), sparse.to_dense() @ dense)


def test_inference_builds_no_transposes_and_gives_the_same_output(batch):
    """Under ``torch.no_grad`` (prediction) the backward-pass transposes are not built; the output is the same."""
    torch.manual_seed(0)
    model = MolecularEncoder(EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)).eval()
    with torch.no_grad():
        graph = model.neighbourhood(batch)
        inferred = model.represent(batch)
    assert graph.adjacency_t is None and graph.codes_t is None
    assert model.neighbourhood(batch).adjacency_t is not None  # training builds them
    torch.testing.assert_close(inferred, model.represent(batch).detach())


def test_graphs_do_not_interact(batch, smiles_file):
    store = build_store(smiles_file, progress=False)
    model = MolecularEncoder(EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)).eval()
    with torch.no_grad():
        together = model.represent(batch)
        alone = torch.cat([model.represent(store.gather(np.array([i]))) for i in range(batch.num_graphs)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_default_config_is_molclr_sized():
    model = MolecularEncoder()
    assert model.config.num_layers == 5 and model.config.emb_dim == 300
    assert model.feat_lin.out_features == 512 and model.head.net[-1].out_features == 256
    assert model.gnns[0].mlp[0].out_features == 600


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="encoder must be"):
        EncoderConfig(kind="gat")
