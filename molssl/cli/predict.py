"""``molssl predict``: property predictions of shipped or fine-tuned models, one row per input, streamed."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import PRECISION_HELP, check_device, check_positive, echo_err
from molssl.errors import MolsslError

TABLE_MAX_ROWS = 50
TEXT_WIDTH = 40

# options shared by `predict` and `fingerprint` (names as chemprop's where they mean the same)
INPUT_HELP = "Input: .csv (all columns kept), .smi/.txt, .sdf (names and SD properties kept), gzipped too; - for stdin"


def input_or_smiles(smiles: Optional[List[str]], input_file: Optional[str]) -> None:
    if (not smiles) == (input_file is None):
        raise MolsslError("give either --smiles (one or more) or --input FILE (- for stdin)")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def format_table(table) -> str:  # noqa: ANN001 - a pandas DataFrame
    """A readable fixed-width table: 3 decimals, NaN as '-', text cells cut to 40 characters (CSV output keeps all)."""
    from pandas.api.types import is_numeric_dtype

    shown = table.copy()
    for column in [c for c in shown.columns if not is_numeric_dtype(shown[c])]:
        shown[column] = [v if not isinstance(v, str) or len(v) <= TEXT_WIDTH else v[:TEXT_WIDTH - 3] + "..."
                         for v in shown[column]]
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}")


class TerminalSink:
    """stdout on a terminal: a table when the input has at most 50 rows, else CSV as the rows come."""

    done = 0

    def __init__(self) -> None:
        from molssl.chem.serve.outputs import StreamSink

        self.buffer: list = []
        self.csv = StreamSink(sys.stdout)

    def write(self, table, mols) -> None:  # noqa: ANN001
        if self.buffer is not None and sum(map(len, self.buffer)) + len(table) <= TABLE_MAX_ROWS:
            self.buffer.append(table)
            return
        for held in self.buffer or []:
            self.csv.write(held, None)
        self.buffer = None
        self.csv.write(table, mols)

    def close(self) -> None:
        if self.buffer:
            import pandas as pd

            typer.echo(format_table(pd.concat(self.buffer)))

    def stop(self) -> None:
        return None


def predict(
    model: List[str] = typer.Option(..., "--model", "-m", help="Shipped model name (see `molssl models`), a model.pt, "
                                                               "a `molssl finetune` run directory or a folder written by "
                                                               "`molssl models export`; several allowed"),
    smiles: Optional[List[str]] = typer.Option(None, "--smiles", "-s", help="SMILES to predict: -s CCO c1ccccc1"),
    input_file: Optional[str] = typer.Option(None, "--input", "-i", help=INPUT_HELP),
    smiles_column: Optional[str] = typer.Option(None, "--smiles-column", help="CSV column with SMILES "
                                                                              "(default smiles/SMILES/Smiles)"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help=".csv or .sdf file (default: stdout, a table on "
                                                                     "a terminal, CSV otherwise; - for CSV on stdout)"),
    coverage: float = typer.Option(0.9, help="Conformal interval coverage of regression models (<task>_lower/_upper); "
                                             "0 for none"),
    nearest: bool = typer.Option(False, "--nearest", help="Add the nearest training molecule's SMILES and row"),
    domain: bool = typer.Option(True, "--domain/--no-domain", help="Applicability-domain columns"),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted --output file"),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Molecules per forward pass"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    workers: int = typer.Option(1, "--num-workers", "-n", "--workers", help="Featurization processes"),
    cache_dir: Optional[Path] = typer.Option(None, hidden=True, help="Unused: inputs are streamed"),
) -> None:
    """Predict properties: every input row in order, a column per task (std, interval, domain), and a status column.

    Rows are predicted and written chunk by chunk; an interrupted --output run continues with --resume.
    """
    from molssl.chem.serve import streaming
    from molssl.chem.serve.outputs import FORMATS, StreamSink, check_output_file, sidecar_path
    from molssl.chem.serve.predict import Predictor

    input_or_smiles(smiles, input_file)
    check_device(device)
    check_positive(batch_size=batch_size, num_workers=workers, threads=threads)
    if not 0.0 <= coverage < 1.0:
        raise MolsslError(f"--coverage must lie in [0, 1) (e.g. 0.9; 0 for no intervals), got {coverage}")
    path = check_output_file(Path(output), FORMATS, (input_file,) if input_file else ()) if output not in (None, "-") else None
    if resume and path is None:
        raise MolsslError("--resume continues an interrupted --output FILE")
    reader = streaming.open_input(input_file, smiles, smiles_column)
    predictor = Predictor(model, batch_size=batch_size, device=device, threads=threads, n_jobs=workers,
                          coverage=coverage or None, domain=domain, nearest=nearest, progress=True,
                          precision=precision, log=echo_err)
    for ensemble in predictor.models:
        members = f"ensemble of {ensemble.n_members}" if ensemble.n_members > 1 else "single model"
        echo_err(f"{ensemble.name}: {len(ensemble.tasks)} task(s), {members}")
    for note in predictor.notes:
        echo_err(f"note: {note}")
    predictor.check_clash(reader.columns, reader.name)
    if path is not None:
        sink = streaming.file_sink(path, reader, predictor, model, smiles, smiles_column, resume)
        if sink.complete:
            echo_err(f"{path} is already complete (see {sidecar_path(path)}); nothing to resume")
            return
        if sink.done:
            echo_err(f"resuming after row {sink.done:,} (in {sink.partial})")
    else:
        sink = TerminalSink() if output is None and stdout_is_terminal() else StreamSink(sys.stdout)
        units = [f"{c} [{i['units']}]" for c, i in predictor.column_info().items() if i.get("units")
                 and i["kind"] == "prediction"]
        if units:
            echo_err("units: " + ", ".join(units))
    counts = streaming.run(predictor, reader, sink, log=echo_err)
    summary = f"{counts['invalid']} invalid, {counts['out_of_domain']} out of domain"
    if path is not None:
        echo_err(f"wrote {sink.done:,} rows ({summary}) to {path}; columns and units in {sidecar_path(path)}")
    elif counts["invalid"] or counts["out_of_domain"]:
        echo_err(f"{counts['rows']:,} rows: {summary} (see the status and *_in_domain columns)")
