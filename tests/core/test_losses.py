"""The vectorised losses of molssl.core.losses against naive per-anchor loops."""
import math

import pytest
import torch
import torch.nn.functional as F

from molssl.core.losses import NTXentLoss, byol_loss, info_nce_with_queue, nt_xent


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def naive_nt_xent(z1, z2, temperature, weights=None):
    """SimCLR's loss written anchor by anchor: -log exp(s_pos) / sum_{k != i} w_ik exp(s_ik)."""
    n = z1.shape[0]
    views = torch.cat([z1, z2]).double()
    total = 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        numerator = math.exp(_cos(views[i], views[partner]) / temperature)
        denominator = 0.0
        for k in range(2 * n):
            if k == i:
                continue
            w = 1.0 if k == partner or weights is None else float(weights[i % n, k % n])
            denominator += w * math.exp(_cos(views[i], views[k]) / temperature)
        total += -math.log(numerator / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_naive_loop(temperature):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    expected = naive_nt_xent(z1, z2, temperature)
    assert nt_xent(z1, z2, temperature).item() == pytest.approx(expected, rel=1e-5)
    assert NTXentLoss(temperature)(z1, z2).item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_with_negative_weights_matches_naive_loop():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    weights = torch.rand(5, 5, generator=g)
    weights[0, 3] = 0.0  # a zero weight drops that negative entirely
    expected = naive_nt_xent(z1, z2, 0.2, weights)
    assert nt_xent(z1, z2, 0.2, negative_weights=weights).item() == pytest.approx(expected, rel=1e-5)
    # weights differ from ones, so the result must differ from plain NT-Xent
    assert abs(expected - naive_nt_xent(z1, z2, 0.2)) > 1e-3


def test_nt_xent_all_ones_weights_is_plain_nt_xent():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    plain = nt_xent(z1, z2, 0.3)
    weighted = nt_xent(z1, z2, 0.3, negative_weights=torch.ones(4, 4))
    assert weighted.item() == pytest.approx(plain.item(), rel=1e-6)


def test_nt_xent_is_low_for_aligned_views_and_high_for_random_ones():
    g = torch.Generator().manual_seed(3)
    z = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    aligned = nt_xent(z, z, 0.1).item()
    shuffled = nt_xent(z, z[torch.randperm(8, generator=g)], 0.1).item()
    assert aligned < 0.5 < shuffled


def test_nt_xent_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="negative_weights"):
        nt_xent(torch.randn(3, 2), torch.randn(3, 2), negative_weights=torch.ones(2, 2))


def naive_info_nce(query, key, queue, temperature):
    total = 0.0
    for i in range(query.shape[0]):
        q = query[i].double()
        positive = math.exp(_cos(q, key[i].double()) / temperature)
        negatives = sum(math.exp(_cos(q, neg.double()) / temperature) for neg in queue)
        total += -math.log(positive / (positive + negatives))
    return total / query.shape[0]


def test_info_nce_with_queue_matches_naive_loop():
    g = torch.Generator().manual_seed(4)
    query, key, queue = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g), torch.randn(11, 8, generator=g)
    expected = naive_info_nce(query, key, queue, 0.2)
    assert info_nce_with_queue(query, key, queue, 0.2).item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_sends_no_gradient_to_keys_or_queue():
    g = torch.Generator().manual_seed(5)
    query = torch.randn(4, 6, generator=g, requires_grad=True)
    key = torch.randn(4, 6, generator=g, requires_grad=True)
    queue = torch.randn(7, 6, generator=g, requires_grad=True)
    info_nce_with_queue(query, key, queue, 0.2).backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    assert key.grad is None and queue.grad is None


def test_byol_loss_matches_naive_formula_and_stops_target_gradient():
    g = torch.Generator().manual_seed(6)
    prediction = torch.randn(5, 7, generator=g, requires_grad=True)
    target = torch.randn(5, 7, generator=g, requires_grad=True)
    expected = sum(2 - 2 * _cos(prediction[i].detach(), target[i].detach()) for i in range(5)) / 5
    loss = byol_loss(prediction, target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert prediction.grad.abs().sum() > 0 and target.grad is None


def test_byol_loss_range():
    x = torch.randn(3, 4)
    assert byol_loss(x, 2 * x).item() == pytest.approx(0.0, abs=1e-6)  # same direction
    assert byol_loss(x, -x).item() == pytest.approx(4.0, abs=1e-5)  # opposite direction
