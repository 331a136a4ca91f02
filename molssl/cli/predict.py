"""``molssl predict``: property predictions of shipped or fine-tuned models, one row per input."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import echo_err

TABLE_MAX_ROWS = 50


def input_or_smiles(smiles: Optional[List[str]], input_file: Optional[Path]) -> None:
    if (not smiles) == (input_file is None):
        raise typer.BadParameter("give either --smiles (one or more) or --input FILE")


TEXT_WIDTH = 40


def format_table(table) -> str:  # noqa: ANN001 - a pandas DataFrame
    """A readable fixed-width table: 3 decimals, NaN as '-', text cells cut to 40 characters (CSV output keeps all)."""
    from pandas.api.types import is_numeric_dtype

    shown = table.copy()
    for column in [c for c in shown.columns if not is_numeric_dtype(shown[c])]:
        shown[column] = [v if not isinstance(v, str) or len(v) <= TEXT_WIDTH else v[:TEXT_WIDTH - 3] + "..."
                         for v in shown[column]]
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}")


def predict(
    model: List[str] = typer.Option(..., "--model", "-m", help="Shipped model name (see `molssl models`), a model.pt "
                                                               "or a `molssl finetune` run directory; several allowed"),
    smiles: Optional[List[str]] = typer.Option(None, "--smiles", "-s", help="SMILES to predict: --smiles CCO c1ccccc1"),
    input_file: Optional[Path] = typer.Option(None, "--input", "-i", help="CSV (all columns kept) or .smi file"),
    smiles_column: Optional[str] = typer.Option(None, help="CSV column with SMILES (default smiles/SMILES/Smiles)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write a CSV here (default: print)"),
    batch_size: int = typer.Option(256, help="Molecules per forward pass"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    workers: int = typer.Option(1, help="Featurization processes"),
    cache_dir: Optional[Path] = typer.Option(None, help="Store cache for inputs above 20,000 rows"),
) -> None:
    """Predict properties: one row per input (in order), a column per task, std for ensembles, a status column."""
    from molssl.chem.serve.predict import STATUS_COLUMN, Predictor

    input_or_smiles(smiles, input_file)
    predictor = Predictor(model, batch_size=batch_size, device=device, threads=threads, workers=workers)
    for ensemble in predictor.models:
        members = f"ensemble of {ensemble.n_members}" if ensemble.n_members > 1 else "single model"
        echo_err(f"{ensemble.name}: {len(ensemble.tasks)} task(s), {members}")
    if input_file is not None:
        table = predictor.predict_file(input_file, smiles_column, str(cache_dir) if cache_dir else None)
    else:
        table = predictor.predict_smiles(smiles)
    invalid = int((table[STATUS_COLUMN] != "ok").sum())
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(output, index=False)
        echo_err(f"wrote {len(table)} rows ({invalid} invalid) to {output}")
    elif len(table) <= TABLE_MAX_ROWS:
        typer.echo(format_table(table))
        if invalid:
            echo_err(f"{invalid} invalid row(s): see the status column")
    else:
        typer.echo(table.to_csv(index=False), nl=False)
