"""Quantile scaling of RDKit descriptors: ties, ends and constant columns, and its place in a saved model."""
import numpy as np
import pytest
import torch
from sklearn.preprocessing import QuantileTransformer

from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.nn.property_model import QUANTILE_KNOTS, PropertyModel, quantile_normal
from molssl.chem.serve.loading import pack_state, unpack_state
from molssl.chem.data.extras import get_extra


def knots_of(train: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.quantile(train, np.linspace(0, 1, QUANTILE_KNOTS), axis=0).T, dtype=torch.float32)


def test_inside_the_range_it_is_scikit_learns_quantile_transform():
    rng = np.random.default_rng(0)
    train = np.stack([rng.normal(size=400), rng.lognormal(size=400)], axis=1)
    inside = np.stack([rng.uniform(-1.5, 1.5, 300), rng.uniform(0.3, 3.0, 300)], axis=1)
    expected = QuantileTransformer(n_quantiles=QUANTILE_KNOTS, output_distribution="normal").fit(train).transform(inside)
    ours = quantile_normal(torch.as_tensor(inside, dtype=torch.float32), knots_of(train)).numpy()
    np.testing.assert_allclose(ours, expected, atol=2e-3)


def test_ties_take_the_middle_ends_are_bounded_and_constants_read_zero():
    train = np.stack([np.r_[np.zeros(80), np.ones(15), np.full(5, 2.0)],  # a sparse count
                      np.arange(100.0),                                      # spread out
                      np.full(100, 7.0)], axis=1)                           # constant on the training set
    values = torch.tensor([[0.0, -50.0, 7.0], [1.0, 49.5, 3.0], [2.0, 500.0, 9.0]])
    out = quantile_normal(values, knots_of(train)).numpy()
    # a zero shared by 80% of the molecules sits at the middle of its probabilities (0.4), not at the bottom
    assert out[0, 0] == pytest.approx(float(torch.special.ndtri(torch.tensor(0.40))), abs=0.02)
    assert out[0, 0] < out[1, 0] < out[2, 0]  # order is kept
    assert out[0, 1] == pytest.approx(-3.09, abs=0.01) and out[2, 1] == pytest.approx(3.09, abs=0.01)
    assert abs(out[1, 1]) < 0.02  # the training median maps to 0
    assert (out[:, 2] == 0).all()  # the head never saw the constant descriptor vary
    assert np.isfinite(out).all()


def test_a_quantile_model_keeps_exact_knots_through_the_zoos_int8_packing():
    model = PropertyModel(EncoderConfig(num_layers=2, emb_dim=8, feat_dim=8, proj_dim=4), ["y"], "regression",
                          features=("rdkit2d",), descriptor_scaling="quantile")
    rng = np.random.default_rng(1)
    width = get_extra("rdkit2d").width
    raw = rng.lognormal(size=(50, width))
    raw[3, 5] = np.nan  # a descriptor RDKit failed on: imputed with the median before the quantiles
    model.fit_feature_statistics(raw)
    assert torch.isfinite(model.descriptor_knots).all()
    assert (model.descriptor_knots.diff(dim=1) >= 0).all()
    assert model.describe()["descriptor_scaling"] == "quantile"
    restored = unpack_state(pack_state(model.state_dict()))
    assert torch.equal(restored["descriptor_knots"], model.descriptor_knots)
    with pytest.raises(ValueError, match="descriptor scaling"):
        PropertyModel(EncoderConfig(num_layers=2, emb_dim=8, feat_dim=8, proj_dim=4), ["y"], "regression",
                      features=("rdkit2d",), descriptor_scaling="minmax")
