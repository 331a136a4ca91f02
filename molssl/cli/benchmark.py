"""``molssl benchmark``: fine-tune on a suite of MoleculeNet sets beside random init and the baselines."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import check_device, check_folder
from molssl.cli.finetune import encoder_config
from molssl.core.rundir import check_output_dir, is_run_dir, locked_run_dir


def benchmark(
    out: Path = typer.Option(Path("runs/benchmark"), "--out", help="Suite directory (resumable)"),
    suite: str = typer.Option("molclr", help="molclr (13 MoleculeNet sets) or small (BBBP, BACE, ClinTox, "
                                             "ESOL, FreeSolv, Lipo)"),
    pretrained: Optional[str] = typer.Option(None, help="Encoder to evaluate: shipped name, run directory or "
                                                        "encoder.pt (omit for the other columns only)"),
    datasets: Optional[List[str]] = typer.Option(None, help="Subset: --datasets bbbp bace"),
    variants: List[str] = typer.Option(["pretrained", "random-init", "rf-ecfp", "chemprop"],
                                       help="Columns: pretrained random-init rf-ecfp rf-rdkit2d delaney chemprop"),
    seeds: List[int] = typer.Option([0, 1, 2], help="Seeds: --seeds 0 1 2"),
    epochs: int = typer.Option(100, help="Epochs per model (MolCLR: 100)"),
    patience: Optional[int] = typer.Option(None, help="Early stopping on the validation metric (epochs)"),
    probe_epochs: int = typer.Option(0, help="LP-FT: train the head alone on the frozen encoder for up to this many "
                                             "epochs before fine-tuning all (GNN rows); 0: off"),
    features: str = typer.Option("none", help="GNN columns: none, rdkit2d, ecfp4, rdkit2d+ecfp4"),
    descriptor_scaling: str = typer.Option("standard", help="How RDKit descriptors enter the head: standard "
                                                            "(standardized, clipped) or quantile (through their "
                                                            "training distribution onto a normal)"),
    featurizer: str = typer.Option("molclr", help="random-init column without --pretrained: molclr or rich"),
    class_weight: str = typer.Option("none", help="none or balanced"),
    batch_size: int = typer.Option(32),
    max_train_molecules: Optional[int] = typer.Option(None, help="Cap each training split (CPU budget)"),
    protocol: Optional[str] = typer.Option(None, help="molclr-per-target (default), multitask, or auto (per target "
                                                      "up to 2 targets, one multitask model for Tox21, SIDER, ...)"),
    split: str = typer.Option("scaffold", help="scaffold, random-scaffold or random"),
    precision: str = typer.Option("auto", help="auto (bf16 where it is faster), fp32, bf16"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with MoleculeNet files"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where featurized stores live"),
    device: str = typer.Option("auto"),
    threads: Optional[int] = typer.Option(
        None, help="CPU threads of torch, a forest or chemprop baseline (1 is fastest on a busy machine)"),
    progress: bool = typer.Option(True, help="A line per epoch of each model (validation score, best so far) "
                                             "and featurization progress on big sets"),
) -> None:
    """Fine-tune on a suite of MoleculeNet sets and print one table with the baselines and published figures."""
    from molssl.chem.tasks.benchmark import BenchmarkConfig, run_benchmark, variant_config
    from molssl.chem.tasks.reports import benchmark_table

    check_device(device)
    check_folder(data_dir, "--data-dir")
    check_output_dir(out, holds_run=False, is_run=_is_suite)
    config = BenchmarkConfig(
        out=str(out), suite=suite, pretrained=pretrained, datasets=datasets, variants=variants, seeds=seeds,
        epochs=epochs, batch_size=batch_size, max_train_molecules=max_train_molecules, protocol=protocol, split=split,
        encoder=encoder_config("gin", 5, 300, 512, featurizer), features=features, descriptor_scaling=descriptor_scaling,
        patience=patience, probe_epochs=probe_epochs,
        class_weight=class_weight, precision=precision, data_dir=str(data_dir) if data_dir else None,
        cache_dir=str(cache_dir) if cache_dir else None, device=device, threads=threads, progress=progress,
    )
    if config.datasets:  # the fine-tuning settings every variant shares, checked before any work starts
        variant_config(config, config.datasets[0], "random-init", config.encoder)
    with locked_run_dir(out):  # a second benchmark into the same --out would restart this one's runs
        rows = run_benchmark(config, log=lambda message: typer.echo(message, err=True))
    typer.echo(benchmark_table(rows, config.budget(), config.variants, config.notes))


def _is_suite(path: Path) -> bool:
    """A folder a benchmark wrote: its table, its lock, or data-set folders holding molssl runs."""
    return ((path / "benchmark.json").is_file() or is_run_dir(path)
            or any(is_run_dir(run) for run in path.glob("*/*") if run.is_dir()))
