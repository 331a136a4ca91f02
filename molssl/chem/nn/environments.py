"""GIN layers computed once per distinct atom environment instead of once per atom (fp32 on the CPU, no dropout).

Why: a GIN layer's output for an atom is a function of its input row and the multiset of its neighbours' (input row,
bond code); the encoder's input rows are atom kinds. So atoms with the same radius-l environment (Weisfeiler-Lehman
refinement of their kinds by bonds) have the same layer-l output, and a MolCLR view of 512 MOSES molecules (10,361
atoms, 8 kinds) has 459 distinct radius-1 environments, 3,989 radius-2 and 6,974 radius-3 ones. Each layer then runs its
products on one representative atom per environment: the sums of the representatives only, over their neighbours'
environments (``K``, counts) and bond codes (``C``), as in :meth:`molssl.chem.nn.message_passing.Neighbourhood.by_kind`.
BatchNorm's statistics are the per-atom ones, each environment weighted by its atom count. The mathematics is the
per-atom encoder's, summed in another order (tests compare outputs, gradients and running statistics).

Dropout draws a mask per atom, which makes equal environments differ: with dropout in training the encoder keeps the
per-atom layers (only the first product over kinds).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from molssl.chem.nn.message_passing import Neighbourhood, summed_csr


@dataclass
class Environments:
    """One refinement step: each atom's environment (an index) and one representative atom per environment."""

    of_atom: Tensor  # (n_atoms,) environment index of every atom
    representatives: Tensor  # (n_environments,) the lowest-numbered atom of each environment
    counts: Tensor  # (n_environments,) atoms per environment


def refine(state: Tensor, src: Tensor, dst: Tensor, codes: Tensor, n_codes: int) -> Environments:
    """Next environments: an atom's state with the multiset of (neighbour's state, bond code) over its edges
    ``src -> dst`` (exact: rows of sorted keys compared whole, no hashing)."""
    n = state.shape[0]
    key = state[src] * n_codes + codes
    order = torch.argsort(dst * (int(key.max()) + 1 if key.numel() else 1) + key)
    sorted_dst, sorted_key = dst[order], key[order]
    degree = torch.bincount(dst, minlength=n)
    start = torch.cumsum(degree, 0) - degree
    rows = torch.full((n, int(degree.max()) + 1 if n and dst.numel() else 1), -1, dtype=torch.long, device=state.device)
    rows[:, 0] = state
    rows[sorted_dst, 1 + torch.arange(sorted_dst.numel(), device=state.device) - start[sorted_dst]] = sorted_key
    return environments_of(row_ids(rows))


def row_ids(rows: Tensor) -> Tensor:
    """Each row's index among the distinct rows in lexicographic order, as ``torch.unique(rows, dim=0,
    return_inverse=True)[1]``: a stable sort per column, last column first, then adjacent rows compared. Why: on the
    CPU ``unique(dim=0)`` compares rows one at a time (~20-35 ms for a view's 10k atoms, 5-7x this; it was a quarter
    of the pre-training step)."""
    n = rows.shape[0]
    order = torch.arange(n, device=rows.device)
    for column in reversed(rows.unbind(1)):
        order = order[torch.sort(column[order], stable=True).indices]
    ranked = rows[order]
    starts = torch.ones(n, dtype=torch.long, device=rows.device)
    starts[1:] = (ranked[1:] != ranked[:-1]).any(1)
    ids = torch.empty_like(order)
    ids[order] = torch.cumsum(starts, 0) - 1
    return ids


def environments_of(of_atom: Tensor) -> Environments:
    """:class:`Environments` of each atom's environment index (numbered from 0; atom kinds are radius-0 ones)."""
    n_env = int(of_atom.max()) + 1 if of_atom.numel() else 0
    atoms = torch.arange(of_atom.numel(), device=of_atom.device)
    representatives = torch.full((n_env,), of_atom.numel(), dtype=torch.long, device=of_atom.device)
    representatives.scatter_reduce_(0, of_atom, atoms, "amin")
    return Environments(of_atom, representatives, torch.bincount(of_atom, minlength=n_env))


def representative_sums(inputs: Environments, outputs: Environments, src: Tensor, dst: Tensor, codes: Tensor,
                        n_codes: int, self_loop_code: int, with_transposes: bool) -> Neighbourhood:
    """The neighbourhood sums of the output environments' representatives, over the input environments of their
    neighbours and themselves (K: n_out x n_in) and over their bond codes and self-loop (C: n_out x n_codes)."""
    n_out, n_in = outputs.representatives.numel(), inputs.representatives.numel()
    slot = torch.full_like(inputs.of_atom, -1)
    slot[outputs.representatives] = torch.arange(n_out, device=slot.device)
    edges = slot[dst] >= 0
    reps = outputs.representatives
    rows = torch.cat([slot[dst[edges]], torch.arange(n_out, device=slot.device)])
    k_cols = torch.cat([inputs.of_atom[src[edges]], inputs.of_atom[reps]])
    c_cols = torch.cat([codes[edges], torch.full((n_out,), self_loop_code, device=slot.device)])
    k, k_t = summed_csr(rows, k_cols, (n_out, n_in), with_transpose=with_transposes)
    c, c_t = summed_csr(rows, c_cols, (n_out, n_codes), with_transpose=with_transposes)
    return Neighbourhood(k, c, k_t, c_t)


def counts_apply_to(norm: nn.Module) -> bool:
    """Whether :func:`weighted_batch_norm` can stand for ``norm`` (a plain BatchNorm1d, or none: ``nn.Identity``);
    for any other normalization (e.g. SyncBatchNorm) the encoder keeps the per-atom layers."""
    return type(norm) in (nn.BatchNorm1d, nn.Identity)


def weighted_batch_norm(norm: nn.Module, x: Tensor, counts: Tensor) -> Tensor:
    """``norm`` over the atoms, given one row per environment and the environments' atom counts: in training the
    statistics (and the running ones) of the per-atom rows, in evaluation the running statistics; ``nn.Identity``
    as itself."""
    if isinstance(norm, nn.Identity) or (not norm.training and norm.running_mean is not None):
        return norm(x)
    n = counts.sum()
    out, mean, var = _WeightedBatchNorm.apply(x, counts.to(x.dtype) / n, norm.weight if norm.affine else None,
                                              norm.bias if norm.affine else None, norm.eps)
    if norm.track_running_stats:
        with torch.no_grad():
            norm.num_batches_tracked.add_(1)
            factor = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
            norm.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
            unbiased = var * (float(n) / max(float(n) - 1, 1.0))
            norm.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
    return out


class _WeightedBatchNorm(torch.autograd.Function):
    """Batch normalization of rows weighted by ``p`` (the environments' shares of the atoms), with its gradient
    written out: ``dx_i = w r (g_i - p_i (sum_j g_j + xhat_i sum_j g_j xhat_j))``. Why: composed from elementwise
    operations, its forward and backward passes were about a sixth of the pre-training step; this takes about half
    as many passes over the rows. Also returns the batch mean and (biased) variance, without gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, p: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float):
        mean = p @ x
        centred = x - mean
        var = p @ centred.square()
        rstd = torch.rsqrt(var + eps)
        xhat = centred.mul_(rstd)
        out = xhat.clone() if weight is None else torch.addcmul(bias, xhat, weight)
        ctx.save_for_backward(xhat, p, rstd if weight is None else weight * rstd)
        ctx.mark_non_differentiable(mean, var)
        ctx.affine = weight is not None
        return out, mean, var

    @staticmethod
    def backward(ctx, grad: Tensor, _mean: Tensor, _var: Tensor):
        xhat, p, scale = ctx.saved_tensors
        grad_bias = grad.sum(0)
        grad_weight = (grad * xhat).sum(0)
        inner = torch.addcmul(grad_bias, xhat, grad_weight)
        grad_x = torch.addcmul(grad, p[:, None], inner, value=-1).mul_(scale)
        return grad_x, None, grad_weight if ctx.affine else None, grad_bias if ctx.affine else None, None
