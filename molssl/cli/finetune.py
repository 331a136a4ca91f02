"""``molssl finetune``: fine-tune an encoder (or train one from scratch, or run a baseline) on labelled molecules."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import check_device, check_folder, check_positive
from molssl.errors import MolsslError, require_input_file


def encoder_config(kind: str, num_layers: int, emb_dim: int, feat_dim: int, featurizer: str):
    """The random-init encoder's settings, with each size checked against its flag."""
    from molssl.chem.nn.encoders import MAX_LAYERS, EncoderConfig

    if not 2 <= num_layers <= MAX_LAYERS:
        raise MolsslError(f"--num-layers must be 2 to {MAX_LAYERS}, got {num_layers}")
    check_positive(emb_dim=emb_dim, feat_dim=feat_dim)
    return EncoderConfig(kind=kind, num_layers=num_layers, emb_dim=emb_dim, feat_dim=feat_dim, proj_dim=feat_dim // 2,
                         featurizer=featurizer)


def finetune(
    out: Path = typer.Option(..., "--out", help="Run directory (split.json, results.json, results.md, model.pt files)"),
    dataset: Optional[str] = typer.Option(None, help="MoleculeNet data set, e.g. bbbp (see `molssl data list`)"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Your own CSV with a SMILES column and label columns"),
    smiles_column: Optional[str] = typer.Option(None, help="SMILES column of --csv (default: smiles/SMILES/Smiles)"),
    targets: Optional[List[str]] = typer.Option(None, help="Label columns of --csv: --targets col1 col2"),
    task: Optional[str] = typer.Option(None, help="classification or regression (for --csv)"),
    metric: Optional[str] = typer.Option(None, help="For --csv: roc_auc (classification), rmse or mae (regression)"),
    units: Optional[str] = typer.Option(None, help="Units of the regression targets, saved with the model"),
    pretrained: Optional[str] = typer.Option(None, help="Encoder to start from: a shipped encoder (rich-gin-physchem, "
                                                        "molclr-gin-mix), a pretrain run directory or encoder.pt, or "
                                                        "'none' for random weights. Default: the shipped encoder of "
                                                        "--featurizer for --csv, none for --dataset"),
    method: str = typer.Option("finetune", help="finetune, or a baseline on the same split: rf-ecfp, rf-rdkit2d, "
                                                "delaney (solubility), chemprop (needs the bench extra)"),
    rf_ecfp: bool = typer.Option(False, "--rf-ecfp", help="Same as --method rf-ecfp"),
    features: Optional[str] = typer.Option(None, help="Molecule-level features beside the graph: none, rdkit2d, "
                                                        "ecfp4, rdkit2d+ecfp4. Default: rdkit2d for --csv, none "
                                                        "for --dataset (MolCLR)"),
    featurizer: Optional[str] = typer.Option(None, help="Graph vocabulary, molclr or rich; a pre-trained encoder "
                                                        "brings its own. Default: rich for --csv (from rich-gin-physchem), "
                                                        "molclr for --dataset (MolCLR's)"),
    protocol: Optional[str] = typer.Option(None, help="molclr-per-target (default for --dataset) or multitask "
                                                      "(masked loss; default for --csv)"),
    split: str = typer.Option("scaffold", help="scaffold (DeepChem/MolCLR), random-scaffold (Hu et al.) or random"),
    folds: int = typer.Option(0, help="Cross-validation: split the training + validation molecules into this many "
                                      "scaffold folds and validate on --fold (test unchanged); 0: off"),
    fold: int = typer.Option(0, help="With --folds: which fold (0 to --folds - 1) is the validation part"),
    fold_acyclic: str = typer.Option("together", help="With --folds: the molecules without a ring stay one scaffold "
                                                      "group (together, as DeepChem's splitter; they then fill a "
                                                      "fold alone) or are shared out over the folds (spread)"),
    seeds: List[int] = typer.Option([0], help="Seeds: --seeds 0 1 2"),
    epochs: int = typer.Option(100, help="Training epochs (MolCLR: 100)"),
    patience: Optional[int] = typer.Option(None, help="Stop after this many epochs without a better validation "
                                                      "metric; 0: off. Default: 10 for --csv, off for --dataset "
                                                      "(MolCLR)"),
    batch_size: int = typer.Option(32, help="Molecules per step (MolCLR: 32)"),
    lr_head: float = typer.Option(5e-4, help="Adam learning rate of the task head (MolCLR init_lr)"),
    lr_encoder: float = typer.Option(1e-4, help="Adam learning rate of the encoder (MolCLR init_base_lr)"),
    schedule: str = typer.Option("constant", help="constant (MolCLR) or cosine (decay to 0, after --warmup)"),
    warmup: float = typer.Option(0.0, help="Fraction of the steps with a linear learning-rate warm-up"),
    weight_decay: float = typer.Option(1e-6),
    dropout: float = typer.Option(0.3, help="Dropout in the encoder layers"),
    class_weight: Optional[str] = typer.Option(None, help="none or balanced (positives weighted by negatives/"
                                                          "positives of the training split, per task). Default: "
                                                          "balanced for --csv, none for --dataset (MolCLR)"),
    freeze_encoder: bool = typer.Option(False, help="Train the head only (linear probe)"),
    descriptor_scaling: Optional[str] = typer.Option(None, help="How RDKit descriptors enter the head: standard "
                                                                "(standardized, clipped) or quantile (through their "
                                                                "training distribution onto a normal). Default: "
                                                                "quantile for --csv, standard for --dataset"),
    probe_epochs: int = typer.Option(0, help="LP-FT: first train the head alone on the frozen encoder for up to this "
                                             "many epochs (best validation epoch kept), then fine-tune all; 0: off"),
    max_train_molecules: Optional[int] = typer.Option(None, help="Cap the training split (CPU budget)"),
    encoder: str = typer.Option("gin", help="Without --pretrained: gin or gcn"),
    num_layers: int = typer.Option(5, help="Without --pretrained: message-passing layers"),
    emb_dim: int = typer.Option(300, help="Without --pretrained: atom embedding width"),
    feat_dim: int = typer.Option(512, help="Without --pretrained: representation size"),
    precision: str = typer.Option("auto", help="auto (bf16 where it is faster: CUDA, CPUs with AMX; else fp32), "
                                                  "fp32, bf16, fp16 (CUDA)"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with MoleculeNet files"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where featurized stores live"),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    threads: Optional[int] = typer.Option(
        None, help="CPU threads of torch, a forest or chemprop baseline (1 is fastest on a busy machine)"),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out (finished models are kept)"),
) -> None:
    """Fine-tune an encoder (or train one from scratch, or run a baseline) on a MoleculeNet set or your own CSV."""
    from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
    from molssl.chem.tasks.finetune_config import DEFAULT_FEATURIZER
    from molssl.chem.tasks.reports import describe_score

    if csv is not None:
        require_input_file(csv)
    check_device(device)
    check_folder(data_dir, "--data-dir")
    config = FinetuneConfig(
        out=str(out), dataset=dataset, csv=str(csv) if csv else None, smiles_column=smiles_column, targets=targets,
        task=task, metric=metric, units=units, method="rf-ecfp" if rf_ecfp else method, pretrained=pretrained,
        protocol=protocol, split=split, folds=folds, fold=fold,
        fold_acyclic=fold_acyclic, seeds=seeds, epochs=epochs, batch_size=batch_size,
        lr_head=lr_head, lr_encoder=lr_encoder, weight_decay=weight_decay, dropout=dropout,
        freeze_encoder=freeze_encoder, probe_epochs=probe_epochs,
        encoder=encoder_config(encoder, num_layers, emb_dim, feat_dim,
                               featurizer or DEFAULT_FEATURIZER["csv" if csv is not None else "dataset"]),
        features=features, descriptor_scaling=descriptor_scaling,
        patience=patience, class_weight=class_weight, schedule=schedule, warmup_fraction=warmup, precision=precision,
        max_train_molecules=max_train_molecules, data_dir=str(data_dir) if data_dir else None,
        cache_dir=str(cache_dir) if cache_dir else None, device=device, threads=threads, resume=resume,
    )
    results = run_finetune(config, log=lambda message: typer.echo(message, err=True))
    typer.echo(f"{results['dataset']} ({results['method']}, {results['protocol']}, {results['split']} split): "
               f"test {describe_score(results['metric'], results['mean'], results['std'])} "
               f"over seeds {config.seeds}; results in {out / 'results.json'}")
