"""Random overlay and random convolution: shapes, determinism, per-sample consistency across frames."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from molssl.rl.augment import Augmentation, overlay_images, random_conv, random_overlay


def _obs(n: int = 4, frames: int = 3, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3 * frames, size, size, generator=torch.Generator().manual_seed(seed)) * 255


def test_overlay_pool_is_deterministic_and_in_range():
    pool = overlay_images(12, count=5, seed=3)
    assert pool.shape == (5, 3, 12, 12)
    assert pool.min() >= 0 and pool.max() <= 255
    assert torch.equal(pool, overlay_images(12, count=5, seed=3))
    assert not torch.equal(pool, overlay_images(12, count=5, seed=4))


def test_random_overlay_blends_one_pool_image_per_sample():
    obs, pool = _obs(), overlay_images(12, count=6)
    out = random_overlay(obs, pool, alpha=0.5, generator=torch.Generator().manual_seed(0))
    assert out.shape == obs.shape
    assert torch.equal(random_overlay(obs, pool, 0.0), obs)
    full = random_overlay(obs, pool, alpha=1.0, generator=torch.Generator().manual_seed(0))
    for sample in full:
        frames = sample.view(3, 3, 12, 12)
        assert torch.equal(frames[0], frames[1]) and torch.equal(frames[0], frames[2])
        assert any(torch.allclose(frames[0], image) for image in pool)
    assert torch.allclose(out, 0.5 * obs + 0.5 * full)


def test_random_overlay_is_deterministic_given_a_generator():
    obs, pool = _obs(n=16), overlay_images(12, count=8)
    a = random_overlay(obs, pool, generator=torch.Generator().manual_seed(5))
    b = random_overlay(obs, pool, generator=torch.Generator().manual_seed(5))
    c = random_overlay(obs, pool, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_conv_matches_naive_per_sample_filtering():
    obs = _obs(n=3, frames=2)
    out = random_conv(obs, generator=torch.Generator().manual_seed(7))
    weight = torch.randn(9, 3, 3, 3, generator=torch.Generator().manual_seed(7))
    for i in range(3):
        for f in range(2):
            frame = F.pad(obs[i:i + 1, 3 * f:3 * f + 3] / 255, (1, 1, 1, 1), mode="replicate")
            want = torch.sigmoid(F.conv2d(frame, weight[3 * i:3 * i + 3])) * 255
            assert torch.allclose(out[i:i + 1, 3 * f:3 * f + 3], want, atol=1e-4)


def test_random_conv_shares_a_kernel_across_frames_but_not_samples():
    frame = _obs(n=1, frames=1)
    obs = frame.repeat(2, 3, 1, 1)  # two identical samples of three identical frames
    out = random_conv(obs, generator=torch.Generator().manual_seed(0))
    assert out.shape == obs.shape and out.min() >= 0 and out.max() <= 255
    assert torch.equal(out[0, :3], out[0, 3:6]) and torch.equal(out[0, :3], out[0, 6:])
    assert not torch.allclose(out[0], out[1])
    assert torch.equal(out, random_conv(obs, generator=torch.Generator().manual_seed(0)))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="stacked RGB"):
        random_conv(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="overlay images"):
        random_overlay(_obs(), torch.zeros(3, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmentation("crop", 12)


def test_augmentation_module_dispatches():
    obs = _obs()
    module = Augmentation("conv", 12)
    assert torch.equal(module(obs, torch.Generator().manual_seed(1)), random_conv(obs, torch.Generator().manual_seed(1)))
    assert "images" not in Augmentation("overlay", 12).state_dict()  # the pool is rebuilt, not checkpointed
