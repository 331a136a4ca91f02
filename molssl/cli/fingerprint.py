"""``molssl fingerprint``: learned fingerprints (the encoder's representation) of every input row."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import echo_err
from molssl.cli.predict import input_or_smiles


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

    from molssl.chem.data.inputs import read_input_table, resolve_smiles_column
    from molssl.chem.data.sources import file_batches
    from molssl.chem.serve.fingerprints import InvalidSmilesInput, encode_batches, invalid_inputs, load_encoder
    from molssl.chem.serve.predict import STATUS_COLUMN
    from molssl.core.device import torch_threads

    input_or_smiles(smiles, input_file)
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
                           str(cache_dir) if cache_dir else None, desc="fingerprints",
                           featurizer=encoder.config.featurizer)
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
        echo_err(f"invalid row {position}: {text!r} ({reason}) -> NaN")
    echo_err(f"wrote {features.shape[0]} x {features.shape[1]} fingerprints ({len(invalid)} invalid) to {output}")
