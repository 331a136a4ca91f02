"""`molssl finetune`, `molssl benchmark`, `molssl convert`: thin commands over the library functions.

List options take several values after one flag, as in ``--seeds 0 1 2`` (repeating the flag,
``--seeds 0 --seeds 1``, works too).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

app = typer.Typer(help="Fine-tune encoders on labelled molecules, run the benchmark suite, import checkpoints.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

_LIST_OPTIONS = ("--seeds", "--targets", "--datasets", "--variants")


def expand_list_options(args: list[str], names: tuple[str, ...] = _LIST_OPTIONS) -> list[str]:
    """Turn ``--seeds 0 1 2`` into ``--seeds 0 --seeds 1 --seeds 2`` (values run until the next ``-`` flag)."""
    out: list[str] = []
    current: Optional[str] = None
    for arg in args:
        if arg in names:
            current = arg
            continue
        if current is not None and not arg.startswith("-"):
            out += [current, arg]
            continue
        current = None
        out.append(arg)
    return out


class _ListOptionCommand(TyperCommand):
    def parse_args(self, ctx, args):  # noqa: ANN001 - click's signature
        return super().parse_args(ctx, expand_list_options(list(args)))


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _encoder(kind: str, num_layers: int, emb_dim: int, feat_dim: int):
    from molssl.chem.nn.encoders import EncoderConfig

    return EncoderConfig(kind=kind, num_layers=num_layers, emb_dim=emb_dim, feat_dim=feat_dim, proj_dim=feat_dim // 2)


@app.command(cls=_ListOptionCommand)
def finetune(
    out: Path = typer.Option(..., "--out", help="Run directory (split.json, results.json, results.md, model.pt files)"),
    dataset: Optional[str] = typer.Option(None, help="MoleculeNet data set, e.g. bbbp (see `molssl data list`)"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Your own CSV with a SMILES column and label columns"),
    smiles_column: Optional[str] = typer.Option(None, help="SMILES column of --csv (default: smiles/SMILES/Smiles)"),
    targets: Optional[List[str]] = typer.Option(None, help="Label columns of --csv: --targets col1 col2"),
    task: Optional[str] = typer.Option(None, help="classification or regression (for --csv)"),
    metric: Optional[str] = typer.Option(None, help="For --csv: roc_auc (classification), rmse or mae (regression)"),
    units: Optional[str] = typer.Option(None, help="Units of the regression targets, saved with the model"),
    pretrained: Optional[Path] = typer.Option(None, help="encoder.pt from `molssl pretrain` or `molssl convert`; "
                                                         "without it the encoder starts from random weights"),
    baseline: bool = typer.Option(False, "--rf-ecfp", help="Run the random-forest-on-ECFP4 baseline instead of a GNN"),
    protocol: Optional[str] = typer.Option(None, help="molclr-per-target (default for --dataset) or multitask "
                                                      "(masked loss; default for --csv)"),
    split: str = typer.Option("scaffold", help="scaffold (DeepChem/MolCLR), random-scaffold (Hu et al.) or random"),
    seeds: List[int] = typer.Option([0], help="Seeds: --seeds 0 1 2"),
    epochs: int = typer.Option(100, help="Training epochs (MolCLR: 100)"),
    batch_size: int = typer.Option(32, help="Molecules per step (MolCLR: 32)"),
    lr_head: float = typer.Option(5e-4, help="Adam learning rate of the task head (MolCLR init_lr)"),
    lr_encoder: float = typer.Option(1e-4, help="Adam learning rate of the encoder (MolCLR init_base_lr)"),
    weight_decay: float = typer.Option(1e-6),
    dropout: float = typer.Option(0.3, help="Dropout in the encoder layers"),
    freeze_encoder: bool = typer.Option(False, help="Train the head only (linear probe)"),
    max_train_molecules: Optional[int] = typer.Option(None, help="Cap the training split (CPU budget)"),
    encoder: str = typer.Option("gin", help="Without --pretrained: gin or gcn"),
    num_layers: int = typer.Option(5, help="Without --pretrained: message-passing layers"),
    emb_dim: int = typer.Option(300, help="Without --pretrained: atom embedding width"),
    feat_dim: int = typer.Option(512, help="Without --pretrained: representation size"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with MoleculeNet files"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where featurized stores live"),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (1 is fastest on a busy machine)"),
) -> None:
    """Fine-tune an encoder (or train one from scratch) on a MoleculeNet set or your own CSV."""
    from molssl.chem.tasks.finetune import FinetuneConfig, format_score, run_finetune

    config = FinetuneConfig(
        out=str(out), dataset=dataset, csv=str(csv) if csv else None, smiles_column=smiles_column, targets=targets,
        task=task, metric=metric, units=units, method="rf-ecfp" if baseline else "finetune",
        pretrained=str(pretrained) if pretrained else None, protocol=protocol, split=split, seeds=seeds,
        epochs=epochs, batch_size=batch_size, lr_head=lr_head, lr_encoder=lr_encoder, weight_decay=weight_decay,
        dropout=dropout, freeze_encoder=freeze_encoder, max_train_molecules=max_train_molecules,
        encoder=_encoder(encoder, num_layers, emb_dim, feat_dim), data_dir=str(data_dir) if data_dir else None,
        cache_dir=str(cache_dir) if cache_dir else None, device=device, threads=threads,
    )
    results = run_finetune(config, log=_log)
    typer.echo(f"{results['dataset']} ({results['method']}, {results['protocol']}, {results['split']} split): "
               f"test {results['metric']} {format_score(results['metric'], results['mean'], results['std'])} "
               f"over seeds {config.seeds}; results in {out / 'results.json'}")


@app.command(cls=_ListOptionCommand)
def benchmark(
    out: Path = typer.Option(Path("runs/benchmark"), "--out", help="Suite directory (resumable)"),
    suite: str = typer.Option("molclr", help="molclr (13 MoleculeNet sets) or small (BBBP, BACE, ClinTox, "
                                             "ESOL, FreeSolv, Lipo)"),
    pretrained: Optional[Path] = typer.Option(None, help="encoder.pt to evaluate (omit for baselines only)"),
    datasets: Optional[List[str]] = typer.Option(None, help="Subset: --datasets bbbp bace"),
    variants: List[str] = typer.Option(["pretrained", "random-init", "rf-ecfp"], help="Which columns to run"),
    seeds: List[int] = typer.Option([0, 1, 2], help="Seeds: --seeds 0 1 2"),
    epochs: int = typer.Option(100, help="Epochs per model (MolCLR: 100; lower for CPU runs)"),
    batch_size: int = typer.Option(32),
    max_train_molecules: Optional[int] = typer.Option(None, help="Cap each training split (CPU budget)"),
    protocol: Optional[str] = typer.Option(None, help="molclr-per-target (default) or multitask"),
    split: str = typer.Option("scaffold", help="scaffold, random-scaffold or random"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with MoleculeNet files"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where featurized stores live"),
    device: str = typer.Option("auto"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (1 is fastest on a busy machine)"),
) -> None:
    """Fine-tune on a suite of MoleculeNet sets and print one table with the baselines."""
    from molssl.chem.tasks.benchmark import BenchmarkConfig, benchmark_table, run_benchmark

    config = BenchmarkConfig(
        out=str(out), suite=suite, pretrained=str(pretrained) if pretrained else None, datasets=datasets,
        variants=variants, seeds=seeds, epochs=epochs, batch_size=batch_size,
        max_train_molecules=max_train_molecules, protocol=protocol, split=split,
        data_dir=str(data_dir) if data_dir else None, cache_dir=str(cache_dir) if cache_dir else None,
        device=device, threads=threads,
    )
    rows = run_benchmark(config, log=_log)
    typer.echo(benchmark_table(rows, config.budget()))


@app.command()
def convert(
    source_format: str = typer.Argument(..., help="Format of SRC: molclr"),
    src: Path = typer.Argument(..., help="MolCLR model.pth (ckpt/pretrained_gin/checkpoints/model.pth)"),
    dst: Path = typer.Argument(..., help="Output encoder.pt, or a directory to write encoder.pt into"),
) -> None:
    """Import published weights, e.g. `molssl convert molclr model.pth runs/molclr_gin`."""
    from molssl.chem.serve.convert import convert_molclr

    if source_format.lower() != "molclr":
        raise typer.BadParameter(f"unknown format {source_format!r}; supported: molclr")
    path, notes = convert_molclr(src, dst)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {path}")
