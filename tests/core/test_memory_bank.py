"""The memory bank of NPID / PIRL: EMA updates of unit vectors, and negatives drawn without the own entry."""
import pytest
import torch
import torch.nn.functional as F

from molssl.core.memory_bank import MemoryBank


def test_update_is_a_normalized_moving_average_of_the_given_rows_only():
    torch.manual_seed(0)
    bank = MemoryBank(6, 4, momentum=0.5)
    before = bank.features.clone()
    features = torch.randn(2, 4, requires_grad=True)
    bank.update(torch.tensor([1, 4]), features)
    for row, new in zip((1, 4), features.detach()):
        expected = F.normalize(0.5 * before[row] + 0.5 * F.normalize(new, dim=0), dim=0)
        torch.testing.assert_close(bank.features[row], expected)
    untouched = [0, 2, 3, 5]
    assert torch.equal(bank.features[untouched], before[untouched])
    assert torch.allclose(bank.features.norm(dim=1), torch.ones(6))
    assert not bank.features.requires_grad


def test_momentum_zero_replaces_the_entry():
    bank = MemoryBank(3, 2, momentum=0.0)
    bank.update(torch.tensor([2]), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(bank.features[2], torch.tensor([0.6, 0.8]))


def test_negatives_never_include_the_own_entry_and_cover_the_others_uniformly():
    bank = MemoryBank(5, 3)
    indices = torch.tensor([0, 2, 4])
    generator = torch.Generator().manual_seed(1)
    draws = bank.sample_negatives(indices, 20_000, generator)
    assert draws.shape == (3, 20_000)
    for own, row in zip(indices.tolist(), draws):
        assert own not in row.tolist() and row.min() >= 0 and row.max() <= 4
        counts = torch.bincount(row, minlength=5).float() / row.numel()
        others = [i for i in range(5) if i != own]
        assert torch.allclose(counts[others], torch.full((4,), 0.25), atol=0.015)


def test_bank_checks_its_arguments_and_is_checkpointed():
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(4, 2, momentum=1.0)
    with pytest.raises(ValueError, match="at least 2 entries"):
        MemoryBank(1, 2)
    bank = MemoryBank(4, 2)
    with pytest.raises(ValueError, match="indices"):
        bank.update(torch.tensor([0]), torch.zeros(2, 2))
    assert "features" in bank.state_dict() and len(bank) == 4
