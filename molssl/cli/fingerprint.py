"""``molssl fingerprint``: learned fingerprints (the encoder's representation) of every input row."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import PRECISION_HELP, check_device, check_positive, echo_err, resolved_precision
from molssl.cli.predict import INPUT_HELP, input_or_smiles
from molssl.chem.serve.zoo import DEFAULT_FINGERPRINT_ENCODER
from molssl.errors import MolsslError

SUFFIXES = (".npy", ".csv", ".parquet")


def parquet_available() -> bool:
    return any(importlib.util.find_spec(engine) is not None for engine in ("pyarrow", "fastparquet"))


def fingerprint(
    output: Path = typer.Option(..., "--output", "-o", help="fps.npy (n x d array), fps.csv or fps.parquet "
                                                            "(input columns, status, fp0..fpN)"),
    input_file: Optional[str] = typer.Option(None, "--input", "-i", help=INPUT_HELP),
    smiles: Optional[List[str]] = typer.Option(None, "--smiles", "-s", help="SMILES: -s CCO c1ccccc1"),
    smiles_column: Optional[str] = typer.Option(None, "--smiles-column", help="CSV column with SMILES"),
    model: str = typer.Option(DEFAULT_FINGERPRINT_ENCODER, "--model", "-m", help="Shipped encoder, encoder.pt or fine-tuned model.pt"),
    errors: str = typer.Option("nan", help="nan: NaN rows for invalid SMILES (listed on stderr); raise: stop"),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Molecules per forward pass"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    workers: int = typer.Option(1, "--num-workers", "-n", "--workers",
                                help="Featurization processes (2+ overlaps featurizing with the encoder)"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    cache_dir: Optional[Path] = typer.Option(None, hidden=True, help="Unused: inputs are read in chunks"),
) -> None:
    """Learned fingerprints of every input row (NaN rows for invalid SMILES), as .npy, .csv or .parquet."""
    import numpy as np

    from molssl.chem.data.inputs import STDIN, MoleculeReader
    from molssl.chem.data.objects import ChunkReader, molecules_chunk
    from molssl.chem.serve.fingerprints import (InvalidSmilesInput, fingerprint_rows, invalid_inputs,
                                                load_encoder)
    from molssl.chem.serve.outputs import check_output_file
    from molssl.chem.serve.predict import STATUS_COLUMN
    from molssl.core.device import torch_threads

    input_or_smiles(smiles, input_file)
    check_device(device)
    check_positive(batch_size=batch_size, num_workers=workers, threads=threads)
    if errors not in ("nan", "raise"):
        raise MolsslError(f"--errors must be nan or raise, got {errors!r}")
    output = check_output_file(output, SUFFIXES, (input_file,) if input_file not in (None, STDIN) else ())
    suffix = output.suffix.lower()
    if suffix == ".parquet" and not parquet_available():
        raise MolsslError(f"writing {output.name} needs pyarrow (pip install pyarrow); or write .npy or .csv")
    reader = MoleculeReader(input_file, smiles_column) if input_file is not None else \
        ChunkReader(molecules_chunk(list(smiles)), "--smiles")
    if suffix != ".npy":
        clash = [c for c in reader.columns if c == STATUS_COLUMN or (c.startswith("fp") and c[2:].isdigit())]
        if clash:
            raise MolsslError(f"{reader.name} already has column(s) {', '.join(clash)}, which the output adds; "
                              "rename them first")
    encoder = load_encoder(model, device)
    precision = resolved_precision(precision, device)
    with torch_threads(threads):
        features, status, table = fingerprint_rows(encoder, reader, batch_size, workers, progress=True,
                                                   precision=precision)
    invalid = invalid_inputs(table[reader.smiles_column].tolist(), status)
    if invalid and errors == "raise":
        raise InvalidSmilesInput(invalid, hint="use --errors nan to get NaN rows for them")
    if suffix == ".npy":
        with open(output, "wb") as handle:  # np.save(path) would append .npy to a name such as FPS.NPY
            np.save(handle, features)
    else:
        import pandas as pd

        out = pd.concat([table.reset_index(drop=True), pd.DataFrame({STATUS_COLUMN: status}),
                         pd.DataFrame(features, columns=[f"fp{i}" for i in range(features.shape[1])])], axis=1)
        out.to_csv(output, index=False) if suffix == ".csv" else out.to_parquet(output, index=False)
    for position, text, reason in invalid[:10]:
        echo_err(f"invalid row {position}: {text!r} ({reason}) -> NaN")
    echo_err(f"wrote {features.shape[0]} x {features.shape[1]} fingerprints ({len(invalid)} invalid) to {output}")
