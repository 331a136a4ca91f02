"""GraphMAE (Hou et al. 2022): the scaled cosine error, the re-masked decoder, training, and pretrain() end to end."""
import pytest
import torch
from torch.nn import functional as F

from molssl.chem.data.featurize_rich import RICH
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.nn.graphmae import GraphMAE, scaled_cosine_error
from molssl.chem.serve.loading import resolve_encoder
from molssl.chem.tasks.pretrain import ENCODER_FILE, PretrainConfig, build_objective
from molssl.errors import MolsslError
from training_helpers import assert_learns_fresh_masks_with_a_frozen_readout, pretrain_briefly, store_batch

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8, featurizer="rich")


@pytest.fixture
def batch(tmp_path, small_smiles):
    return store_batch(tmp_path, small_smiles, "graphmae")


def test_scaled_cosine_error_matches_the_normalized_formula():
    torch.manual_seed(0)
    pred, target = torch.randn(5, 7), torch.tensor([0, 3, 6, 2, 2])
    onehot = F.one_hot(target, 7).float()
    for alpha in (1.0, 2.0):
        expected = (1 - (F.normalize(pred, dim=1) * onehot).sum(1)) ** alpha
        torch.testing.assert_close(scaled_cosine_error(pred, target, alpha), expected)
    perfect = 3.0 * onehot
    torch.testing.assert_close(scaled_cosine_error(perfect, target), torch.zeros(5))


def test_the_decoder_sees_zeros_at_the_masked_atoms(batch):
    torch.manual_seed(0)
    encoder = MolecularEncoder(TINY)
    module = GraphMAE(encoder, 0.25, RICH.atom_mask)
    view, masked = module.mask(batch, torch.Generator().manual_seed(0))
    graph = encoder.neighbourhood(view)
    nodes = encoder.node_embeddings(view, graph)
    seen = {}
    module.decoder.conv.register_forward_pre_hook(lambda _m, args: seen.update(h=args[0]))  # returns None
    scores = module.decoder(nodes, graph, masked)
    assert scores.shape == (batch.num_atoms, RICH.atom_vocab[0])
    assert (seen["h"][masked] == 0).all() and (seen["h"][~masked] != 0).any(dim=1).all()
    # a masked atom's score depends on its neighbours only: changing its own embedding changes nothing
    changed = nodes.clone()
    changed[masked] += 5.0
    torch.testing.assert_close(module.decoder(changed, graph, masked), scores)


def test_loss_is_the_mean_scaled_cosine_error_of_the_masked_atom_types(batch):
    torch.manual_seed(0)
    module = GraphMAE(MolecularEncoder(TINY), 0.25, RICH.atom_mask)
    generator_state = torch.get_rng_state()
    loss, metrics = module(batch)
    torch.set_rng_state(generator_state)  # the same masks again
    view, masked = module.mask(batch)
    graph = module.encoder.neighbourhood(view)
    scores = module.decoder(module.encoder.node_embeddings(view, graph), graph, masked)[masked]
    expected = (1 - (F.normalize(scores, dim=1) * F.one_hot(batch.x[masked, 0], scores.shape[1])).sum(1)).mean()
    torch.testing.assert_close(loss, expected)
    assert metrics["accuracy"].item() == pytest.approx((scores.argmax(1) == batch.x[masked, 0]).float().mean().item())


def test_training_learns_fresh_masks_and_leaves_the_graph_readout_alone(batch):
    torch.manual_seed(0)
    assert_learns_fresh_masks_with_a_frozen_readout(GraphMAE(MolecularEncoder(TINY), 0.25, RICH.atom_mask), batch)


def test_under_a_normalized_gcn_the_decoder_still_sums_plainly(batch):
    encoder = MolecularEncoder(EncoderConfig(kind="gcn", num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8,
                                             featurizer="rich"))
    module = GraphMAE(encoder, 0.25, RICH.atom_mask)
    weighted = encoder.neighbourhood(batch)
    assert not weighted.unit_weights and module.decoder_graph(weighted, batch).unit_weights
    loss, _ = module(batch)
    loss.backward()
    assert encoder.gnns[0].weight.grad.abs().sum() > 0


def test_bad_settings_are_refused():
    encoder = MolecularEncoder(TINY)
    with pytest.raises(ValueError, match="rate"):
        GraphMAE(encoder, 0.0, RICH.atom_mask)
    with pytest.raises(ValueError, match="alpha"):
        GraphMAE(encoder, 0.25, RICH.atom_mask, alpha=0.5)
    with pytest.raises(ValueError, match="only the option 'alpha'"):
        build_objective(PretrainConfig(smiles="x", out="y", method="graphmae", method_options={"lambda1": 0.5},
                                       encoder=TINY))
    with pytest.raises(MolsslError, match="--mask-rate"):
        PretrainConfig(smiles="x", out="y", method="graphmae", mask_rate=0.0)


def test_pretrain_with_graphmae_saves_an_encoder_that_loads(tmp_path, small_smiles):
    summary, records = pretrain_briefly(tmp_path, small_smiles, "graphmae", TINY)
    assert summary["steps"] == 8 and records and all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    assert all(0.0 <= r["loss"] <= 2.0 for r in records)  # 1 - cosine lies in [0, 2]
    encoder, _ = resolve_encoder(str(tmp_path / "run" / ENCODER_FILE))
    assert encoder.config.featurizer == "rich"
