"""CVRL clip sampling and the temporally consistent video augmentation."""
import pytest
import torch

from molssl.video.augment import (ClipViews, VideoAugment, gather_clips, interval_weights, sample_clip_starts,
                                  to_clips)
from molssl.vision.augment import AugmentConfig

ALWAYS = AugmentConfig(crop_scale=(0.3, 0.6), flip_p=1.0, jitter_p=1.0, grayscale_p=1.0, blur_p=1.0)


@pytest.mark.parametrize("channels", [1, 3])
def test_every_frame_of_a_clip_gets_the_same_parameters(channels):
    torch.manual_seed(0)
    frame = torch.rand(4, channels, 1, 16, 16)
    clips = frame.repeat(1, 1, 6, 1, 1)  # six identical frames per clip
    out = VideoAugment((16, 16), channels, ALWAYS)(clips)
    assert out.shape == clips.shape
    # identical input frames stay identical: one crop/flip/jitter/grey/blur draw per clip
    torch.testing.assert_close(out, out[:, :, :1].expand_as(out))
    assert not torch.allclose(out[:, :, 0], frame[:, :, 0])  # and the augmentation did act
    # while different clips of the batch get different parameters
    same_clip = frame[:1].repeat(4, 1, 6, 1, 1)
    out = VideoAugment((16, 16), channels, ALWAYS)(same_clip)
    assert not torch.allclose(out[0], out[1])


def test_moving_content_is_cropped_at_the_same_place_in_every_frame():
    torch.manual_seed(1)
    frames = torch.zeros(2, 1, 5, 16, 16)
    for t in range(5):
        frames[:, 0, t, :, 6 + t] = 1.0  # a vertical bar moving right by one pixel per frame, mid-frame
    config = AugmentConfig(crop_scale=(0.8, 0.8), flip_p=0.0, jitter_p=0.0, blur_p=0.0)
    out = VideoAugment((16, 16), 1, config)(frames)
    # the same crop for all frames keeps the bar's motion uniform: equal column shifts between consecutive frames
    # (up to bilinear resampling; a crop drawn per frame would move by pixels, not fractions)
    centres = (out[:, 0].sum(dim=2) * torch.arange(16.0)).sum(-1) / out[:, 0].sum(dim=2).sum(-1).clamp_min(1e-6)
    steps = centres[:, 1:] - centres[:, :-1]
    torch.testing.assert_close(steps, steps[:, :1].expand_as(steps), atol=0.15, rtol=0)
    assert torch.all(steps > 0.5)


def test_interval_distribution_is_decreasing_linear():
    weights = interval_weights(4)
    assert weights.tolist() == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert interval_weights(2, c=10).tolist() == [11.0, 10.0, 9.0]
    with pytest.raises(ValueError, match="c must be"):
        interval_weights(4, c=2)


def test_clip_starts_follow_the_interval_distribution_and_fit():
    torch.manual_seed(0)
    first, second = sample_clip_starts(20000, frames=12, length=8)
    interval = second - first
    assert first.min() >= 0 and (second + 8).max() <= 12
    freq = torch.bincount(interval, minlength=5).float() / 20000
    expected = interval_weights(4).float() / interval_weights(4).sum()
    torch.testing.assert_close(freq, expected, atol=0.015, rtol=0)
    with pytest.raises(ValueError, match="do not fit"):
        sample_clip_starts(2, frames=4, length=5)


def test_gather_clips_and_layout():
    videos = torch.arange(2 * 6, dtype=torch.uint8).view(2, 6, 1, 1, 1).expand(2, 6, 1, 2, 2)
    clips = gather_clips(videos, torch.tensor([1, 3]), 3)
    assert clips[:, :, 0, 0, 0].tolist() == [[1, 2, 3], [9, 10, 11]]
    assert to_clips(clips).shape == (2, 1, 3, 2, 2)


def test_clip_views_are_two_augmented_clips():
    torch.manual_seed(0)
    videos = torch.randint(0, 256, (3, 10, 1, 12, 12), dtype=torch.uint8)
    view1, view2 = ClipViews(4, VideoAugment((12, 12), 1))(videos)
    assert view1.shape == view2.shape == (3, 1, 4, 12, 12)
    assert 0.0 <= float(view1.min()) and float(view1.max()) <= 1.0
    with pytest.raises(ValueError, match="float clips"):
        VideoAugment((12, 12), 1)(videos.permute(0, 2, 1, 3, 4))
