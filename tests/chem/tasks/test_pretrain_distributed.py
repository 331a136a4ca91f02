"""Distributed pre-training: MolCLR/iMolCLR/descriptor-prediction/masking/context-prediction steps on 2 Gloo ranks equal one process on the global batch,
and a real ``torchrun --nproc_per_node=2 -m molssl pretrain`` run that a single process then resumes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from molssl.chem.data.batch import GraphBatch
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.data.featurize import MASK_ATOM, MOLCLR
from molssl.chem.nn.augment import masked_fields
from molssl.chem.data.sources import StoreBatches
from molssl.chem.tasks.pretrain import ENCODER_FILE, PretrainConfig, build_objective, pretrain
from molssl.chem.data.store import MoleculeStore, open_corpus
from molssl.core import distributed as dist
from molssl.core.checkpoint import load_checkpoint
from molssl.core.trainer import Trainer, TrainerConfig

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "data" / "demo_smiles.smi"
TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)
WORLD, B = 2, 8


class AlternatingViews:
    """Deterministic per-molecule views, so that a molecule gets the same views whichever rank holds it:
    odd calls mask each graph's first atom, even calls delete each graph's first bond."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch: GraphBatch) -> GraphBatch:
        self.calls += 1
        if self.calls % 2:
            x = batch.x.clone()
            x[batch.ptr[:-1], 0] = MASK_ATOM
            return batch.with_(x=x)
        bond_graph = batch.bond_graph()
        first = torch.ones_like(bond_graph, dtype=torch.bool)
        first[1:] = bond_graph[1:] != bond_graph[:-1]
        edge_keep = (~first).repeat_interleave(2)
        return batch.with_(edge_index=batch.edge_index[:, edge_keep], edge_attr=batch.edge_attr[edge_keep])


def _first_atoms_masked(batch: GraphBatch) -> tuple[GraphBatch, torch.Tensor]:
    first = torch.zeros(batch.num_atoms, dtype=torch.bool)
    first[batch.ptr[:-1]] = True
    return batch.with_(x=masked_fields(batch.x, first, MOLCLR.atom_mask)), first


def _objective(method: str, store: MoleculeStore = None, **options) -> nn.Module:
    """The method's module with deterministic views and no BatchNorm: per-rank BatchNorm statistics are the one
    intended difference from a single process (torch's SyncBatchNorm, which removes it, runs on GPUs only)."""
    torch.manual_seed(0)
    # every atom masked where masking chooses atoms (attrmask): a random choice would differ between the ranks
    objective = build_objective(PretrainConfig(smiles="", out="", method=method, encoder=TINY, method_options=options,
                                               mask_rate=1.0))
    objective.encoder.batch_norms = nn.ModuleList(nn.Identity() for _ in objective.encoder.batch_norms)
    if method.startswith("physchem"):  # targets standardized with the whole store's statistics, on every rank alike
        objective.fit_statistics(store.extra("rdkit2d"))
    elif method == "graphmae":  # every atom masked would leave its decoder nothing but zeros: each graph's first atom
        objective.mask = _first_atoms_masked
    elif method == "contextpred":  # each graph's first atom as the centre; the context GNN without BatchNorm too
        objective.centres = lambda batch, generator=None: batch.ptr[:-1]
        objective.context_encoder.batch_norms = nn.ModuleList(nn.Identity() for _ in objective.context_encoder.batch_norms)
    else:
        objective.augmentation = AlternatingViews()
    return objective


CASES = {"molclr": ("molclr", {}), "imolclr-weighted": ("imolclr", {"lambda2": 0.0}),
         "imolclr": ("imolclr", {"max_fragments": 0}),  # every fragment: a random pick would differ per rank
         "physchem": ("physchem", {}),  # the loss is a mean over both ranks' descriptor entries
         "physchem-ecfp": ("physchem-ecfp", {}),  # and over both ranks' ECFP bits
         "attrmask": ("attrmask", {}),  # a mean over both ranks' masked atoms
         "physchem-attrmask": ("physchem-attrmask", {}),
         "graphmae": ("graphmae", {}),  # a mean over both ranks' masked atoms, decoded from their neighbours
         "contextpred": ("contextpred", {"context_size": 2})}  # negatives: the previous context across ranks
FEATURES = ("rdkit2d", "ecfp2048")


def _step(objective: nn.Module, batch: GraphBatch, out: Path) -> tuple[float, dict]:
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.1)
    trainer = Trainer(objective, optimizer, out_dir=out, device=torch.device("cpu"),
                      config=TrainerConfig(progress=False), log=lambda _m: None)
    loss, _ = trainer.train_step(batch)
    return loss, {k: p.grad.clone() for k, p in objective.named_parameters() if p.grad is not None}


def _worker(r: int, port: int, store_dir: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(r),
                      LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(WORLD))
    dist.init_from_env(torch.device("cpu"), timeout=timedelta(seconds=60))
    try:
        store = MoleculeStore(store_dir)
        batch = store.gather(np.arange(r * B, (r + 1) * B), FEATURES)
        results = {name: _step(_objective(method, store, **options), batch, Path(out) / name)
                   for name, (method, options) in CASES.items()}
        torch.save(results, Path(out) / f"rank{r}.pt")
    finally:
        dist.shutdown()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_corpus(DEMO, extras=("ecfp", "ecfp2048", "fragments", "rdkit2d"), workers=1, progress=False,
                       cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def two_ranks(store, tmp_path_factory, run_ranks) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    run_ranks(_worker, (str(store.folder), str(out)), WORLD)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_ranks_equal_one_process_on_the_global_batch(case, store, two_ranks, tmp_path):
    method, options = CASES[case]
    loss, grads = _step(_objective(method, store, **options), store.gather(np.arange(WORLD * B), FEATURES), tmp_path)
    assert len(grads) == sum(1 for p in _objective(method, store, **options).parameters() if p.requires_grad)
    for result in two_ranks:
        r_loss, r_grads = result[case]
        assert r_loss == pytest.approx(loss, rel=1e-5)
        assert r_grads.keys() == grads.keys()
        for key in grads:
            torch.testing.assert_close(r_grads[key], grads[key], rtol=1e-4, atol=1e-6, msg=key)


def test_local_negatives_would_differ(store, two_ranks):
    """Guard on the test itself: the loss of one rank's batch alone is not the global one."""
    local, _ = _step(_objective("molclr"), store.gather(np.arange(B)), Path("unused"))
    assert abs(local - two_ranks[0]["molclr"][0]) > 1e-3


def _torchrun(args: list[str], env: dict, port: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}", "-m", "molssl", "pretrain", *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)


def test_torchrun_two_processes_then_resume_in_one(tmp_path, free_port):
    out = tmp_path / "run"
    args = ["--smiles", str(DEMO), "--out", str(out), "--num-layers", "2", "--emb-dim", "16", "--feat-dim", "16",
            "--batch-size", "16", "--epochs", "2", "--max-steps", "7", "--checkpoint-every", "2", "--device", "cpu",
            "--workers", "1", "--cache-dir", str(tmp_path / "cache"), "--seed", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = _torchrun(args, env, free_port)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "steps/epoch of 32 on cpu" in done.stderr  # 2 ranks x 16 molecules per step
    assert done.stderr.count("steps/epoch of") == 1  # only rank 0 logs

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # 171 training molecules: 5 steps of 32 per epoch; logged every 10 steps and at the last, once (by rank 0)
    assert [r["step"] for r in records if "loss" in r] == [5, 7]  # the end of epoch 1, the last step
    assert [r["step"] for r in records if "val_loss" in r] == [5]  # 9 validation molecules split 5 + 4
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and ckpt["state"]["samples_per_step"] == 32
    assert (ckpt["state"]["step"], ckpt["state"]["epoch"], ckpt["state"]["batch_in_epoch"]) == (7, 1, 2)
    assert len(ckpt["rng_per_rank"]) == 2
    assert not torch.equal(ckpt["rng_per_rank"][0]["torch"], ckpt["rng_per_rank"][1]["torch"])
    assert (out / ENCODER_FILE).is_file() and json.loads((out / "summary.json").read_text())["steps"] == 7

    # one process, same 16 molecules per step: 2 steps of 32 into epoch 2 become 4 steps of 16 (10 per epoch), and
    # --max-steps 7 (of 32) becomes 14 (of 16): the run is complete, nothing is trained again
    resumed_log: list[str] = []
    config = PretrainConfig(smiles=str(DEMO), out=str(out), encoder=TINY, batch_size=16, epochs=2, max_steps=7, seed=5,
                            device="cpu", workers=1, cache_dir=str(tmp_path / "cache"), resume=True,
                            progress=False, checkpoint_every=2, log_every=1)
    summary = pretrain(config, log=resumed_log.append)
    assert any("continuing at step 14, batch 4 of epoch 2" in line for line in resumed_log)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [5, 7]
    assert summary["steps"] == 14
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["world_size"] == 1 and ckpt["state"]["samples_per_step"] == 16


class _IndexStore:
    """A stand-in store whose batches are just the positions asked for."""

    def gather(self, index, features=()):
        return index


@pytest.mark.parametrize("n_valid, kept", [(33, 32), (34, 34), (9, 9), (1, 0), (64, 64)])
def test_validation_leaves_no_rank_without_molecules(n_valid, kept):
    """With 2 ranks x 16, a last validation batch of 1 molecule would leave rank 1 out of the gathers:
    such a batch is left out, every rank runs the same number of batches and none is empty."""
    per_rank = [list(StoreBatches(_IndexStore(), np.arange(n_valid), 16, shuffle=False, drop_last=False, rank=r,
                                  world_size=2).batches(0)) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1])
    assert all(len(batch) > 0 for batches in per_rank for batch in batches)
    assert sum(len(batch) for batches in per_rank for batch in batches) == kept
