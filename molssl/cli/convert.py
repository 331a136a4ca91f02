"""``molssl convert``: import published weights (the MolCLR authors' checkpoints) as an ``encoder.pt``."""
from __future__ import annotations

from pathlib import Path

import typer

from molssl.core.rundir import check_writable
from molssl.errors import MolsslError, require_input_file


def convert(
    source_format: str = typer.Argument(..., help="Format of SRC: molclr"),
    src: Path = typer.Argument(..., help="MolCLR model.pth (ckpt/pretrained_gin/checkpoints/model.pth)"),
    dst: Path = typer.Argument(..., help="Output encoder.pt, or a directory to write encoder.pt into"),
) -> None:
    """Import published weights, e.g. `molssl convert molclr model.pth runs/molclr_gin`."""
    from molssl.chem.serve.convert import convert_molclr

    if source_format.lower() != "molclr":
        raise MolsslError(f"unknown format {source_format!r}; supported: molclr")
    require_input_file(src)
    _check_destination(dst)
    path, notes = convert_molclr(src, dst)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {path}")


def _check_destination(dst: Path) -> None:
    """DST is a ``.pt`` file or a folder; either must be writable (checked before the source is read)."""
    if dst.suffix == ".pt":
        if dst.is_dir():
            raise MolsslError(f"DST {dst} is a folder; give a folder without the .pt ending or a new .pt file name")
        check_writable(dst.parent, "DST")
        return
    if dst.exists() and not dst.is_dir():
        raise MolsslError(f"DST {dst} is a file, not a folder; give a folder or a file name ending in .pt")
    check_writable(dst, "DST")
