"""The image methods of issue 20 piece by piece: NPID, PIRL and Exemplar CNN on the memory bank / exemplar
classes, CPC's causal context and target indexing, MAE's masking, the context encoder's hole, colorization's
colour classes and rebalancing, RDKit depictions, and a few training steps on colour depictions."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from molssl.core.losses import info_nce, instance_discrimination_loss
from molssl.vision.augment import TwoViews
from molssl.vision.colorization import AB_BINS, GREY_BIN, quantize_ab, rebalancing_weights
from molssl.vision.cpc import CPC, RowCausalContext, patch_grid
from molssl.vision.depictions import LABELS, render_corpus
from molssl.vision.encoders import ConvEncoder
from molssl.vision.inpainting import ContextEncoder, central_mask
from molssl.vision.instance import NPID, PIRL, ExemplarCNN
from molssl.vision.mae import MAE, VisionTransformer, patchify, random_keep
from molssl.errors import MolsslError
from molssl.vision.data import load_mnist
from molssl.vision.pretrain import load_module, make_config, pretrain, split_data

CPU = torch.device("cpu")
DEMO_SMILES = Path(__file__).resolve().parents[2] / "data" / "demo_smiles.smi"


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny tensors: one intra-op thread (tests/conftest.py)."""


def _images(n=8, size=12, channels=1, seed=0):
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_npid_scores_against_the_whole_bank_and_updates_only_the_batch_entries():
    torch.manual_seed(0)
    model = NPID(ConvEncoder(1, (4, 8)), Identity(), bank_size=10, embed_dim=6)
    before = model.bank.features.clone()
    images, indices = _images(3), torch.tensor([1, 5, 7])
    loss, metrics = model((images, indices))
    z = model.image_embedding(images.float() / 255)
    torch.testing.assert_close(loss, instance_discrimination_loss(z, before, indices, 0.07))
    changed = (model.bank.features != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [1, 5, 7] and -1.0 <= metrics["bank_cos"] <= 1.0
    model.eval()
    frozen = model.bank.features.clone()
    model((images, indices))
    assert torch.equal(model.bank.features, frozen)  # evaluation does not update the bank


def test_npid_samples_negatives_when_the_bank_is_larger_than_asked():
    torch.manual_seed(0)
    model = NPID(ConvEncoder(1, (4,)), Identity(), bank_size=50, embed_dim=4, negatives=5)
    images, indices = _images(4), torch.arange(4)
    bank = model.bank.features.clone()
    torch.manual_seed(3)
    loss, _ = model((images, indices))
    torch.manual_seed(3)
    z = model.image_embedding(images.float() / 255)
    sampled = model.bank.sample_negatives(indices, 5)
    assert sampled.shape == (4, 5)
    torch.testing.assert_close(loss, instance_discrimination_loss(z, bank, indices, 0.07, sampled))


def test_pirl_mixes_the_jigsaw_and_image_terms_with_lambda():
    images, indices = _images(4, size=15), torch.tensor([0, 2, 4, 6])
    losses = {}
    for weight in (0.0, 0.5, 1.0):
        torch.manual_seed(0)
        model = PIRL(ConvEncoder(1, (4,)), TwoViews(Identity()), bank_size=8, embed_dim=4, jigsaw_weight=weight)
        torch.manual_seed(1)
        losses[weight], _ = model((images, indices))
    torch.testing.assert_close(losses[0.5], 0.5 * losses[0.0] + 0.5 * losses[1.0])
    torch.manual_seed(0)
    model = PIRL(ConvEncoder(1, (4,)), TwoViews(Identity()), bank_size=8, embed_dim=4)
    tiles = []
    model.encoder.register_forward_hook(lambda m, inputs, out: tiles.append(inputs[0].shape))
    model((images, indices))
    assert tiles == [torch.Size([4, 1, 15, 15]), torch.Size([36, 1, 4, 4])]  # the image, then its 9 tiles each


def test_exemplar_classifies_each_image_as_its_own_class():
    torch.manual_seed(0)
    model = ExemplarCNN(ConvEncoder(1, (4,)), Identity(), num_exemplars=20)
    assert model.classifier[-1].out_features == 20
    loss, metrics = model((_images(5), torch.tensor([0, 3, 19, 7, 7])))
    assert torch.isfinite(loss) and 0 <= metrics["acc"] <= 1
    with pytest.raises(ValueError, match="number of training images"):
        ExemplarCNN(ConvEncoder(1, (4,)), Identity())


def test_exemplar_can_train_on_a_seeded_subset_of_surrogate_classes(tmp_path):
    images = load_mnist().subset(torch.arange(0, 5000, 100))  # 50 digits
    config = make_config("exemplar", "mnist", epochs=2, batch_size=4, widths=(4,), options={"num_exemplars": 10})
    module, state = pretrain(config, tmp_path / "run", device=CPU, progress=False, train=images, log=lambda _: None)
    assert module.classifier[-1].out_features == 10 and state.step == 2 * (10 // 4)
    _, stored = load_module(tmp_path / "run" / "checkpoint.pt", CPU)
    assert stored.options["num_exemplars"] == 10
    with pytest.raises(MolsslError, match="num_exemplars must be between 2 and the 50 training images"):
        pretrain(make_config("exemplar", "mnist", options={"num_exemplars": 80}), tmp_path / "big", device=CPU,
                 train=images, progress=False)


def test_cpc_context_never_sees_the_rows_it_predicts():
    torch.manual_seed(0)
    context = RowCausalContext(3, 5, layers=3)
    z = torch.randn(2, 3, 6, 6, requires_grad=True)
    out = context(z)
    for row in range(6):
        grad, = torch.autograd.grad(out[:, :, row].sum(), z, retain_graph=True)
        assert grad[:, :, row + 1:].abs().sum() == 0, f"row {row} depends on rows below it"
        assert grad[:, :, row].abs().sum() > 0 and (row < 1 or grad[:, :, row - 1].abs().sum() > 0)


def test_cpc_loss_is_infonce_of_each_prediction_against_every_patch_of_the_batch():
    torch.manual_seed(0)
    model = CPC(ConvEncoder(1, (4,), norm="layer"), Identity(), patch_size=4, patch_stride=2, context_dim=6, max_offset=2)
    z = torch.randn(2, 4, 5, 5)
    loss, _ = model.loss_from_latents(z)
    context = model.context(z)
    candidates = z.permute(0, 2, 3, 1).reshape(-1, 4)
    terms = []
    for k, predictor in enumerate(model.predictors, start=1):
        prediction = predictor(context)
        rows = []
        for b in range(2):
            for i in range(5 - k):
                for j in range(5):
                    target = (b * 5 + i + k) * 5 + j
                    rows.append(F.cross_entropy((prediction[b, :, i, j] @ candidates.t())[None], torch.tensor([target])))
        terms.append(torch.stack(rows).mean())
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    assert patch_grid(torch.zeros(3, 1, 28, 28), 8, 4).shape == (3, 6, 6, 1, 8, 8)


def test_mae_masks_three_quarters_and_its_encoder_sees_only_visible_patches():
    kept, mask = random_keep(5, 49, 0.75, CPU)
    assert kept.shape == (5, 12) and mask.sum(dim=1).tolist() == [37] * 5
    assert all(not mask[b, kept[b]].any() for b in range(5))
    torch.manual_seed(0)
    model = MAE(VisionTransformer((28, 28), 1, patch_size=4, dim=16, depth=1, heads=2), decoder_dim=8, decoder_heads=2)
    lengths = []
    model.encoder.blocks.register_forward_hook(lambda m, inputs, out: lengths.append(inputs[0].shape[1]))
    images = torch.rand(2, 1, 28, 28)
    torch.manual_seed(5)
    first, mask = model.reconstruct(images)
    assert lengths == [12]
    hidden = images.clone()
    patches = patchify(hidden, 4)
    patches[mask] = torch.rand_like(patches[mask])  # change every masked pixel
    hidden = patches.view(2, 7, 7, 4, 4, 1).permute(0, 5, 1, 3, 2, 4).reshape(2, 1, 28, 28)
    torch.manual_seed(5)
    second, _ = model.reconstruct(hidden)
    torch.testing.assert_close(first, second)  # nothing of the masked patches reaches the encoder
    loss, _ = model(images)
    assert torch.isfinite(loss) and model.encoder(images).shape == (2, 16)


@pytest.mark.parametrize("kind", ["central", "random-blocks"])
def test_context_encoder_hides_its_holes_and_scores_only_them(kind):
    mask = central_mask(28, 28)
    assert int(mask.sum()) == 14 * 14 and mask[14, 14] and not mask[0, 0]
    torch.manual_seed(0)
    model = ContextEncoder(ConvEncoder(1, (4, 8), (2, 2)), mask=kind)
    images = torch.rand(3, 1, 28, 28)
    torch.manual_seed(1)
    masked, hidden = model.hide(images)
    assert hidden.shape == (3, 28, 28) and 0 < int(hidden[0].sum()) <= 14 * 14
    if kind == "random-blocks":
        assert not torch.equal(hidden[0], hidden[1])  # every image gets its own blocks
    changed = torch.where(hidden.unsqueeze(1), torch.rand_like(images), images)
    torch.manual_seed(1)
    torch.testing.assert_close(model.hide(changed)[0], masked)  # the encoder's input ignores the holes
    assert torch.equal(masked[~hidden.unsqueeze(1)], images[~hidden.unsqueeze(1)])
    loss, metrics = model(images)
    assert torch.isfinite(loss) and metrics["context_mse"] >= 0


def test_colour_classes_and_rebalancing_follow_zhang_et_al():
    ab = torch.tensor([[[[0.0, 44.0]], [[44.0, -101.0]]]])  # (1, 2, 1, 2): pixels (a, b) = (0, 44) and (44, -101)
    assert quantize_ab(ab).tolist() == [[[11 * AB_BINS + 15, 15 * AB_BINS + 1]]]  # nearest centres on a 10-grid
    counts = torch.zeros(AB_BINS ** 2)
    counts[GREY_BIN], counts[0], counts[100] = 9000.0, 10.0, 1.0
    weights = rebalancing_weights(counts)
    smoothed_p = counts / counts.sum()  # the 10-unit grid makes sigma-5 smoothing nearly the identity
    assert weights[100] > weights[0] > weights[GREY_BIN] > 0 and weights[5] == 0
    assert float((smoothed_p * weights).sum()) == pytest.approx(1.0, rel=0.02)


def test_depictions_are_coloured_labelled_and_cached(tmp_path):
    corpus = render_corpus(DEMO_SMILES, 12, 32)
    assert corpus.images.shape == (12, 3, 32, 32) and corpus.images.dtype == torch.uint8
    assert set(corpus.labels) == set(LABELS) and len(set(corpus.smiles)) == 12
    hue = corpus.images.float().std(dim=1)  # grey pixels have equal R, G, B
    assert (hue > 30).any(), "heteroatoms are drawn in colour"
    again = render_corpus(DEMO_SMILES, 12, 32)
    assert torch.equal(again.images, corpus.images) and again.smiles == corpus.smiles


def test_colorization_trains_a_few_steps_on_depictions_and_probes_per_label(tmp_path):
    config = make_config("colorization", str(DEMO_SMILES), image_size=(32, 32), max_images=40, epochs=2,
                         batch_size=8, widths=(4, 8))
    module, state = pretrain(config, tmp_path / "run", device=CPU, progress=False, log=lambda _: None)
    assert state.step == 8 and int((module.bin_counts > 0).sum()) > 1
    loaded, stored = load_module(tmp_path / "run" / "checkpoint.pt", CPU)
    assert torch.equal(loaded.bin_counts, module.bin_counts) and stored.channels == 3
    train, test = split_data(stored)
    assert len(train) == 32 and set(train.label_sets) == {"rings", "halogen", "sulfur"}


def test_info_nce_scores_unnormalized_predictions_like_cpc():
    q, c = torch.eye(3) * 10, torch.eye(3)
    assert float(info_nce(q, c, torch.arange(3), normalize=False)) < 1e-3
