"""Tiny fine-tuning runs and encoders for the prediction, fingerprint and zoo tests (seconds on one CPU thread)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
from rdkit import Chem

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.chem.serve.loading import save_encoder

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)
CORES = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1", "c1ccc2ccccc2c1", "C1CC1", "C1CCC1",
         "c1ccoc1", "C1CCNCC1", "c1ccc(cc1)-c1ccccc1", "C1CCCC1"]
TAILS = ["C", "CC", "CCC", "OC", "NC", "ClC", "FC", "OCC", "NCC", "CC(C)C"]


def labelled_molecules() -> pd.DataFrame:
    """120 valid molecules on 12 scaffolds with a regression label (size) and a class label (has O)."""
    smiles = [s for s in (tail + core for core in CORES for tail in TAILS) if Chem.MolFromSmiles(s) is not None]
    return pd.DataFrame({"smiles": smiles,
                         "size": [0.3 * Chem.MolFromSmiles(s).GetNumAtoms() for s in smiles],
                         "has_o": [float("O" in s or "o" in s) for s in smiles]})


def finetune_run(folder: Path, task: str = "regression", seeds: Sequence[int] = (0, 1), epochs: int = 1,
                 split: str = "scaffold", folds: int = 0, fold: int = 0, log: Callable[[str], None] = lambda _m: None) -> Path:
    """A `molssl finetune` run directory (multitask protocol) on :func:`labelled_molecules`; ``folds``: validated
    on cross-validation fold ``fold``; ``log`` receives what the run says."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "labelled.csv"
    labelled_molecules().to_csv(csv, index=False)
    target, units = ("size", "Å") if task == "regression" else ("has_o", None)
    out = folder / f"run_{task}" if split == "scaffold" else folder / f"run_{task}_{split}"
    run_finetune(FinetuneConfig(out=str(out), csv=str(csv), targets=[target], task=task, units=units,
                                split=split, folds=folds, fold=fold, seeds=list(seeds), epochs=epochs, batch_size=16, encoder=TINY,
                                threads=1, cache_dir=str(folder / "cache"), progress=False, pretrained="none"),
                 log=log)
    return out


def encoder_file(path: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny encoder saved as ``encoder.pt``."""
    torch.manual_seed(seed)
    return save_encoder(MolecularEncoder(TINY), path)
