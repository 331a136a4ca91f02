"""Under bf16 autocast the contrastive losses still compute (and return) fp32."""
import pytest
import torch

from molssl.core.losses import byol_loss, info_nce_with_queue, multi_positive_nt_xent, nt_xent


def _inputs():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    return z1.bfloat16(), z2.bfloat16()  # what an encoder returns under autocast


@pytest.mark.parametrize("loss", [
    lambda a, b: nt_xent(a, b, 0.1),
    lambda a, b: nt_xent(a, b, 0.1, negative_weights=torch.full((16, 16), 0.7)),
    lambda a, b: multi_positive_nt_xent(a[:8], b, torch.arange(16) % 8, 0.1),
    lambda a, b: info_nce_with_queue(a, b, torch.randn(40, 32, generator=torch.Generator().manual_seed(1)), 0.2),
    lambda a, b: byol_loss(a, b),
])
def test_losses_compute_in_fp32_under_bf16_autocast(loss):
    z1, z2 = _inputs()
    expected = loss(z1, z2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = loss(z1, z2)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, expected, rtol=1e-6, atol=1e-6)
