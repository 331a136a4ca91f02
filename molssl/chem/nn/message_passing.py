"""Neighbourhood sums as sparse matrix products: sum over incoming edges of node features and bond embeddings.

A GIN/GCN layer needs, for every atom i, ``sum_j w_ij h_j`` and ``sum_j w_ij e(code_ij)`` over the
edges j -> i and the atom's self-loop (MolCLR adds one, bond type 4, to every atom). Written as
gather + ``index_add_``, each layer moves an (edges x width) tensor through memory four times (gather
and scatter, forward and backward). As products of one CSR matrix per batch with the dense
features, ``A @ h`` and ``C @ table`` (A: atoms x atoms, C: atoms x bond-codes, built once per batch and
shared by every layer), the same sums cost about a quarter of the time on
CPU (``benchmarks/results/pretrain_throughput.md``). The mathematics is unchanged (tests compare
outputs and gradients with the gather/scatter formulation); products run in fp32, as MKL's sparse
kernels have no bf16.

On CPU the products write straight into their result (``addmm`` with ``beta=0`` and ``out=``): through
``torch.sparse.mm`` every product also zero-filled and copied an (atoms x width) result, and every
backward pass transposed the CSR matrix again (sort and conversion), together about twice the cost of
the product itself. The transposes are built once per batch instead, beside the matrices, and only
where a CPU backward pass will use them (not under ``torch.no_grad``, as in prediction). The bond
product is written first and the neighbour product added into the same buffer (``beta=1``), so the
layer's sum ``A h + C table`` costs no third pass over an (atoms x width) tensor.

In bf16 on CPU (autocast) the fp32 products cost four casts of an (atoms x width) tensor per layer and view (h up
to fp32 and the sum back down, the same for the gradients). Where every weight is 1 (GIN; GCN without
normalization) the sum is instead one ``embedding_bag`` over the rows of ``[h; table]``, read in bf16 and
accumulated in fp32 by the kernel: the matrix ``[A | C]`` in CSR form is a bag of row indices per atom, and its
transpose gives the backward pass as one more bag. The result is the fp32 sum rounded once to bf16, as the next
layer's bf16 product would have rounded it; only the bond table is rounded to bf16 before the sum.

On that path the sum can also come back with up to ``ROW_MULTIPLE - 1`` extra rows of zeros (``padded=True``), so
that the products which follow see few distinct row counts: oneDNN builds (JIT-compiles) a bf16 kernel per distinct
shape (~7 ms for GIN's first product, ~4 ms for a weight gradient, against 3 ms for the product itself) and keeps
1,024, while fine-tuning at batch 32 meets hundreds of atom counts. BBBP, GIN, batch 32, bf16, epochs 7-10: 491
molecules/s and 1.8 GB resident without the padding, 610 and 0.64 GB with it (``benchmarks/bf16_row_padding.py``,
``benchmarks/results/finetune_throughput.md``). The caller runs its row-wise
products on the padded rows and drops them after (their gradients are zero), so the mathematics is unchanged.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from molssl.core.device import compute_dtype

ROW_MULTIPLE = 64  # padded bf16 sums have a multiple of this many rows (module docstring)


@dataclass
class Neighbourhood:
    """The sparse operators of one batch of graphs (see the module docstring)."""

    adjacency: Tensor  # CSR (n_atoms, n_atoms): w_ij at (i, j) for every edge j -> i
    codes: Tensor  # CSR (n_atoms, n_codes): w_ij at (i, code_ij)
    adjacency_t: Optional[Tensor]  # their transposes, for the backward pass on CPU; None where none will run
    codes_t: Optional[Tensor]
    unit_weights: bool = False  # every w_ij is 1: the bf16 sum can be an embedding bag (module docstring)

    def aggregate(self, h: Tensor, table: Tensor, padded: bool = False) -> Tensor:
        """(n_atoms, d): sum over each atom's incoming edges of w_ij (h_j + table[code_ij]), i.e. A h + C table;
        fp32, or bf16 where the bf16 bag applies, and then with ``padded`` possibly followed by rows of zeros up to
        a multiple of ``ROW_MULTIPLE`` (module docstring)."""
        needs_grad = torch.is_grad_enabled() and (h.requires_grad or table.requires_grad)
        if (self.unit_weights and h.device.type == "cpu" and compute_dtype(h) == torch.bfloat16
                and not (needs_grad and self.adjacency_t is None)):
            return self._bag_aggregate(h, table, needs_grad, self._padded_bags if padded else self._bags)
        with torch.autocast(device_type=h.device.type, enabled=False):  # autocast would ask for a bf16 kernel
            h, table = h.float(), table.float()
            if self.adjacency_t is not None and self.codes_t is not None:
                return _Aggregate.apply(self.adjacency, self.adjacency_t, self.codes, self.codes_t, h, table)
            if h.device.type == "cpu" and not needs_grad:
                return _aggregate_into_result(self.adjacency, self.codes, h, table)  # inference: no backward pass
            return torch.sparse.mm(self.adjacency, h) + torch.sparse.mm(self.codes, table)

    def by_kind(self, kinds: Tensor, n_kinds: int) -> "Neighbourhood":
        """The same sums taken over kinds of neighbour: ``A`` becomes K (atoms x ``n_kinds``), K[i, k] the sum of
        w_ij over atom i's neighbours j (self-loop included) with ``kinds[j] == k``, so that ``K @ t`` equals
        ``A @ t[kinds]`` for any per-kind table t; the bond operator is kept. Duplicates are summed, so K's weights
        are counts and the bf16 bag (which needs weights of 1) does not apply to it."""
        a = self.adjacency
        crow = a.crow_indices()
        rows = torch.repeat_interleave(torch.arange(a.shape[0], device=crow.device), torch.diff(crow))
        counts, counts_t = summed_csr(rows, kinds[a.col_indices()], (a.shape[0], n_kinds), a.values(),
                                      with_transpose=self.adjacency_t is not None)
        return Neighbourhood(counts, self.codes, counts_t, self.codes_t)

    def _bag_aggregate(self, h: Tensor, table: Tensor, needs_grad: bool, bags: tuple[Tensor, Tensor]) -> Tensor:
        with torch.autocast(device_type="cpu", enabled=False):
            h, table = h.to(torch.bfloat16), table.to(torch.bfloat16)
            if needs_grad:
                return _BagAggregate.apply(bags, self._bags_t, h, table)
            return _bag_sum(bags, torch.cat([h, table]))

    @cached_property
    def _bags(self) -> tuple[Tensor, Tensor]:
        """(row indices into [h; table], offsets) of [A | C]: per atom its neighbours' rows, then n + its bond codes."""
        return _side_by_side(self.adjacency, self.codes)

    @cached_property
    def _padded_bags(self) -> tuple[Tensor, Tensor]:
        """``_bags`` followed by empty bags (rows of zeros) up to a multiple of ``ROW_MULTIPLE`` rows."""
        indices, offsets = self._bags
        pad = -(offsets.numel() - 1) % ROW_MULTIPLE
        return indices, torch.cat([offsets, offsets[-1:].expand(pad)])

    @cached_property
    def _bags_t(self) -> tuple[Tensor, Tensor]:
        """The same of [A | C]'s transpose, [A^T; C^T]: the rows of A^T, then those of C^T."""
        a_t, c_t = self.adjacency_t, self.codes_t
        offsets = torch.cat([a_t.crow_indices(), a_t.crow_indices()[-1] + c_t.crow_indices()[1:]])
        return torch.cat([a_t.col_indices(), c_t.col_indices()]).int(), offsets.int()


def _side_by_side(left: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
    """Column indices and row offsets of the CSR matrix [left | right] (right's columns shifted by left's width),
    each row's entries from ``left`` first; placed without a sort."""
    left_crow, right_crow = left.crow_indices(), right.crow_indices()
    device = left_crow.device
    rows = torch.arange(left.shape[0], device=device)
    left_rows = torch.repeat_interleave(rows, torch.diff(left_crow))
    right_rows = torch.repeat_interleave(rows, torch.diff(right_crow))
    cols = torch.empty(int(left_crow[-1] + right_crow[-1]), dtype=torch.int32, device=device)
    cols[torch.arange(left_crow[-1], device=device) + right_crow[left_rows]] = left.col_indices().int()
    shifted = right.col_indices().int() + left.shape[1]
    cols[torch.arange(right_crow[-1], device=device) + left_crow[1:][right_rows]] = shifted
    return cols, (left_crow + right_crow).int()


def _bag_sum(bags: tuple[Tensor, Tensor], rows: Tensor) -> Tensor:
    """Row i of the result: the sum of ``rows[indices]`` over bag i (``embedding_bag``, fp32 accumulation)."""
    indices, offsets = bags
    return F.embedding_bag(indices, rows, offsets, mode="sum", include_last_offset=True)


class _BagAggregate(torch.autograd.Function):
    """``[A | C] @ [h; table]`` in bf16 as bags; the backward pass is the bags of the transpose."""

    @staticmethod
    def forward(ctx, bags: tuple[Tensor, Tensor], bags_t: tuple[Tensor, Tensor], h: Tensor, table: Tensor) -> Tensor:
        ctx.bags_t, ctx.n_atoms = bags_t, h.shape[0]
        return _bag_sum(bags, torch.cat([h, table]))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor, Tensor]:
        # a padded result's extra rows are never indexed by the transpose's bags: their gradients drop out here
        grad_rows = _bag_sum(ctx.bags_t, grad.to(torch.bfloat16).contiguous())
        return None, None, grad_rows[:ctx.n_atoms], grad_rows[ctx.n_atoms:]


def _aggregate_into_result(adjacency: Tensor, codes: Tensor, h: Tensor, table: Tensor) -> Tensor:
    """``codes @ table`` written into a fresh result, ``adjacency @ h`` added in place: one buffer, no sum."""
    out = _product_into_result(codes, table)
    return out.addmm_(adjacency, h)


def _product_into_result(sparse: Tensor, dense: Tensor) -> Tensor:
    out = torch.empty(sparse.shape[0], dense.shape[1], dtype=dense.dtype, device=dense.device)
    return torch.addmm(out, sparse, dense, beta=0, out=out)  # beta=0: out's contents are never read


class _Aggregate(torch.autograd.Function):
    """``adjacency @ h + codes @ table`` for constant sparse matrices: gradients flow to ``h`` and ``table``
    only, through the transposes given beside the matrices."""

    @staticmethod
    def forward(ctx, adjacency: Tensor, adjacency_t: Tensor, codes: Tensor, codes_t: Tensor, h: Tensor,
                table: Tensor) -> Tensor:
        ctx.adjacency_t, ctx.codes_t = adjacency_t, codes_t
        return _aggregate_into_result(adjacency, codes, h, table)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, None, None, Optional[Tensor], Optional[Tensor]]:
        grad = grad.contiguous()
        grad_h = _product_into_result(ctx.adjacency_t, grad) if ctx.needs_input_grad[4] else None
        grad_table = _product_into_result(ctx.codes_t, grad) if ctx.needs_input_grad[5] else None
        return None, None, None, None, grad_h, grad_table


def _csr(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    order = torch.argsort(rows * shape[1] + cols)
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, cols[order], values[order], shape)


def summed_csr(rows: Tensor, cols: Tensor, shape: tuple[int, int], values: Optional[Tensor] = None,
               with_transpose: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """CSR matrix with the sum of ``values`` (default 1 each) over every repeated (row, col) pair, and its transpose
    where asked (else None)."""
    keys, slot = torch.unique(rows * shape[1] + cols, return_inverse=True)
    if values is None:
        summed = torch.bincount(slot, minlength=keys.numel()).float()
    else:
        summed = torch.zeros(keys.numel(), dtype=values.dtype, device=keys.device).index_add_(0, slot, values)
    r, c = keys // shape[1], keys % shape[1]
    return _csr(r, c, summed, shape), (_csr(c, r, summed, (shape[1], shape[0])) if with_transpose else None)


def neighbourhood(edge_index: Tensor, edge_code: Tensor, n_atoms: int, n_codes: int, self_loop_code: int,
                  weights: Optional[Tensor] = None, self_weights: Optional[Tensor] = None) -> Neighbourhood:
    """The operators of edges ``edge_index`` (2, E) with bond codes ``edge_code`` (E,) plus one self-loop per
    atom (code ``self_loop_code``); edge and self-loop weights default to 1."""
    atoms = torch.arange(n_atoms, device=edge_index.device)
    src = torch.cat([edge_index[0], atoms])
    dst = torch.cat([edge_index[1], atoms])
    codes = torch.cat([edge_code, torch.full_like(atoms, self_loop_code)])
    ones = torch.ones(n_atoms, device=atoms.device)
    values = torch.cat([torch.ones(edge_index.shape[1], device=atoms.device) if weights is None else weights.float(),
                        ones if self_weights is None else self_weights.float()])
    adjacency, code_sums = _csr(dst, src, values, (n_atoms, n_atoms)), _csr(dst, codes, values, (n_atoms, n_codes))
    unit = weights is None and self_weights is None
    if atoms.device.type != "cpu" or not torch.is_grad_enabled():  # no CPU backward pass will need transposes
        return Neighbourhood(adjacency, code_sums, None, None, unit)
    return Neighbourhood(adjacency, code_sums, _csr(src, dst, values, (n_atoms, n_atoms)),
                         _csr(codes, dst, values, (n_codes, n_atoms)), unit)
