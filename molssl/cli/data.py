"""`molssl data`: list, locate and download the MoleculeNet benchmark files."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from molssl.cli.common import USER_ERRORS, check_folder, command, error_message, new_app
from molssl.core.rundir import check_writable

app = new_app("MoleculeNet benchmark data: list, locate and download.")

DataDir = typer.Option(None, "--data-dir", help="Folder to look in first (and to download into).")


@command(app, "list")
def list_datasets(data_dir: Optional[Path] = DataDir) -> None:
    """Show every registered data set and where it was found locally."""
    from molssl.chem.data.datasets import REGISTRY, find_local

    check_folder(data_dir, "--data-dir")
    rows = [("name", "data set", "task", "metric", "tasks", "molecules", "local file")]
    for spec in REGISTRY.values():
        path = find_local(spec.name, data_dir)
        rows.append((spec.name, spec.title, spec.task_type, spec.metric, str(spec.n_tasks),
                     str(spec.n_molecules), str(path) if path else "not found (downloads on use)"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]) - 1)]
    for row in rows:  # plain aligned text: readable, and easy to grep or paste
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


@command(app, "path")
def path(name: str = typer.Argument(..., help="Data set name, e.g. bbbp."),
         data_dir: Optional[Path] = DataDir) -> None:
    """Print the local file that would be loaded for NAME (exit 1 if there is none; 2 for an unknown NAME)."""
    from molssl.chem.data.datasets import DatasetNotFound, get_spec, resolve

    check_folder(data_dir, "--data-dir")
    get_spec(name)  # an unknown name is a usage error (exit 2), not an answer
    try:
        typer.echo(str(resolve(name, data_dir, download=False)))
    except DatasetNotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)


@command(app, "fetch")
def fetch(name: str = typer.Argument(..., help="Data set name, or 'all'."),
          data_dir: Optional[Path] = DataDir) -> None:
    """Download NAME (or all) into --data-dir or the user cache, verifying checksums (exit 2 if any failed)."""
    from molssl.chem.data import datasets

    names = list(datasets.REGISTRY) if name.lower() == "all" else [datasets.get_spec(name).name]
    check_writable(data_dir if data_dir is not None else datasets.cache_dir(), "--data-dir")
    failed = 0
    for one in names:
        try:
            typer.echo(f"{one}: {datasets.fetch(one, data_dir)}")
        except USER_ERRORS as exc:  # offline, checksum mismatch, a truncated local copy
            typer.echo(f"{one}: error: {error_message(exc)}", err=True)
            failed += 1
    if failed:
        raise typer.Exit(2)
