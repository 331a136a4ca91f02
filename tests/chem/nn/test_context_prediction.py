"""Context prediction (Hu et al. 2020): hop distances, contexts and anchors, the centre's embedding, the loss,
training, and pretrain() end to end."""
import numpy as np
import pytest
import torch
from rdkit import Chem
from torch.nn import functional as F

from molssl.chem.data.batch import induced_subgraph
from molssl.chem.nn.context_prediction import ContextPrediction, hop_distances, random_roots
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.serve.loading import resolve_encoder
from molssl.chem.tasks.pretrain import ENCODER_FILE, PretrainConfig, build_objective
from training_helpers import pretrain_briefly, store_batch, train_on

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8, featurizer="rich")
LONG = ["CCCCCCCCCCO", "c1ccccc1CCN(C)CC(=O)O", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1",
        "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "OCC1OC(O)C(O)C(O)C1O", "C", "CCO"]


@pytest.fixture
def batch(tmp_path):
    return store_batch(tmp_path, LONG, "contextpred")


def test_hop_distances_are_rdkits_topological_distances(batch):
    roots = random_roots(batch, torch.Generator().manual_seed(3))
    assert roots.shape == (batch.num_graphs,) and torch.equal(batch.batch[roots], torch.arange(batch.num_graphs))
    distance = hop_distances(batch, roots, max_hops=4)
    for g, smiles in enumerate(LONG):
        start, root = int(batch.ptr[g]), int(roots[g])
        expected = np.minimum(Chem.GetDistanceMatrix(Chem.MolFromSmiles(smiles))[root - start], 5)
        assert distance[start:int(batch.ptr[g + 1])].tolist() == expected.astype(int).tolist(), smiles


def test_the_induced_subgraph_keeps_the_bonds_between_kept_atoms(batch):
    keep = torch.arange(batch.num_atoms) % 3 != 0
    sub = induced_subgraph(batch, keep)
    old = torch.nonzero(keep).squeeze(1)
    src, dst = old[sub.edge_index]
    bonds = set(zip(batch.edge_index[0].tolist(), batch.edge_index[1].tolist()))
    assert sub.num_graphs == batch.num_graphs and torch.equal(sub.x, batch.x[keep])
    assert {(int(a), int(b)) for a, b in zip(src, dst)} == {(a, b) for a, b in bonds if keep[a] and keep[b]}
    assert torch.equal(sub.edge_index[0, 0::2], sub.edge_index[1, 1::2])  # both directions of a bond together
    assert torch.equal(sub.atoms_per_graph(), torch.bincount(batch.batch[keep], minlength=batch.num_graphs))


def test_a_context_is_its_molecules_ring_of_atoms_and_its_mean_over_the_anchors(batch):
    torch.manual_seed(0)
    module = ContextPrediction(MolecularEncoder(TINY)).eval()  # K = 2: context between 2 and 4 hops, anchors at 2
    roots = random_roots(batch, torch.Generator().manual_seed(1))
    with torch.no_grad():
        context, has = module.contexts(batch, roots)
        distance = hop_distances(batch, roots, 4)
        assert has.tolist() == [bool((distance[batch.batch == g] == 2).any()) for g in range(batch.num_graphs)]
        assert not has[LONG.index("C")] and has[LONG.index("CCCCCCCCCCO")]
        g = int(torch.nonzero(has)[2])  # one molecule alone: its context graph through the context encoder
        mine = (batch.batch == g) & (distance > 1) & (distance <= 4)
        nodes = module.context_encoder.node_embeddings(induced_subgraph(batch, mine))
        expected = nodes[distance[mine] == 2].mean(0)
        torch.testing.assert_close(context[int(has[:g].sum())], expected)


def test_the_centres_embedding_is_that_of_its_k_hop_substructure(batch):
    """Why the encoder may embed whole molecules: a K-layer GIN's output at an atom (BatchNorm fixed) equals the
    one computed on the atom's K-hop neighbourhood cut out of the molecule."""
    torch.manual_seed(0)
    encoder = MolecularEncoder(TINY).eval()
    for m in encoder.batch_norms:  # non-trivial fixed statistics
        m.running_mean.normal_()
        m.running_var.uniform_(0.5, 2.0)
    roots = random_roots(batch, torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = encoder.node_embeddings(batch)[roots]
        within = hop_distances(batch, roots, 2) <= 2
        sub = induced_subgraph(batch, within)
        cut = encoder.node_embeddings(sub)[torch.cumsum(within, 0)[roots] - 1]
        torch.testing.assert_close(whole, cut)
        near = hop_distances(batch, roots, 1) <= 1  # one hop less does change it
        assert not torch.allclose(whole, encoder.node_embeddings(induced_subgraph(batch, near))[torch.cumsum(near, 0)[roots] - 1])


def test_loss_is_bce_of_own_and_previous_molecules_contexts(batch):
    torch.manual_seed(0)
    module = ContextPrediction(MolecularEncoder(TINY))
    loss, metrics = module(batch, torch.Generator().manual_seed(5))
    roots = random_roots(batch, torch.Generator().manual_seed(5))
    centres = module.encoder.node_embeddings(batch)[roots]
    context, has = module.contexts(batch, roots)
    centres = centres[has]
    positive, negative = (centres * context).sum(1), (centres * context.roll(1, 0)).sum(1)
    expected = (F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive))
                + F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative)))
    torch.testing.assert_close(loss, expected)
    assert metrics["with_context"].item() == pytest.approx(has.float().mean().item())
    assert metrics["accuracy"].item() == pytest.approx(((positive > 0).sum() + (negative < 0).sum()).item()
                                                       / (2 * len(positive)))


def test_molecules_without_context_sit_out_and_a_batch_of_them_gives_zero(tmp_path):
    module = ContextPrediction(MolecularEncoder(TINY))
    loss, metrics = module(store_batch(tmp_path, ["C", "[Na+].[Cl-]", "C#N"], "contextpred"))
    assert loss.item() == 0.0 and metrics["with_context"].item() == 0.0
    loss.backward()  # still a graph to go back through


def test_training_tells_contexts_apart_and_leaves_the_readouts_alone(batch):
    torch.manual_seed(0)
    module = ContextPrediction(MolecularEncoder(TINY))
    frozen = {n: p.clone() for n, p in module.named_parameters() if ".feat_lin" in n or ".head" in n}
    assert frozen and not any(p.requires_grad for n, p in module.named_parameters() if n in frozen)
    history = train_on(module, batch, steps=60, lr=1e-2)
    assert np.mean([loss.item() for loss, _ in history[-10:]]) < 0.5 * history[0][0].item()
    assert all(torch.equal(p, frozen[n]) for n, p in module.named_parameters() if n in frozen)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="one hop"):
        ContextPrediction(MolecularEncoder(TINY), context_size=0)
    with pytest.raises(ValueError, match="only the option 'context_size'"):
        build_objective(PretrainConfig(smiles="x", out="y", method="contextpred", method_options={"alpha": 1.0},
                                       encoder=TINY))


def test_pretrain_with_context_prediction_saves_an_encoder_that_loads(tmp_path):
    summary, records = pretrain_briefly(tmp_path, LONG, "contextpred", TINY)
    assert summary["steps"] > 0 and records and all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    assert all(0.0 <= r["with_context"] <= 1.0 for r in records)
    encoder, _ = resolve_encoder(str(tmp_path / "run" / ENCODER_FILE))
    assert encoder.config.featurizer == "rich" and encoder.config.num_layers == 2
    assert not any(key.startswith("context_encoder") for key in encoder.state_dict())
