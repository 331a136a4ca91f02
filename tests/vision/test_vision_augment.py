"""kornia view augmentations: shapes, ranges, randomness, colour and grey images of any size."""
import pytest
import torch

from molssl.vision.augment import AugmentConfig, ImageAugment, TwoViews, blur_kernel_size
from molssl.vision.data import load_digits


@pytest.fixture(scope="module")
def photos():
    from sklearn.datasets import load_sample_images

    images = torch.tensor(load_sample_images().images[0]).permute(2, 0, 1)[None]  # (1, 3, 427, 640)
    return torch.nn.functional.interpolate(images.float() / 255, scale_factor=0.25).clamp(0, 1)


def test_colour_views_keep_size_and_range_and_differ(photos):
    torch.manual_seed(0)
    augment = ImageAugment(photos.shape[-2:], 3)
    batch = photos.repeat(4, 1, 1, 1)
    out = augment(batch)
    assert out.shape == batch.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert not torch.allclose(out[0], out[1])  # per-sample parameters


def test_grey_views_on_tiny_images():
    torch.manual_seed(0)
    digits = load_digits().images[:16]
    v1, v2 = TwoViews(ImageAugment((8, 8), 1))(digits)
    assert v1.shape == (16, 1, 8, 8) and v1.dtype == torch.float32
    assert not torch.allclose(v1, v2)


def test_identity_config_leaves_images_unchanged():
    config = AugmentConfig(crop_scale=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)
    x = torch.rand(3, 3, 10, 12)
    augment = ImageAugment((10, 12), 3, config)
    augment.ops[0].ratio = (12 / 10, 12 / 10)  # the full-image crop has the image's own aspect ratio
    torch.testing.assert_close(augment(x), x, atol=1e-5, rtol=0)


def test_seeded_augmentation_is_reproducible():
    x = torch.rand(4, 1, 16, 16)
    augment = ImageAugment((16, 16), 1)
    torch.manual_seed(5)
    a = augment(x)
    torch.manual_seed(5)
    torch.testing.assert_close(augment(x), a)


def test_bad_inputs_are_rejected():
    augment = ImageAugment((8, 8), 1)
    with pytest.raises(ValueError, match="float images"):
        augment(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="1- or 3-channel"):
        ImageAugment((8, 8), 2)
    with pytest.raises(ValueError, match="at least 2x2"):
        ImageAugment((1, 8), 1)


@pytest.mark.parametrize("size, kernel", [((8, 8), 3), ((28, 28), 3), ((64, 96), 7), ((224, 224), 23)])
def test_blur_kernel_is_odd_and_about_a_tenth(size, kernel):
    assert blur_kernel_size(size) == kernel
