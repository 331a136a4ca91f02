"""A few optimizer steps of a training module on one batch, for tests that check an objective can be learned; a
store's molecules as one batch; a brief pretrain() run."""
import json
from pathlib import Path

import numpy as np
import torch

from molssl.chem.data.store import build_store
from molssl.chem.nn.objectives import STORE_EXTRAS
from molssl.chem.tasks.pretrain import PretrainConfig, pretrain


def store_batch(folder: Path, smiles: list[str], method: str, featurizer: str = "rich"):
    """Every molecule of ``smiles`` as one batch, from a store (under ``folder``) with ``method``'s extras."""
    path = folder / "mols.smi"
    path.write_text("\n".join(smiles) + "\n")
    store = build_store(path, extras=STORE_EXTRAS[method], featurizer=featurizer, workers=1, progress=False,
                        cache_dir=folder / "c")
    return store.gather(np.arange(len(store)))


def pretrain_briefly(folder: Path, smiles: list[str], method: str, encoder) -> tuple[dict, list[dict]]:
    """pretrain() on ``smiles`` four times over, 2 epochs of batch 8, into ``folder/run``: (its summary, the
    training records of metrics.jsonl)."""
    corpus = folder / "corpus.smi"
    corpus.write_text("\n".join(smiles * 4) + "\n")
    config = PretrainConfig(smiles=str(corpus), out=str(folder / "run"), method=method, encoder=encoder, epochs=2,
                            batch_size=8, valid_fraction=0.2, log_every=1, progress=False, workers=1,
                            cache_dir=str(folder / "c"))
    summary = pretrain(config, log=lambda _: None)
    records = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    return summary, [r for r in records if "loss" in r]


def train_on(module: torch.nn.Module, batch, steps: int, lr: float) -> list[tuple[torch.Tensor, dict]]:
    """Adam on ``module``'s trainable parameters; the (loss, metrics) of every step, the first from the initial weights."""
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    history = []
    for _ in range(steps):
        loss, metrics = module(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((loss, metrics))
    return history


def assert_learns_fresh_masks_with_a_frozen_readout(module: torch.nn.Module, batch) -> None:
    """A masking objective trained on ``batch`` recovers freshly drawn masks (loss under half the initial one, so
    not a memorized choice of atoms) while the encoder's ``feat_lin`` and projection head stay frozen and unchanged."""
    frozen = {n: p.clone() for n, p in module.named_parameters() if n.startswith(("encoder.feat_lin", "encoder.head"))}
    assert frozen and not any(p.requires_grad for n, p in module.named_parameters() if n in frozen)
    first = train_on(module, batch, steps=80, lr=1e-2)[0][0].item()
    module.eval()
    with torch.no_grad():
        losses = [module(batch)[0].item() for _ in range(5)]
    assert sum(losses) / len(losses) < 0.5 * first
    assert all(torch.equal(p, frozen[n]) for n, p in module.named_parameters() if n in frozen)
