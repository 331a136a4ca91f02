"""``molssl plot``: training curves, test-split parity/ROC plots and fingerprint maps as PNG files."""
from __future__ import annotations

import importlib.util
import zlib
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from molssl.chem.serve.zoo import DEFAULT_FINGERPRINT_ENCODER
from molssl.cli.common import check_folder
from molssl.core.rundir import check_writable
from molssl.errors import MolsslError, require_input_file


class MapMethod(str, Enum):
    tsne = "tsne"
    umap = "umap"


class PlotKind(str, Enum):
    curves = "curves"
    test = "test"
    map = "map"


def plot(
    kind: PlotKind = typer.Argument(..., help="curves: pre-training or fine-tuning curves of a run; test: parity/ROC "
                                              "of a fine-tuning run on its test split; map: 2-D map of fingerprints"),
    path: Path = typer.Argument(..., help="Run directory (curves, test) or molecule file (map)"),
    output: Path = typer.Option(..., "--output", "-o", help="PNG file to write"),
    data_dir: Optional[Path] = typer.Option(None, help="test: folder with the MoleculeNet files"),
    smiles_column: Optional[str] = typer.Option(None, help="map: CSV column with SMILES"),
    color_by: Optional[str] = typer.Option(None, help="map: numeric input column to colour by"),
    color_model: Optional[str] = typer.Option(None, help="map: colour by this model's prediction (first task)"),
    model: str = typer.Option(DEFAULT_FINGERPRINT_ENCODER, "--model", "-m", help="map: encoder for the fingerprints"),
    method: MapMethod = typer.Option(MapMethod.tsne, help="map: tsne or umap (needs umap-learn)"),
    seed: int = typer.Option(0, help="map: random seed of the embedding"),
) -> None:
    """Write a PNG: training curves, test-split parity/ROC plot, or a fingerprint map coloured by a property."""
    from molssl.chem.serve import plots

    _check_paths(kind, path, output, data_dir)
    if kind is PlotKind.map and method is MapMethod.umap and importlib.util.find_spec("umap") is None:
        raise MolsslError("--method umap needs the umap-learn package (pip install umap-learn); or use --method tsne")
    if kind is PlotKind.curves:
        written = plots.plot_curves(path, output)
    elif kind is PlotKind.test:
        written = plots.plot_test(path, output, str(data_dir) if data_dir else None)
    else:
        written = _plot_map(path, output, smiles_column, color_by, color_model, model, method.value, seed)
    typer.echo(f"wrote {written}")


def _check_paths(kind: PlotKind, path: Path, output: Path, data_dir: Optional[Path]) -> None:
    """Inputs exist and the PNG can be written, before fingerprints or plots are computed."""
    if kind is PlotKind.map:
        require_input_file(path)
    else:
        check_folder(path, "PATH (a run directory)")
    check_folder(data_dir, "--data-dir")
    if output.is_dir():
        raise MolsslError(f"-o {output} is a folder; give a file name such as {output / (kind.value + '.png')}")
    check_writable(output.parent, "-o")


def _plot_map(path: Path, output: Path, smiles_column: Optional[str], color_by: Optional[str],
              color_model: Optional[str], model: str, method: str, seed: int) -> Path:
    import pandas as pd

    from molssl.chem.data.inputs import read_input_table, resolve_smiles_column
    from molssl.chem.serve.fingerprints import fingerprint as fingerprints
    from molssl.chem.serve.plots import plot_fingerprint_map
    from molssl.chem.serve.predict import Predictor

    if (color_by is None) == (color_model is None):
        raise MolsslError("map: give exactly one of --color-by COLUMN or --color-model MODEL")
    column = resolve_smiles_column(path, smiles_column)
    try:
        table = read_input_table(path, column)
    except (EOFError, zlib.error) as exc:  # a gzip cut short: name the file (the reader does not)
        raise MolsslError(f"cannot read {path}: it is truncated or damaged ({exc})") from None
    smiles = table[column or "smiles"].tolist()
    if color_by is not None:
        if color_by not in table.columns:
            raise MolsslError(f"{path} has no column {color_by!r}; columns: {', '.join(table.columns)}")
        color, label = pd.to_numeric(table[color_by], errors="coerce").to_numpy(), color_by
    else:
        predictor = Predictor([color_model])
        label = predictor.columns()[0]
        color = predictor.predict_smiles(smiles)[label].to_numpy()
    features = fingerprints(smiles, model=model, errors="nan")
    names = table["name"].tolist() if "name" in table.columns else None
    return plot_fingerprint_map(features, color, output, label, method, names, seed)
