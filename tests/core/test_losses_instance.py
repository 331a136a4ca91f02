"""InfoNCE against candidates, instance discrimination over a memory bank and ConVIRT's bidirectional loss,
each against a naive per-sample loop."""
import math

import pytest
import torch
import torch.nn.functional as F

from molssl.core.losses import bidirectional_info_nce, info_nce, instance_discrimination_loss


def _naive_term(query, candidates, positive, temperature, normalize=True):
    """-log(exp(s(q, c_pos) / T) / sum_c exp(s(q, c) / T)) for one query, written out."""
    score = (lambda a, b: float(F.cosine_similarity(a, b, dim=0))) if normalize else (lambda a, b: float(a @ b))
    exps = [math.exp(score(query, c) / temperature) for c in candidates]
    return -math.log(exps[positive] / sum(exps))


def test_info_nce_matches_a_naive_loop_with_and_without_normalization():
    g = torch.Generator().manual_seed(0)
    q, c = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    targets = torch.tensor([0, 6, 2, 2, 5])
    for normalize, temperature in ((True, 0.2), (False, 1.0)):
        naive = sum(_naive_term(q[i], c, int(targets[i]), temperature, normalize) for i in range(5)) / 5
        assert float(info_nce(q, c, targets, temperature, normalize)) == pytest.approx(naive, rel=1e-5)


def test_instance_discrimination_over_the_whole_bank_matches_a_naive_loop():
    g = torch.Generator().manual_seed(1)
    bank = F.normalize(torch.randn(10, 4, generator=g), dim=1)
    query = torch.randn(3, 4, generator=g, requires_grad=True)
    indices = torch.tensor([2, 9, 0])
    loss = instance_discrimination_loss(query, bank, indices, 0.07).detach()
    naive = sum(_naive_term(query[i].detach(), bank, int(indices[i]), 0.07) for i in range(3)) / 3
    assert float(loss) == pytest.approx(naive, rel=1e-5)
    bank.requires_grad_(True)
    instance_discrimination_loss(query, bank, indices, 0.07).backward()
    assert bank.grad is None and query.grad is not None  # the bank is a constant


def test_sampled_negatives_give_the_softmax_over_own_entry_and_those_negatives():
    g = torch.Generator().manual_seed(2)
    bank = F.normalize(torch.randn(12, 4, generator=g), dim=1)
    query = torch.randn(2, 4, generator=g)
    indices = torch.tensor([3, 7])
    negatives = torch.tensor([[0, 1, 5], [11, 3, 3]])
    loss = instance_discrimination_loss(query, bank, indices, 0.5, negatives)
    naive = sum(_naive_term(query[i], torch.cat([bank[indices[i]][None], bank[negatives[i]]]), 0, 0.5)
                for i in range(2)) / 2
    assert float(loss) == pytest.approx(naive, rel=1e-5)


def test_bidirectional_info_nce_is_convirts_weighted_pair_of_terms_and_symmetric_at_one_half():
    g = torch.Generator().manual_seed(3)
    images, texts = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    image_to_text = sum(_naive_term(images[i], texts, i, 0.1) for i in range(6)) / 6
    text_to_image = sum(_naive_term(texts[i], images, i, 0.1) for i in range(6)) / 6
    loss = bidirectional_info_nce(images, texts, 0.1, weight=0.75)
    assert float(loss) == pytest.approx(0.75 * image_to_text + 0.25 * text_to_image, rel=1e-5)
    symmetric = bidirectional_info_nce(images, texts, 0.1, 0.5)
    assert float(symmetric) == pytest.approx(float(bidirectional_info_nce(texts, images, 0.1, 0.5)), rel=1e-6)
    assert float(bidirectional_info_nce(images, texts, 0.1, 1.0)) == pytest.approx(image_to_text, rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        bidirectional_info_nce(images, texts[:4])
