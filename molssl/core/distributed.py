"""Thin helpers over torch.distributed (torchrun + DDP); single-process runs see no-ops."""
from __future__ import annotations

import torch
import torch.distributed as tdist
import torch.distributed.nn  # noqa: F401  (autograd-aware collectives)
from torch import Tensor, nn


def is_distributed() -> bool:
    return tdist.is_available() and tdist.is_initialized()


def world_size() -> int:
    return tdist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return tdist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


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


def barrier() -> None:
    if is_distributed():
        tdist.barrier()


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0 (rank order); gradients flow back to every rank's part.

    Single-process runs get ``tensor`` itself.
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    return torch.cat(tdist.nn.functional.all_gather(tensor), dim=0)
