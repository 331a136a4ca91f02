import torch
from torch import nn

from molssl.core.heads import MLPHead


def test_mlp_head_default_relu_and_custom_activation():
    relu_head = MLPHead([4, 8, 3])
    assert [type(m) for m in relu_head.net] == [nn.Linear, nn.ReLU, nn.Linear]
    softplus_head = MLPHead([4, 8, 8, 2], activation=nn.Softplus)
    assert [type(m) for m in softplus_head.net] == [nn.Linear, nn.Softplus, nn.Linear, nn.Softplus, nn.Linear]
    x = torch.randn(5, 4)
    net = softplus_head.net
    expected = net[4](nn.functional.softplus(net[2](nn.functional.softplus(net[0](x)))))
    assert torch.allclose(softplus_head(x), expected)
