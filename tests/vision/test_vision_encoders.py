"""ConvEncoder: pooled features are the global mean of the feature map, for images and clips."""
import pytest
import torch

from molssl.vision.encoders import ConvEncoder


@pytest.mark.parametrize("dims, shape, map_shape", [(2, (3, 1, 12, 12), (3, 8, 6, 6)),
                                                    (3, (2, 1, 4, 12, 12), (2, 8, 2, 6, 6))])
def test_features_are_the_pooled_feature_map(dims, shape, map_shape):
    torch.manual_seed(0)
    encoder = ConvEncoder(1, (4, 8), dims=dims).eval()
    x = torch.rand(shape)
    feature_map = encoder.feature_map(x)
    assert feature_map.shape == map_shape
    torch.testing.assert_close(encoder(x), feature_map.flatten(2).mean(2))
    assert encoder(x).shape == (shape[0], encoder.feature_dim)


def test_wrong_input_layout_names_the_expected_one():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) with C=1"):
        ConvEncoder(1, (4,)).feature_map(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="one stride per stage"):
        ConvEncoder(1, (4, 8), strides=(2,))
