"""`molssl predict`, `molssl fingerprint`, `molssl models`, `molssl plot`: the chemist's commands.

Options that take several values accept them after one flag (``--smiles CCO c1ccccc1``,
``--model esol bbbp``) or with the flag repeated.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from molssl.cli.finetune_cli import expand_list_options

app = typer.Typer(help="Predict properties, compute learned fingerprints, list shipped models, plot results.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

_LIST_OPTIONS = ("--smiles", "--model", "--command", "--label")
TABLE_MAX_ROWS = 50


class _ListOptionCommand(TyperCommand):
    def parse_args(self, ctx, args):  # noqa: ANN001 - click's signature
        return super().parse_args(ctx, expand_list_options(list(args), _LIST_OPTIONS))


class _ListOptionGroup(TyperGroup):
    def parse_args(self, ctx, args):  # noqa: ANN001
        return super().parse_args(ctx, expand_list_options(list(args), _LIST_OPTIONS))


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def _input_or_smiles(smiles: Optional[List[str]], input_file: Optional[Path]) -> None:
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


@app.command(cls=_ListOptionCommand)
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

    _input_or_smiles(smiles, input_file)
    predictor = Predictor(model, batch_size=batch_size, device=device, threads=threads, workers=workers)
    for ensemble in predictor.models:
        members = f"ensemble of {ensemble.n_members}" if ensemble.n_members > 1 else "single model"
        _echo_err(f"{ensemble.name}: {len(ensemble.tasks)} task(s), {members}")
    if input_file is not None:
        table = predictor.predict_file(input_file, smiles_column, str(cache_dir) if cache_dir else None)
    else:
        table = predictor.predict_smiles(smiles)
    invalid = int((table[STATUS_COLUMN] != "ok").sum())
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(output, index=False)
        _echo_err(f"wrote {len(table)} rows ({invalid} invalid) to {output}")
    elif len(table) <= TABLE_MAX_ROWS:
        typer.echo(format_table(table))
        if invalid:
            _echo_err(f"{invalid} invalid row(s): see the status column")
    else:
        typer.echo(table.to_csv(index=False), nl=False)


class MapMethod(str, Enum):
    tsne = "tsne"
    umap = "umap"


@app.command(cls=_ListOptionCommand)
def fingerprint(
    output: Path = typer.Option(..., "--output", "-o", help="fps.npy (n x d array), fps.csv or fps.parquet "
                                                            "(input columns, status, fp0..fpN)"),
    input_file: Optional[Path] = typer.Option(None, "--input", "-i", help="CSV or .smi file"),
    smiles: Optional[List[str]] = typer.Option(None, "--smiles", "-s", help="SMILES: --smiles CCO c1ccccc1"),
    smiles_column: Optional[str] = typer.Option(None, help="CSV column with SMILES"),
    model: str = typer.Option("molclr-gin", "--model", "-m", help="Shipped encoder, encoder.pt or fine-tuned model.pt"),
    errors: str = typer.Option("nan", help="nan: NaN rows for invalid SMILES (listed on stderr); raise: stop"),
    batch_size: int = typer.Option(256, help="Molecules per forward pass"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    workers: int = typer.Option(1, help="Featurization processes (2+ overlaps featurizing with the encoder)"),
    cache_dir: Optional[Path] = typer.Option(None, help="Store cache for inputs above 20,000 rows"),
) -> None:
    """Learned fingerprints of every input row (NaN rows for invalid SMILES), as .npy, .csv or .parquet."""
    import numpy as np
    import pandas as pd

    from molssl.chem.serve.fingerprints import InvalidSmilesInput, encode_batches, invalid_inputs, load_encoder
    from molssl.chem.serve.predict import STATUS_COLUMN, file_batches, read_input_table, torch_threads
    from molssl.chem.data.inputs import resolve_smiles_column

    _input_or_smiles(smiles, input_file)
    suffix = output.suffix.lower()
    if suffix not in (".npy", ".csv", ".parquet"):
        raise typer.BadParameter(f"--output must end in .npy, .csv or .parquet, not {output.name!r}")
    if errors not in ("nan", "raise"):
        raise typer.BadParameter("--errors must be nan or raise")
    if input_file is not None:
        column = resolve_smiles_column(input_file, smiles_column)
        table = read_input_table(input_file, column)
        smiles_list = table[column or "smiles"].tolist()
    else:
        column, smiles_list = None, list(smiles)
        table = pd.DataFrame({"smiles": smiles_list})
    encoder = load_encoder(model, device)
    batches = file_batches(input_file, column, smiles_list, batch_size, workers,
                           str(cache_dir) if cache_dir else None, desc="fingerprints")
    with torch_threads(threads):
        features = encode_batches(encoder, batches)
    invalid = invalid_inputs(smiles_list, batches.status)
    if invalid and errors == "raise":
        raise InvalidSmilesInput(invalid)
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(output, features)
    else:
        names = [f"fp{i}" for i in range(features.shape[1])]
        out = pd.concat([table.reset_index(drop=True), pd.DataFrame({STATUS_COLUMN: batches.status}),
                         pd.DataFrame(features, columns=names)], axis=1)
        if suffix == ".csv":
            out.to_csv(output, index=False)
        else:
            try:
                out.to_parquet(output, index=False)
            except ImportError as exc:
                raise typer.BadParameter(f"writing parquet needs pyarrow ({exc}); use .npy or .csv") from exc
    for position, text, reason in invalid[:10]:
        _echo_err(f"invalid row {position}: {text!r} ({reason}) -> NaN")
    _echo_err(f"wrote {features.shape[0]} x {features.shape[1]} fingerprints ({len(invalid)} invalid) to {output}")


models_app = typer.Typer(cls=_ListOptionGroup, invoke_without_command=True, no_args_is_help=False,
                         help="List the shipped models (with their test metrics); show or export model cards.")
app.add_typer(models_app, name="models")


@models_app.callback()
def models(ctx: typer.Context,
           markdown: bool = typer.Option(False, help="Print the list as a markdown table")) -> None:
    """List the shipped models with their scaffold-split test metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from molssl.chem.serve.zoo import list_models, models_table

    cards = list_models()
    if not cards:
        typer.echo("no shipped models found")
        return
    if markdown:
        typer.echo(models_table(cards))
        return
    rows = [("model", "kind", "tasks", "test metric (scaffold)", "members", "size", "date")]
    for c in cards:
        tasks = ", ".join(c.label(t) for t in c.tasks) if len(c.tasks) <= 2 else f"{len(c.tasks)} tasks"
        rows.append((c.name, c.kind, tasks or "-", c.score_text(), str(c.members), f"{c.size_bytes / 1e6:.1f} MB", c.date))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@models_app.command()
def show(name: str = typer.Argument(..., help="Shipped model name")) -> None:
    """Print a shipped model's card (training data, split, metric, units, date, commands)."""
    from molssl.chem.serve.zoo import MODELS_DIR, CARD_MARKDOWN, model_folder

    typer.echo((model_folder(name, MODELS_DIR) / CARD_MARKDOWN).read_text(encoding="utf-8"))


@models_app.command()
def export(
    run_dirs: List[Path] = typer.Argument(..., help="`molssl finetune` run(s) sharing a split, e.g. one per seed "
                                                     "(property model), or one `molssl pretrain` run (encoder)"),
    name: str = typer.Option(..., help="Model name, e.g. esol"),
    title: str = typer.Option(..., help="One-line title"),
    description: str = typer.Option("", help="A few sentences for the card"),
    training_data: str = typer.Option(..., help="Where the training data came from"),
    command: List[str] = typer.Option([], "--command", help="The exact commands that produced the run (repeatable)"),
    label: List[str] = typer.Option([], "--label", help="Display name of a task: TASK=LABEL (repeatable)"),
    units: Optional[str] = typer.Option(None, help="Units of regression predictions"),
    notes: str = typer.Option("", help="Caveats for the card"),
    probe: Optional[Path] = typer.Option(None, help="Encoders: SMILES file to measure the compression's effect on"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the MoleculeNet files (test-split score)"),
    models_dir: Optional[Path] = typer.Option(None, help="Where to write (default: the package's molssl/models)"),
) -> None:
    """Pack a run into the zoo (compact weights + model card)."""
    from molssl.chem.serve.zoo import export_encoder, export_property_model

    labels = {}
    for item in label:
        task, sep, text = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--label must be TASK=LABEL, got {item!r}")
        labels[task] = text
    if len(run_dirs) == 1 and (run_dirs[0] / "encoder.pt").is_file() and not (run_dirs[0] / "results.json").is_file():
        probe_smiles = []
        if probe is not None:
            from molssl.chem.data.inputs import iter_smiles

            probe_smiles = [s for chunk in iter_smiles(probe) for s in chunk.smiles]
        card = export_encoder(run_dirs[0], name, title=title, description=description, training_data=training_data,
                              commands=command, probe_smiles=probe_smiles, notes=notes, models_dir=models_dir)
    else:
        card = export_property_model(run_dirs, name, title=title, description=description,
                                     training_data=training_data, commands=command, task_labels=labels, units=units,
                                     data_dir=str(data_dir) if data_dir else None, notes=notes, models_dir=models_dir)
    typer.echo(f"exported {card.name}: {card.score_text()}, {card.size_bytes / 1e6:.2f} MB")


class PlotKind(str, Enum):
    curves = "curves"
    test = "test"
    map = "map"


@app.command(cls=_ListOptionCommand)
def plot(
    kind: PlotKind = typer.Argument(..., help="curves: pre-training or fine-tuning curves of a run; test: parity/ROC "
                                              "of a fine-tuning run on its test split; map: 2-D map of fingerprints"),
    path: Path = typer.Argument(..., help="Run directory (curves, test) or molecule file (map)"),
    output: Path = typer.Option(..., "--output", "-o", help="PNG file to write"),
    data_dir: Optional[Path] = typer.Option(None, help="test: folder with the MoleculeNet files"),
    smiles_column: Optional[str] = typer.Option(None, help="map: CSV column with SMILES"),
    color_by: Optional[str] = typer.Option(None, help="map: numeric input column to colour by"),
    color_model: Optional[str] = typer.Option(None, help="map: colour by this model's prediction (first task)"),
    model: str = typer.Option("molclr-gin", "--model", "-m", help="map: encoder for the fingerprints"),
    method: MapMethod = typer.Option(MapMethod.tsne, help="map: tsne or umap (needs umap-learn)"),
    seed: int = typer.Option(0, help="map: random seed of the embedding"),
) -> None:
    """Write a PNG: training curves, test-split parity/ROC plot, or a fingerprint map coloured by a property."""
    from molssl.chem.serve import plots

    if kind is PlotKind.curves:
        written = plots.plot_curves(path, output)
    elif kind is PlotKind.test:
        written = plots.plot_test(path, output, str(data_dir) if data_dir else None)
    else:
        written = _plot_map(path, output, smiles_column, color_by, color_model, model, method.value, seed)
    typer.echo(f"wrote {written}")


def _plot_map(path: Path, output: Path, smiles_column: Optional[str], color_by: Optional[str],
              color_model: Optional[str], model: str, method: str, seed: int) -> Path:
    import pandas as pd

    from molssl.chem.serve.fingerprints import fingerprint as fingerprints
    from molssl.chem.data.inputs import resolve_smiles_column
    from molssl.chem.serve.predict import Predictor, read_input_table
    from molssl.chem.serve.plots import plot_fingerprint_map

    if (color_by is None) == (color_model is None):
        raise typer.BadParameter("map: give exactly one of --color-by COLUMN or --color-model MODEL")
    column = resolve_smiles_column(path, smiles_column)
    table = read_input_table(path, column)
    smiles = table[column or "smiles"].tolist()
    if color_by is not None:
        if color_by not in table.columns:
            raise typer.BadParameter(f"{path} has no column {color_by!r}; columns: {', '.join(table.columns)}")
        color, label = pd.to_numeric(table[color_by], errors="coerce").to_numpy(), color_by
    else:
        predictor = Predictor([color_model])
        label = predictor.columns()[0]
        color = predictor.predict_smiles(smiles)[label].to_numpy()
    features = fingerprints(smiles, model=model, errors="nan")
    names = table["name"].tolist() if "name" in table.columns else None
    return plot_fingerprint_map(features, color, output, label, method, names, seed)
