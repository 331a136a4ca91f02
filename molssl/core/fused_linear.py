"""A linear layer whose bias and ReLU run inside the matrix product on CPU (oneDNN), with the same mathematics.

Why: PyTorch's eager ``addmm`` adds the bias in a pass of its own and ReLU is another, each over an (atoms x 600)
tensor; in bf16 they cost more than the product itself. oneDNN's linear with a ReLU post-op (the kernel
``torch.compile``'s CPU backend calls, ``mkldnn::_linear_pointwise``) writes ``relu(x W^T + b)`` in one pass: for
GIN's first MLP product at 10,752 atoms, 3.2 ms against 7.5 ms for ``addmm`` + ``relu`` in bf16, 24.9 against 30.0 ms
in fp32 (Intel Xeon with AMX; the pre-training step 1.13x faster in bf16, 1.03x in fp32:
benchmarks/results/pretrain_throughput.md). The backward pass is the one autograd would
run (ReLU mask, input gradient, weight gradient, bias sum), the weight gradient in the layout whose result is wider
than tall: for GIN's (300 -> 600) product ``(x^T g)^T``, which MKL computes faster in fp32 than ``g^T x`` (23.3
against 27.7 ms there; the same in bf16).

Used where the kernel exists (CPU builds with oneDNN) for fp32 and bf16, under autocast as ``nn.Linear`` would be
(inputs, weight and bias cast to the autocast dtype); everywhere else ``F.linear`` and ``F.relu``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molssl.core.device import compute_dtype

_KERNEL = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
_DTYPES = (torch.float32, torch.bfloat16)
# below this many rows oneDNN's call costs more than it saves in fp32 (50 atoms: 195 against 141 us; 700: even)
MIN_ROWS = 512


def kernel_present() -> bool:
    """Whether this PyTorch build has oneDNN's fused linear (and :func:`unfused` is not in effect)."""
    return _KERNEL is not None


@contextmanager
def unfused() -> Iterator[None]:
    """Inside the block :func:`linear` is plain ``F.linear`` (+ ``F.relu``): what the fusion is measured against."""
    global _KERNEL
    kernel, _KERNEL = _KERNEL, None
    try:
        yield
    finally:
        _KERNEL = kernel


def fused_available(x: Tensor) -> bool:
    """Whether :func:`linear` runs the fused CPU kernel for this input (dtype after autocast, rows)."""
    return (_KERNEL is not None and x.device.type == "cpu" and x.dim() == 2 and x.shape[0] >= MIN_ROWS
            and compute_dtype(x) in _DTYPES)


def linear(x: Tensor, layer: nn.Linear, relu: bool = False) -> Tensor:
    """``layer(x)``, followed by ReLU when ``relu``; fused on CPU (module docstring)."""
    if not fused_available(x):
        out = layer(x)
        return F.relu(out) if relu else out
    dtype = compute_dtype(x)
    bias = layer.bias.to(dtype) if layer.bias is not None else None
    return _FusedLinear.apply(x.to(dtype), layer.weight.to(dtype), bias, relu)


class _FusedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], relu: bool) -> Tensor:
        with torch.autocast("cpu", enabled=False):
            out = _KERNEL(x, weight, bias, "relu" if relu else "none", [], "")
        ctx.relu = relu
        ctx.save_for_backward(x, weight, out if relu else None)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Optional[Tensor], Optional[Tensor], Optional[Tensor], None]:
        x, weight, out = ctx.saved_tensors
        grad = grad.contiguous()
        if ctx.relu:
            grad = torch.ops.aten.threshold_backward(grad, out, 0)
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:  # the layout whose result is wider than tall: MKL's faster one in fp32
            grad_weight = (x.t() @ grad).t() if weight.shape[0] > weight.shape[1] else grad.t() @ x
        grad_bias = grad.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None
