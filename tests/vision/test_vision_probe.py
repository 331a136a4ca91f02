"""Frozen-feature evaluation as images use it: core.probe's k-NN against a naive vote and linear probe, and
vision's feature extraction."""
import pytest
import torch

from molssl.core.probe import knn_accuracy, linear_probe_accuracy, margin_cells, probe_features
from molssl.vision.encoders import ConvEncoder
from molssl.vision.features import extract_features


def _clusters(n_per_class=30, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(3) * 4
    x = torch.cat([c + noise * torch.randn(n_per_class, 3, generator=g) for c in centres])
    return x, torch.arange(3).repeat_interleave(n_per_class)


def test_separable_clusters_are_classified_perfectly():
    train_x, train_y = _clusters(seed=0)
    test_x, test_y = _clusters(seed=1)
    scores = probe_features(train_x, train_y, test_x, test_y, knn_k=5)
    assert scores == {"linear": 1.0, "knn": 1.0}


def test_knn_matches_naive_similarity_vote():
    g = torch.Generator().manual_seed(2)
    train_x, train_y = torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    test_x, test_y = torch.randn(25, 4, generator=g), torch.randint(0, 3, (25,), generator=g)
    correct = 0
    for x, y in zip(test_x, test_y):
        sims = torch.nn.functional.cosine_similarity(train_x, x[None], dim=1)
        top = sims.topk(7).indices
        votes = torch.zeros(3)
        for i in top:
            votes[train_y[i]] += max(float(sims[i]), 0.0) + 1e-6
        correct += int(votes.argmax() == y)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=7) == pytest.approx(correct / 25)


def test_random_labels_are_at_chance_for_the_linear_probe():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(400, 8, generator=g)
    y = torch.randint(0, 2, (400,), generator=g)
    assert abs(linear_probe_accuracy(x[:300], y[:300], x[300:], y[300:]) - 0.5) < 0.15


def test_extract_features_is_batched_eval_mode_and_restores_mode():
    torch.manual_seed(0)
    encoder = ConvEncoder(1, (4, 8))
    images = torch.randint(0, 256, (10, 1, 9, 9), dtype=torch.uint8)
    encoder.train()
    feats = extract_features(encoder, images, torch.device("cpu"), batch_size=3)
    assert feats.shape == (10, 8) and encoder.training
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(feats, encoder(images.float() / 255))


def test_margin_cells_average_over_seeds_and_count_wins():
    cells = margin_cells([0.80, 0.90, 0.70], [0.85, 0.88, 0.80])
    assert cells == "0.800 | 0.843 | +0.043 | +0.050, -0.020, +0.100 (2/3)"
    with pytest.raises(ValueError, match="one random-init and one trained score per seed"):
        margin_cells([0.8, 0.9], [0.85])
