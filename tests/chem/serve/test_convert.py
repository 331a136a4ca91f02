import pytest
import torch
from typer.testing import CliRunner

from molssl.chem.nn.encoders import MolecularEncoder
from molssl.chem.serve.loading import load_encoder_file
from molssl.cli.main import app
from molssl.chem.data.batch import graphs_to_arrays
from molssl.chem.data.featurize import smiles_to_graph
from molssl.errors import MolsslError

LAYERS, EMB, FEAT = 3, 8, 12
SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "N[C@@H](C)C(=O)O", "C/C=C/Cl", "C#N"]


def molclr_state(kind: str, seed: int = 0) -> dict:
    """A state dict with MolCLR's names and shapes (ginet_molclr.py / gcn_molclr.py), random values."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    state = {"x_embedding1.weight": rand(119, EMB), "x_embedding2.weight": rand(3, EMB),
             "feat_lin.weight": rand(FEAT, EMB), "feat_lin.bias": rand(FEAT),
             "out_lin.0.weight": rand(FEAT, FEAT), "out_lin.0.bias": rand(FEAT),
             "out_lin.2.weight": rand(FEAT // 2, FEAT), "out_lin.2.bias": rand(FEAT // 2)}
    width = EMB if kind == "gin" else 1
    for i in range(LAYERS):
        state[f"gnns.{i}.edge_embedding1.weight"] = rand(5, width)
        state[f"gnns.{i}.edge_embedding2.weight"] = rand(3, width)
        if kind == "gin":
            state.update({f"gnns.{i}.mlp.0.weight": rand(2 * EMB, EMB), f"gnns.{i}.mlp.0.bias": rand(2 * EMB),
                          f"gnns.{i}.mlp.2.weight": rand(EMB, 2 * EMB), f"gnns.{i}.mlp.2.bias": rand(EMB)})
        else:
            state.update({f"gnns.{i}.weight": rand(EMB, EMB) * 0.3, f"gnns.{i}.bias": rand(EMB)})
        state.update({f"batch_norms.{i}.weight": rand(EMB), f"batch_norms.{i}.bias": rand(EMB),
                      f"batch_norms.{i}.running_mean": rand(EMB), f"batch_norms.{i}.running_var": rand(EMB).abs() + 0.5,
                      f"batch_norms.{i}.num_batches_tracked": torch.tensor(7)})
    return state


def reference_forward(state: dict, kind: str, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """MolCLR's forward in eval mode, written out: explicit self-loop edges, sum of (x_j + e_ij), per molecule."""
    x, edges, attr = batch.x, batch.edge_index, batch.edge_attr
    n = x.shape[0]
    loops = torch.arange(n)
    src = torch.cat([edges[0], loops])
    dst = torch.cat([edges[1], loops])
    attr = torch.cat([attr, torch.stack([torch.full((n,), 4), torch.zeros(n, dtype=torch.long)], 1)])
    h = state["x_embedding1.weight"][x[:, 0]] + state["x_embedding2.weight"][x[:, 1]]
    for i in range(LAYERS):
        e = state[f"gnns.{i}.edge_embedding1.weight"][attr[:, 0]] + state[f"gnns.{i}.edge_embedding2.weight"][attr[:, 1]]
        if kind == "gin":
            agg = torch.zeros_like(h)
            for s, d, ed in zip(src.tolist(), dst.tolist(), e):
                agg[d] += h[s] + ed
            hidden = torch.relu(agg @ state[f"gnns.{i}.mlp.0.weight"].T + state[f"gnns.{i}.mlp.0.bias"])
            h = hidden @ state[f"gnns.{i}.mlp.2.weight"].T + state[f"gnns.{i}.mlp.2.bias"]
        else:
            xw = h @ state[f"gnns.{i}.weight"]
            agg = torch.zeros_like(xw)
            for s, d, ed in zip(src.tolist(), dst.tolist(), e):
                agg[d] += xw[s] + ed  # MolCLR's message: x_j + edge_attr, no degree weights
            h = agg + state[f"gnns.{i}.bias"]
        mean, var = state[f"batch_norms.{i}.running_mean"], state[f"batch_norms.{i}.running_var"]
        h = (h - mean) / torch.sqrt(var + 1e-5) * state[f"batch_norms.{i}.weight"] + state[f"batch_norms.{i}.bias"]
        if i < LAYERS - 1:
            h = torch.relu(h)
    pooled = torch.stack([h[batch.batch == g].mean(0) for g in range(batch.num_graphs)])
    feat = pooled @ state["feat_lin.weight"].T + state["feat_lin.bias"]
    hidden = torch.relu(feat @ state["out_lin.0.weight"].T + state["out_lin.0.bias"])
    return feat, hidden @ state["out_lin.2.weight"].T + state["out_lin.2.bias"]


@pytest.mark.parametrize("kind", ["gin", "gcn"])
def test_converted_molclr_encoder_matches_reference(tmp_path, kind):
    state = molclr_state(kind)
    torch.save(state, tmp_path / "model.pth")
    result = CliRunner().invoke(app, ["convert", "molclr", str(tmp_path / "model.pth"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "padded from 3 to 4 rows" in result.output
    config, weights = load_encoder_file(tmp_path / "out" / "encoder.pt")
    assert (config.kind, config.num_layers, config.emb_dim, config.feat_dim, config.proj_dim) == (kind, LAYERS, EMB, FEAT,
                                                                                                  FEAT // 2)
    assert config.gcn_normalize is (kind == "gin")
    assert torch.equal(weights["x_embedding2.weight"][:3], state["x_embedding2.weight"])
    assert torch.equal(weights["x_embedding2.weight"][3], torch.zeros(EMB))
    encoder = MolecularEncoder(config)
    encoder.load_state_dict(weights)
    encoder.eval()
    batch = graphs_to_arrays([smiles_to_graph(s) for s in SMILES]).gather(torch.arange(len(SMILES)).numpy())
    with torch.no_grad():
        h, z = encoder(batch)
        h_ref, z_ref = reference_forward(state, kind, batch)
    assert torch.allclose(h, h_ref, atol=1e-4, rtol=1e-4)
    assert torch.allclose(z, z_ref, atol=1e-4, rtol=1e-4)


def test_convert_rejects_foreign_checkpoints(tmp_path):
    from molssl.chem.serve.convert import convert_molclr

    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(MolsslError, match="not a MolCLR"):
        convert_molclr(tmp_path / "other.pth", tmp_path / "encoder.pt")
    state = molclr_state("gin")
    state["gnns.1.mlp.0.weight"] = torch.zeros(3, EMB)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(MolsslError, match="gnns.1.mlp.0.weight has shape"):
        convert_molclr(tmp_path / "bad.pth", tmp_path / "encoder.pt")
    result = CliRunner().invoke(app, ["convert", "grover", str(tmp_path / "bad.pth"), str(tmp_path / "x")])
    assert result.exit_code != 0
