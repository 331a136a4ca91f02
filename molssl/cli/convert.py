"""``molssl convert``: import published weights (the MolCLR authors' checkpoints) as an ``encoder.pt``."""
from __future__ import annotations

from pathlib import Path

import typer


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
