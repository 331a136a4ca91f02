"""The fused CPU linear layer (bias and ReLU inside oneDNN's product) gives ``nn.Linear`` (+ ReLU)'s outputs and
gradients, in fp32 and under bf16 autocast, in both weight-gradient layouts, and falls back where it cannot run."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import molssl.core.fused_linear as fused_linear
from molssl.core.fused_linear import fused_available, linear


def _outputs_and_grads(layers, x, relu, fused, autocast):
    for p in (x, *(q for layer in layers for q in layer.parameters())):
        p.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        h = x
        for layer in layers:
            h = linear(h, layer, relu) if fused else (F.relu(layer(h)) if relu else layer(h))
    (h.float() ** 2).sum().backward()
    return h.detach().float(), [p.grad.clone() for p in (x, *(q for layer in layers for q in layer.parameters()))]


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_fused_linear_matches_nn_linear(autocast, relu):
    torch.manual_seed(0)
    layers = [nn.Linear(24, 48), nn.Linear(48, 24), nn.Linear(24, 16, bias=False)]  # wider, narrower, no bias
    x = torch.randn(600, 24, requires_grad=True)
    assert fused_available(x) == fused_linear.kernel_present() and not fused_available(x[:100])
    out, grads = _outputs_and_grads(layers, x, relu, True, autocast)
    ref, ref_grads = _outputs_and_grads(layers, x, relu, False, autocast)
    tolerance = 2e-2 if autocast else 1e-5  # bf16 keeps ~3 digits; the products may add in another order
    assert out.dtype == ref.dtype and torch.allclose(out, ref, rtol=tolerance, atol=tolerance)
    for found, expected in zip(grads, ref_grads):
        assert found.dtype == expected.dtype and found.shape == expected.shape
        assert torch.allclose(found, expected, rtol=tolerance, atol=tolerance * expected.abs().max().item())


def test_without_the_kernel_it_is_nn_linear():
    layer, x = nn.Linear(8, 4), torch.randn(600, 8)
    present = fused_linear.kernel_present()
    with fused_linear.unfused():
        assert not fused_linear.kernel_present() and not fused_available(x)
        assert torch.equal(linear(x, layer, relu=True), F.relu(layer(x)))
    assert fused_linear.kernel_present() == present  # restored after the block
    assert not fused_available(torch.randn(600, 8, dtype=torch.float64))  # dtypes oneDNN is not asked for
