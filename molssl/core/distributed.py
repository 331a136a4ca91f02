"""Thin helpers over torch.distributed (torchrun + DDP); single-process runs see no-ops.

A run started by ``torchrun`` finds its place in the environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); :func:`process_group` joins that group (NCCL on
CUDA, Gloo on CPU) and gives each process its device. The collectives below accept tensors whose
first dimension differs between ranks (a last, smaller batch; a variable number of fragments).
"""
from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Any, Callable, Iterator, Optional, TypeVar

import torch
import torch.distributed as tdist
from torch import Tensor, nn

from molssl.core.device import resolve_device

T = TypeVar("T")


def is_distributed() -> bool:
    return tdist.is_available() and tdist.is_initialized()


def world_size() -> int:
    return tdist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return tdist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    """This process's index on its node (torchrun's ``LOCAL_RANK``; 0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def env_world_size() -> int:
    """The world size torchrun announces in ``WORLD_SIZE`` (1 when not launched by torchrun)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {value!r}") from None


def device_for_rank(name: str = "auto") -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` under torchrun with CUDA, else :func:`resolve_device`."""
    device = resolve_device(name)
    if env_world_size() <= 1 or device.type != "cuda":
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.index is not None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        raise ValueError(f"--device {name} pins every process to one GPU; under torchrun pass --device cuda (or auto): "
                         "each process then uses cuda:LOCAL_RANK (choose GPUs with CUDA_VISIBLE_DEVICES)")
    if device.index is None:
        if local >= torch.cuda.device_count():
            raise ValueError(f"process with LOCAL_RANK {local} has no GPU: only {torch.cuda.device_count()} visible; "
                             "use --nproc_per_node at most the number of GPUs")
        device = torch.device("cuda", local)
    return device


def init_from_env(device: torch.device, timeout: Optional[timedelta] = None) -> bool:
    """Join the process group described by torchrun's environment; NCCL for CUDA, Gloo for CPU.

    Returns True if this call created the group (the caller then owns :func:`shutdown`), False when
    there is nothing to join (``WORLD_SIZE`` <= 1) or a group already exists.
    """
    if env_world_size() <= 1 or is_distributed():
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE is set but {', '.join(missing)} is not: launch with torchrun")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
    tdist.init_process_group(backend=backend, **kwargs)
    return True


def shutdown() -> None:
    """Leave the process group (after the last collective)."""
    if is_distributed():
        tdist.destroy_process_group()


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[torch.device]:
    """Within the block, this process is in torchrun's group (if launched by it) and uses the device it yields."""
    resolved = device_for_rank(device)
    created = init_from_env(resolved)
    try:
        yield resolved
    finally:
        if created:
            shutdown()


def all_reduce_sum(tensor: Tensor) -> Tensor:
    if is_distributed():
        tdist.all_reduce(tensor, op=tdist.ReduceOp.SUM)
    return tensor


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap in DistributedDataParallel when a process group is up; otherwise return ``module``."""
    if not is_distributed() or world_size() == 1:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers that normalize with the statistics of the global batch (all ranks).

    A no-op in a single process (the local batch is the global batch). torch's SyncBatchNorm runs
    on GPUs only, so on CPU ranks this raises instead of failing at the first step.
    """
    if world_size() == 1:
        return module
    if device.type != "cuda":
        raise ValueError(f"synchronized BatchNorm needs CUDA devices: torch {torch.__version__} implements "
                         "SyncBatchNorm for GPU inputs only. On CPU, run without it (each process then "
                         "normalizes with its own batch's statistics)")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def barrier() -> None:
    if is_distributed():
        tdist.barrier()


def all_gather_object(obj: T) -> list[T]:
    """``obj`` of every rank (picklable), in rank order; ``[obj]`` in a single process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    tdist.all_gather_object(out, obj)
    return out


def main_process_first(fn: Callable[[], T], local: bool = True) -> T:
    """Run ``fn`` on the main process first (one per node when ``local``), then on the others.

    Meant for work whose result is cached on disk (featurizing a corpus): the others then find it.
    If ``fn`` fails on a main process, every rank raises instead of waiting at a barrier forever.
    """
    if not is_distributed():
        return fn()
    first = (local_rank() if local else rank()) == 0
    result: Any = None
    error: Optional[BaseException] = None
    if first:
        try:
            result = fn()
        except Exception as exc:  # re-raised below, after the other ranks have heard of it
            error = exc
    failures = [(r, msg) for r, msg in enumerate(all_gather_object(None if error is None else f"{error}")) if msg]
    if error is not None:
        raise error
    if failures:
        r, msg = failures[0]
        raise RuntimeError(f"rank {r} failed: {msg}")
    return result if first else fn()


def gathered_sizes(n: int, device: torch.device) -> list[int]:
    """The first-dimension size ``n`` of every rank, in rank order."""
    if not is_distributed():
        return [n]
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world_size())]
    tdist.all_gather(sizes, torch.tensor([n], dtype=torch.int64, device=device))
    return [int(s) for s in sizes]


class _AllGather(torch.autograd.Function):
    """All-gather of equal-sized tensors along dim 0; backward sums the gradient over ranks and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(tensor) for _ in range(world_size())]
        tdist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        tdist.all_reduce(grad, op=tdist.ReduceOp.SUM)  # every backend has it (Gloo lacks reduce-scatter)
        rows = grad.shape[0] // world_size()
        return grad[rank() * rows:(rank() + 1) * rows]


def _gather(tensor: Tensor, differentiable: bool) -> Tensor:
    sizes = gathered_sizes(tensor.shape[0], tensor.device)
    longest = max(sizes)
    padded = tensor
    if tensor.shape[0] < longest:
        padded = torch.cat([tensor, tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))])
    if differentiable:
        gathered = _AllGather.apply(padded)
    else:
        parts = [torch.empty_like(padded) for _ in sizes]
        tdist.all_gather(parts, padded.contiguous())
        gathered = torch.cat(parts, dim=0)
    if min(sizes) == longest:
        return gathered
    return torch.cat([gathered[r * longest:r * longest + size] for r, size in enumerate(sizes)], dim=0)


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0 (rank order); gradients flow back to every rank's part.

    Ranks may hold different numbers of rows. In backward, each rank receives the sum over ranks of
    the gradient of its rows; since every rank computes the same loss of the gathered tensor and DDP
    averages parameter gradients over ranks, the parameters get exactly the gradient of that loss as
    if one process had computed it on the global batch. Single-process runs get ``tensor`` itself.
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    return _gather(tensor, differentiable=True)


def all_gather_tensor(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, without gradient (labels, packed fingerprints, ids)."""
    if not is_distributed() or world_size() == 1:
        return tensor
    return _gather(tensor.detach(), differentiable=False)


def gather_index(index: Tensor, num_rows: int) -> Tensor:
    """Gather an index into this rank's ``num_rows`` rows, shifted to point into the gathered rows.

    Example: fragment ``owner`` ids (0..n_molecules-1 per rank) become ids into the gathered
    molecules, so ``gather_index(owner, n_molecules)`` pairs with ``gather_with_grad(z)``.
    """
    if not is_distributed() or world_size() == 1:
        return index
    offsets = torch.tensor([0, *gathered_sizes(num_rows, index.device)], device=index.device).cumsum(0)
    shifted = index + offsets[rank()].to(index.dtype)
    return all_gather_tensor(shifted)


def global_mean(total: Tensor, count: Tensor) -> Tensor:
    """Mean over every rank's entries: DistributedDataParallel averages the ranks' gradients, so each rank's
    share is scaled by world size / global count (its gradient is then exact); the value is the global mean."""
    world = world_size()
    if world == 1:
        return total / count.clamp(min=1.0)
    count = all_reduce_sum(count.detach().clone()).clamp(min=1.0)
    local = total * world / count
    value = all_reduce_sum(total.detach().clone()) / count
    return local - local.detach() + value
