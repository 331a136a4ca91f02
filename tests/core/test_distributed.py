"""Two Gloo processes on CPU against one process: same loss, same gradients, same update.

Rank r holds rows r*B..(r+1)*B-1 of a global batch of 2B; the single process holds all 2B.
Every check runs in one pair of spawned workers (starting processes is the slow part).
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from torch import nn

from molssl.core import distributed as dist
from molssl.core.losses import multi_positive_nt_xent, nt_xent
from molssl.core.trainer import Trainer, TrainerConfig

WORLD = 2
B = 6
UNEVEN = (3, 5)  # rows per rank in the uneven-gather check


class TwoViews(nn.Module):
    """A training module shaped like MolCLR: the network runs twice per step, negatives gathered across ranks."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.net(x), self.net(x.flip(1) * 0.5)  # two deterministic "views"
        return nt_xent(dist.gather_with_grad(z1), dist.gather_with_grad(z2), 0.5)


def _data() -> dict:
    g = torch.Generator().manual_seed(0)
    n_uneven = sum(UNEVEN)
    return {
        "x": torch.randn(WORLD * B, 8, generator=g),
        "u": torch.randn(n_uneven, 8, generator=g),
        "codes": torch.randint(0, 3, (n_uneven,), generator=g, dtype=torch.uint8),
        "items": torch.randn(7, 8, generator=g),
        "owner": torch.tensor([0, 0, 2, 3, 4, 6, 7]),  # items of the uneven rows 0..7 (rank 0 owns 0..2)
    }


class UnevenObjective(nn.Module):
    """Weighted NT-Xent whose weights come from gathered non-differentiable codes, plus an anchor-vs-items term
    whose owner ids are shifted into the gathered rows: the global-batch hooks iMolCLR needs, on ranks
    holding different numbers of rows and items."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))

    def forward(self, u: torch.Tensor, codes: torch.Tensor, items: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        z1, z2 = dist.gather_with_grad(self.net(u)), dist.gather_with_grad(self.net(u * 0.5))
        all_codes = dist.all_gather_tensor(codes)
        weights = 1.0 - 0.5 * (all_codes[:, None] == all_codes[None, :]).float()
        items_z = dist.gather_with_grad(self.net(items))
        return nt_xent(z1, z2, 0.5, negative_weights=weights) + multi_positive_nt_xent(
            z1, items_z, dist.gather_index(owner, u.shape[0]), 0.5)


def _step(module: nn.Module, batch: torch.Tensor, out_dir: Path) -> tuple[float, dict, dict]:
    """One Trainer step with plain SGD: the loss, the gradients it left in ``.grad`` and the updated weights."""
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    trainer = Trainer(module, optimizer, out_dir=out_dir, device=torch.device("cpu"),
                      config=TrainerConfig(progress=False), log=lambda _m: None)
    loss, _ = trainer.train_step(batch)
    grads = {k: p.grad.clone() for k, p in module.named_parameters()}
    return loss, grads, {k: v.clone() for k, v in module.state_dict().items()}


def _uneven_grads(objective: nn.Module, rows: slice, data: dict, items: slice) -> tuple[float, dict]:
    loss = objective(data["u"][rows], data["codes"][rows], data["items"][items], data["owner"][items] - rows.start)
    loss.backward()
    return loss.item(), {k.removeprefix("module."): p.grad.clone() for k, p in objective.named_parameters()}


def _split_items(r: int) -> slice:
    owner = _data()["owner"]
    first = int((owner < UNEVEN[0]).sum())
    return slice(0, first) if r == 0 else slice(first, owner.numel())


def _worker(r: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(r),
                      LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(WORLD))
    assert dist.init_from_env(torch.device("cpu"), timeout=timedelta(seconds=60))
    try:
        data = _data()
        result: dict = {"world_size": dist.world_size(), "rank": dist.rank()}
        torch.manual_seed(1)
        result["step"] = _step(TwoViews(), data["x"][r * B:(r + 1) * B], Path(out) / "run")

        torch.manual_seed(2)
        objective = nn.parallel.DistributedDataParallel(UnevenObjective())
        rows = slice(0, UNEVEN[0]) if r == 0 else slice(UNEVEN[0], sum(UNEVEN))
        result["uneven"] = _uneven_grads(objective, rows, data, _split_items(r))

        result["objects"] = dist.all_gather_object({"rank": r})
        try:
            dist.convert_sync_batchnorm(nn.BatchNorm1d(4), torch.device("cpu"))
        except ValueError as exc:
            result["sync_bn_error"] = str(exc)

        def fails_on_main() -> str:
            if dist.rank() == 0:
                raise OSError("disk full")
            return "ok"

        try:
            dist.main_process_first(fails_on_main)
        except (OSError, RuntimeError) as exc:
            result["main_first_error"] = f"{type(exc).__name__}: {exc}"
        torch.save(result, Path(out) / f"rank{r}.pt")
    finally:
        dist.shutdown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, run_ranks) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    run_ranks(_worker, (str(out),), WORLD)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _assert_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_two_ranks_step_equals_one_process_with_the_global_batch(two_ranks, tmp_path):
    torch.manual_seed(1)
    loss, grads, weights = _step(TwoViews(), _data()["x"], tmp_path)
    for result in two_ranks:
        assert result["world_size"] == WORLD
        r_loss, r_grads, r_weights = result["step"]
        assert r_loss == pytest.approx(loss, rel=1e-5)
        _assert_close(r_grads, grads)
        _assert_close(r_weights, weights)
    assert any(g.abs().max() > 1e-3 for g in grads.values())  # a real gradient, not zeros on both sides


def test_uneven_gathers_give_the_global_batch_loss_and_gradient(two_ranks):
    data = _data()
    torch.manual_seed(2)
    loss, grads = _uneven_grads(UnevenObjective(), slice(0, sum(UNEVEN)), data, slice(0, data["owner"].numel()))
    for result in two_ranks:
        r_loss, r_grads = result["uneven"]
        assert r_loss == pytest.approx(loss, rel=1e-5)
        _assert_close(r_grads, grads)


def test_gathered_objects_and_failures_reach_every_rank(two_ranks):
    for result in two_ranks:
        assert result["objects"] == [{"rank": 0}, {"rank": 1}]
    assert two_ranks[0]["main_first_error"] == "OSError: disk full"
    assert two_ranks[1]["main_first_error"] == "RuntimeError: rank 0 failed: disk full"


def test_sync_batchnorm_on_cpu_ranks_is_a_clear_error(two_ranks):
    for result in two_ranks:
        assert "needs CUDA devices" in result["sync_bn_error"]
    bn = nn.BatchNorm1d(4)
    assert dist.convert_sync_batchnorm(bn, torch.device("cpu")) is bn  # one process: nothing to synchronize


def test_single_process_collectives_are_identities():
    x = torch.randn(3, 2)
    assert dist.gather_with_grad(x) is x and dist.all_gather_tensor(x) is x
    assert dist.all_gather_object("a") == ["a"]
    assert dist.gather_index(torch.tensor([0, 2]), 3).tolist() == [0, 2]


def test_torchrun_environment_without_rendezvous_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="launch with torchrun"):
        dist.init_from_env(torch.device("cpu"))


def test_each_torchrun_process_gets_the_gpu_of_its_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist.device_for_rank("cuda") == torch.device("cuda", 1)
    assert dist.device_for_rank("auto") == torch.device("cuda", 1)
    assert dist.device_for_rank("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="pins every process to one GPU"):
        dist.device_for_rank("cuda:0")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(ValueError, match="only 2 visible"):
        dist.device_for_rank("cuda")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert dist.device_for_rank("cuda:1") == torch.device("cuda", 1)  # a single process may pick any GPU
