import pytest
import torch

from molssl.audio.augment import freq_mask, freq_shift, mix_with_other, random_crop_views, time_mask


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crops_are_contiguous_slices_of_their_own_clip():
    clips = torch.arange(8 * 100, dtype=torch.float32).view(8, 100)
    a, b = random_crop_views(clips, 30, gen(0))
    assert a.shape == b.shape == (8, 30)
    for crop in (a, b):
        start = crop[:, 0] - clips[:, 0]
        assert torch.all((start >= 0) & (start <= 70))
        assert torch.equal(crop, clips[torch.arange(8)[:, None], start.long()[:, None] + torch.arange(30)])
    assert not torch.equal(a, b)  # two different times


def test_crops_are_reproducible_and_cover_all_start_times():
    clips = torch.arange(2000 * 10, dtype=torch.float32).view(2000, 10)
    a1, b1 = random_crop_views(clips, 7, gen(3))
    a2, b2 = random_crop_views(clips, 7, gen(3))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert set((a1[:, 0] - clips[:, 0]).long().tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="does not fit"):
        random_crop_views(clips, 11)


def test_mixing_is_a_convex_combination_with_one_other_clip():
    x = torch.eye(6)
    mixed = mix_with_other(x, 0.4, gen(1))
    assert mixed.shape == x.shape
    assert torch.allclose(mixed.sum(dim=1), torch.ones(6))
    own = mixed.diagonal()
    assert torch.all((own >= 0.6) & (own <= 1.0))
    partners = (mixed - torch.diag(own)).argmax(dim=1)
    offset = int(partners[0])  # one offset for the whole batch, never the clip itself
    assert offset != 0 and torch.equal(partners, (torch.arange(6) + offset) % 6)
    assert torch.equal(mix_with_other(x, 0.4, gen(1)), mixed)
    assert torch.equal(mix_with_other(x[:1], 0.4, gen(1)), x[:1])
    assert torch.equal(mix_with_other(x, 0.0, gen(1)), x)
    with pytest.raises(ValueError, match="max_ratio"):
        mix_with_other(x, 1.5)


@pytest.mark.parametrize("shape", [(64, 50), (64, 8, 50)])
def test_time_mask_zeros_one_short_contiguous_span_per_example(shape):
    x = torch.ones(shape)
    out = time_mask(x, 10, generator=gen(0))
    assert out.shape == x.shape
    masked = (out == 0).reshape(shape[0], -1, shape[-1]).all(dim=1)  # (B, T): whole column masked
    assert torch.equal((out == 0), masked.view(shape[0], *([1] * (len(shape) - 2)), shape[-1]).expand(shape))
    widths = masked.sum(dim=1)
    assert widths.max() <= 10 and widths.max() > 0
    for row in masked:
        idx = torch.nonzero(row).flatten()
        if len(idx):
            assert int(idx[-1] - idx[0] + 1) == len(idx)
    assert torch.equal(time_mask(x, 10, generator=gen(0)), out)
    assert torch.equal(time_mask(x, 0, generator=gen(0)), x)


def test_freq_mask_masks_whole_bands():
    spec = torch.randn(32, 16, 20)
    out = freq_mask(spec, 5, fill=-7.0, generator=gen(2))
    band = (out == -7.0).all(dim=2)  # (B, F)
    assert torch.equal(out == -7.0, band[:, :, None].expand_as(out))
    assert band.sum(dim=1).max() <= 5 and band.any()
    assert torch.equal(out[~band], spec[~band])
    with pytest.raises(ValueError, match="batch, freq, time"):
        freq_mask(torch.zeros(4, 10), 2)


def test_freq_shift_moves_bins_and_fills_the_gap():
    n_freq = 12
    spec = torch.arange(n_freq, dtype=torch.float32)[None, :, None].expand(300, n_freq, 5).clone()
    out = freq_shift(spec, 3, fill=-1.0, generator=gen(4))
    shifts = set()
    for b in range(300):
        column = out[b, :, 0]
        valid = column >= 0
        shift = int((torch.arange(n_freq)[valid] - column[valid]).unique().item())  # out[f] = in[f - s]
        shifts.add(shift)
        assert int((~valid).sum()) == abs(shift)
        assert torch.equal(out[b], out[b, :, :1].expand(n_freq, 5))
    assert shifts == {-3, -2, -1, 0, 1, 2, 3}
    assert torch.equal(freq_shift(spec, 3, fill=-1.0, generator=gen(4)), out)
    assert torch.equal(freq_shift(spec, 0), spec)
