import torch

from molssl.core.device import autocast, compute_dtype


def test_compute_dtype_is_autocasts_where_it_is_on():
    x = torch.ones(2, 2)
    assert compute_dtype(x) == torch.float32
    with autocast(torch.device("cpu"), "bf16"):
        assert compute_dtype(x) == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert compute_dtype(x.bfloat16()) == torch.bfloat16  # no autocast: the tensor's own dtype
