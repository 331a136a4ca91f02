"""One prediction run from an input (file, stdin or literal SMILES) to an output (file or stream), streamed.

What ``molssl predict`` does, as a library function: open the input, check it against the
predictor's columns, open the output (or resume it), and predict chunk by chunk; the command line
only parses options and prints.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from molssl.chem.data.inputs import MoleculeReader
from molssl.chem.data.objects import ChunkReader, molecules_chunk
from molssl.chem.serve.outputs import FileSink
from molssl.chem.serve.predict import CHUNK_ROWS, Predictor
from molssl.core.stopping import stop_on_sigterm
from molssl.errors import MolsslError


def open_input(input_file: Optional[str], smiles: Optional[Sequence[str]], smiles_column: Optional[str]) -> Any:
    """A reader of ``--input`` (a file, or ``-`` for stdin) or of ``--smiles`` given on the command line."""
    if input_file is not None:
        return MoleculeReader(input_file, smiles_column, CHUNK_ROWS)
    return ChunkReader(molecules_chunk(list(smiles or [])), "--smiles", CHUNK_ROWS)


def run_identity(reader: Any, predictor: Predictor, models: Sequence[str], smiles: Optional[Sequence[str]],
                 smiles_column: Optional[str]) -> dict:
    """What must not change between a run and its ``--resume``."""
    stat = reader.path.stat() if reader.path is not None else None
    return {"input": str(reader.path.resolve()) if stat else None, "input_bytes": stat.st_size if stat else None,
            "input_mtime_ns": stat.st_mtime_ns if stat else None, "smiles": list(smiles) if smiles else None,
            "smiles_column": smiles_column, "models": [str(m) for m in models], "columns": predictor.columns(),
            "coverage": predictor.coverage}


def file_sink(output: Path, reader: Any, predictor: Predictor, models: Sequence[str], smiles: Optional[Sequence[str]],
              smiles_column: Optional[str], resume: bool) -> FileSink:
    if resume and reader.path is None:
        raise MolsslError("--resume continues an --output file predicted from an --input file (not stdin or --smiles)")
    return FileSink(output, run_identity(reader, predictor, models, smiles, smiles_column),
                    {"columns": predictor.column_info(), "models": predictor.summary(), "notes": predictor.notes}, resume)


def run(predictor: Predictor, reader: Any, sink: Any, log: Callable[[str], None]) -> dict:
    """Predict every row of ``reader`` not yet in ``sink`` (SIGTERM stops cleanly, saying what was written)."""
    with stop_on_sigterm():
        return predictor.write(reader, sink, log=log)
