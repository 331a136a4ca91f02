"""Batch sources under torchrun: every rank runs the same batches, and none is empty (issue 21.4)."""
import os
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from molssl.chem.data.sources import StoreBatches
from molssl.chem.data.store import build_store
from molssl.core import distributed as dist

REPO = Path(__file__).resolve().parents[3]


def _worker(r: int, port: int, store_dir: str, n: int, out: str) -> None:
    """Each rank walks a validation source of ``n`` molecules, gathering the sizes of every batch (a collective,
    as gathered negatives are), and records what it saw."""
    from molssl.chem.data.store import MoleculeStore

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(r))
    dist.init_from_env(torch.device("cpu"), timeout=timedelta(seconds=60))
    try:
        source = StoreBatches(MoleculeStore(store_dir), np.arange(n), 4, shuffle=False, drop_last=False)
        seen = []
        for batch in source.batches(0):
            sizes = dist.gathered_sizes(batch.num_graphs, torch.device("cpu"))  # hangs if a rank skipped a batch
            seen.append(sizes)
        torch.save({"batches": len(source), "seen": seen}, Path(out) / f"rank{r}.pt")
    finally:
        dist.shutdown()


@pytest.mark.parametrize("n", [9, 11])
def test_two_gloo_ranks_with_an_odd_count_never_get_an_empty_batch(n, tmp_path, run_ranks):
    store = build_store(REPO / "data" / "demo_smiles.smi", workers=1, progress=False, cache_dir=tmp_path / "c")
    run_ranks(_worker, (str(store.folder), n, str(tmp_path)), 2, timeout=120)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert results[0] == results[1]  # both ranks ran the same batches and agree on every size
    sizes = results[0]["seen"]
    assert all(min(s) > 0 for s in sizes)
    # 2 ranks x 4: 9 -> 8 + 1 (the lone molecule is left out), 11 -> 8 + 3 (split 2 + 1)
    assert sum(map(sum, sizes)) == {9: 8, 11: 11}[n]
