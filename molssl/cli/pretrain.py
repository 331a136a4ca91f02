"""``molssl pretrain``: contrastive pre-training of a molecular encoder on a SMILES corpus."""
from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import check_device, check_positive
from molssl.errors import MolsslError, require_input_file


class Encoder(str, Enum):
    gin = "gin"
    gcn = "gcn"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Featurizer(str, Enum):
    molclr = "molclr"
    rich = "rich"


def pretrain(
    smiles: Path = typer.Option(..., "--smiles", help="SMILES file: .smi/.txt (one per line) or .csv, optionally .gz"),
    out: Path = typer.Option(..., "--out", help="Run directory (config, metrics.jsonl, checkpoint.pt, encoder.pt)"),
    smiles_column: Optional[str] = typer.Option(None, help="CSV column with SMILES (default: smiles/SMILES)"),
    method: str = typer.Option("molclr", help="Pre-training objective: molclr, imolclr (contrastive), physchem "
                                                        "(predict RDKit's 2D descriptors) or physchem-ecfp (and "
                                                        "the ECFP4 bits), attrmask (predict masked atoms' "
                                                        "attributes), physchem-attrmask (descriptors and masked "
                                                        "attributes), graphmae (rebuild masked atoms through a "
                                                        "re-masked GIN decoder) or contextpred (tell an atom's "
                                                        "surroundings from another molecule's)"),
    lambda1: Optional[float] = typer.Option(None, help="imolclr: negatives weighted 1 - lambda1*Tanimoto (default 0.5)"),
    lambda2: Optional[float] = typer.Option(None, help="imolclr: weight of the fragment loss (default 0.5)"),
    max_fragments: Optional[int] = typer.Option(None, help="imolclr: fragments per molecule per step, 0 = all (default 1)"),
    init_encoder: Optional[str] = typer.Option(None, help="Continue pre-training from this encoder's weights: a "
                                                          "shipped encoder, a pretrain run directory or an encoder.pt "
                                                          "(give its --featurizer and sizes; e.g. attrmask, then molclr)"),
    encoder: Encoder = typer.Option(Encoder.gin, help="Graph encoder"),
    featurizer: Featurizer = typer.Option(Featurizer.molclr, help="Graph vocabulary: molclr (atom type + chirality; "
                                                                  "bond type + direction) or rich (+ charge, H count, "
                                                                  "degree, hybridization, aromaticity, rings, ...)"),
    num_layers: int = typer.Option(5, help="Message-passing layers"),
    emb_dim: int = typer.Option(300, help="Atom embedding width"),
    feat_dim: int = typer.Option(512, help="Representation size h"),
    dropout: float = typer.Option(0.0, help="Dropout after each layer"),
    augment: Optional[List[str]] = typer.Option(None, help="molclr, imolclr: augmentations per view, in order: mask, "
                                                           "delete, subgraph (default: mask delete)"),
    mask_rate: Optional[float] = typer.Option(None, help="Fraction of atoms masked (default 0.25; attrmask, "
                                                         "physchem-attrmask, graphmae: the atoms whose attributes are "
                                                         "predicted)"),
    delete_rate: Optional[float] = typer.Option(None, help="molclr, imolclr: fraction of bonds deleted (default 0.25)"),
    subgraph_rate: Optional[float] = typer.Option(None, help="molclr, imolclr: fraction of atoms in the removed "
                                                             "subgraph (default 0.25)"),
    temperature: Optional[float] = typer.Option(None, help="molclr, imolclr: NT-Xent temperature (default 0.1)"),
    epochs: int = typer.Option(1, help="Passes over the corpus"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps"),
    batch_size: int = typer.Option(512, help="Molecules per step (per process)"),
    lr: float = typer.Option(5e-4, help="Peak learning rate (Adam)"),
    weight_decay: float = typer.Option(1e-5),
    valid_fraction: float = typer.Option(0.05, help="Held-out fraction for validation loss"),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    precision: Precision = typer.Option(Precision.auto, help="auto: bf16 autocast where it is faster (CUDA, CPUs with "
                                                             "AMX/AVX512-BF16, confirmed by a timed probe), else fp32"),
    seed: int = typer.Option(0),
    checkpoint_every: int = typer.Option(200, help="Steps between checkpoints"),
    skip_invalid: bool = typer.Option(False, help="Leave out invalid SMILES (listed in OUT/rejected.csv) instead of stopping"),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint"),
    sync_batchnorm: bool = typer.Option(False, "--sync-batchnorm",
                                        help="Under torchrun on GPUs: BatchNorm statistics over all processes"),
    workers: Optional[int] = typer.Option(None, help="Featurization processes (default: all cores)"),
    max_atoms: int = typer.Option(1000, help="Molecules with more heavy atoms are rejected as invalid (memory guard)"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where featurized stores live (default $MOLSSL_CACHE or ~/.cache/molssl)"),
) -> None:
    """Pre-train a molecular encoder without labels."""
    from molssl.chem.nn.encoders import EncoderConfig
    from molssl.chem.nn.objectives import OBJECTIVES, SETTING_READERS
    from molssl.chem.tasks.pretrain import PretrainConfig, pretrain as run

    require_input_file(smiles)
    check_device(device)
    check_positive(epochs=epochs, max_steps=max_steps, checkpoint_every=checkpoint_every, lr=lr, workers=workers,
                   max_atoms=max_atoms, emb_dim=emb_dim, feat_dim=feat_dim, num_layers=num_layers)  # here, so the sentence names the flag (the library names its setting)

    imolclr_options = {"lambda1": lambda1, "lambda2": lambda2, "max_fragments": max_fragments}
    imolclr_options = {k: v for k, v in imolclr_options.items() if v is not None}
    if method != "imolclr" and imolclr_options:
        raise MolsslError("--lambda1, --lambda2 and --max-fragments apply to --method imolclr only")
    settings = {"augmentations": tuple(augment) if augment else None, "mask_rate": mask_rate,
                "delete_rate": delete_rate, "subgraph_rate": subgraph_rate, "temperature": temperature}
    settings = {k: v for k, v in settings.items() if v is not None}  # the rest keep PretrainConfig's defaults
    for name in settings:
        if method in OBJECTIVES and method not in SETTING_READERS[name]:
            flag = "--augment" if name == "augmentations" else "--" + name.replace("_", "-")
            raise MolsslError(f"{flag} applies to --method {', '.join(SETTING_READERS[name])} only; {method} does "
                              "not use it")
    config = PretrainConfig(
        smiles=str(smiles), out=str(out), smiles_column=smiles_column, method=method,
        encoder=EncoderConfig(kind=encoder.value, num_layers=num_layers, emb_dim=emb_dim, feat_dim=feat_dim,
                              proj_dim=feat_dim // 2, dropout=dropout, featurizer=featurizer.value),
        **settings, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, valid_fraction=valid_fraction, seed=seed, device=device,
        precision=precision.value, checkpoint_every=checkpoint_every, skip_invalid=skip_invalid, resume=resume,
        sync_batchnorm=sync_batchnorm,
        workers=workers, cache_dir=str(cache_dir) if cache_dir else None, max_atoms=max_atoms,
        method_options=imolclr_options, init_encoder=init_encoder,
    )
    _report(run(config, log=_log))


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _report(summary: dict) -> None:
    """One closing line, printed by the main process only (every torchrun process returns a summary)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    def number(value, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    typer.echo(f"done: {summary['steps']} steps ({summary['molecules_seen']:,} molecules seen, "
               f"{summary['cpu_hours']:.2f} CPU h over all sessions), final loss {number(summary['final_loss'], 4)}, "
               f"validation loss {number(summary['final_val_loss'], 4)}, {number(summary['molecules_per_s'], 0)} "
               f"molecules/s ({summary['precision']}); encoder saved to {summary['encoder']}")
