"""Shared fixtures: small molecule sets and the read-only reference data in ../shared/data when present."""
from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MOLSSL_SHARED_DATA", REPO.parent / "shared" / "data"))

SMALL_SMILES = [
    "CCO",
    "c1ccccc1",
    "CC(=O)Oc1ccccc1C(=O)O",
    "N[C@@H](C)C(=O)O",
    "C/C=C/C",
    "C1CCCCC1",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "[Na+].[Cl-]",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "O=C(O)c1ccccc1O",
    "CN1CCC[C@H]1c1cccnc1",
    "C#N",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test featurizes into its own cache, never the user's ~/.cache."""
    monkeypatch.setenv("MOLSSL_CACHE", str(tmp_path_factory.mktemp("molssl-cache")))


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for a test module that opts in (tiny tensors; no spinning on a shared machine).

    Opt-in rather than autouse: tests that fork workers (the corpus store) must not inherit a changed OpenMP pool.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_smiles() -> list[str]:
    return list(SMALL_SMILES)


@pytest.fixture
def smiles_file(tmp_path) -> Path:
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(SMALL_SMILES) + "\n")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for torchrun's --master_port)."""
    return _unused_port()


@pytest.fixture(scope="session")
def run_ranks():
    """``run(worker, args, nprocs)``: ``worker(rank, port, *args)`` in ``nprocs`` fresh (spawned) processes,
    ``port`` a free TCP port for their rendezvous.

    Spawned, not forked: a fork of the test process can inherit a lock held by one of its threads and hang
    (seen once in CI). A run that does not finish within ``timeout`` seconds fails instead of hanging.
    """
    def run(worker, args: tuple, nprocs: int, timeout: float = 300.0) -> None:
        context = mp.start_processes(worker, args=(_unused_port(), *args), nprocs=nprocs, start_method="spawn", join=False)
        deadline = time.monotonic() + timeout
        while not context.join(timeout=max(1.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                for process in context.processes:
                    process.kill()
                pytest.fail(f"{nprocs} processes did not finish within {timeout:.0f} s")
    return run


@pytest.fixture
def killed_during_step(monkeypatch):
    """``with killed_during_step(n): train(...)``: the Trainer raises RuntimeError("killed") during its n-th
    training step (as a killed process would stop), the block expects it, and the real step is back afterwards."""
    from molssl.core.trainer import Trainer

    @contextlib.contextmanager
    def killed(n: int):
        real_step, calls = Trainer.train_step, {"n": 0}

        def dying_step(self, batch):
            calls["n"] += 1
            if calls["n"] == n:
                raise RuntimeError("killed")
            return real_step(self, batch)

        monkeypatch.setattr(Trainer, "train_step", dying_step)
        try:
            with pytest.raises(RuntimeError, match="killed"):
                yield
        finally:
            monkeypatch.setattr(Trainer, "train_step", real_step)

    return killed
