"""Reading SMILES from .smi/.txt (one per line) and .csv files, plain or gzipped, in bounded chunks."""
from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Sequence

import pandas as pd

from molssl.errors import InputFileError

SMILES_COLUMN_CANDIDATES = ("smiles", "SMILES", "Smiles")


class SmilesChunk(NamedTuple):
    """Consecutive data rows: 0-based row numbers, 1-based line numbers in the file, the SMILES, and
    the text of any other requested columns (labels), by column name."""

    rows: list[int]
    lines: list[int]
    smiles: list[str]
    columns: Optional[dict[str, list[str]]] = None


def _is_csv(path: Path) -> bool:
    return ".csv" in path.suffixes


def open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise InputFileError(f"cannot read {path}: no such file")
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", newline="")
        return open(path, "r", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_header(path: Path) -> list[str]:
    """Column names of a CSV file (plain or gzipped)."""
    with open_text(path) as handle:
        try:
            return pd.read_csv(handle, nrows=0).columns.tolist()
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise InputFileError(f"{path} is empty or not a readable CSV file ({exc})") from None


def resolve_smiles_column(path: Path, requested: Optional[str]) -> Optional[str]:
    """The CSV column holding SMILES: the requested one, else the first of smiles/SMILES/Smiles present."""
    if not _is_csv(path):
        return None
    header = read_header(path)
    if requested is not None:
        if requested not in header:
            raise InputFileError(f"{path} has no column {requested!r}; its columns are: {', '.join(header)}")
        return requested
    for name in SMILES_COLUMN_CANDIDATES:
        if name in header:
            return name
    raise InputFileError(f"{path} has no SMILES column (looked for {', '.join(SMILES_COLUMN_CANDIDATES)}); "
                         f"name it with --smiles-column (columns: {', '.join(header)})")


def iter_smiles(path: str | Path, smiles_column: Optional[str] = None, chunk_size: int = 4096,
                columns: Sequence[str] = ()) -> Iterator[SmilesChunk]:
    """Yield the file's SMILES in chunks, never holding the whole file in memory.

    ``.csv``/``.csv.gz``: one row per molecule (header on line 1); empty cells are kept (and later
    reported as invalid); ``columns`` (e.g. labels) come along as text. Other files: the first
    whitespace-separated token of each non-blank line; a first line that reads ``smiles`` is taken
    as a header.
    """
    path = Path(path)
    column = resolve_smiles_column(path, smiles_column)
    if columns and column is None:
        raise InputFileError(f"{path} is not a CSV file; label columns ({', '.join(columns)}) need a .csv input")
    try:
        if column is not None:
            yield from _iter_csv(path, column, chunk_size, list(columns))
        else:
            yield from _iter_lines(path, chunk_size)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, pd.errors.ParserError) as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from exc


def _iter_csv(path: Path, column: str, chunk_size: int, columns: list[str]) -> Iterator[SmilesChunk]:
    row = 0
    with open_text(path) as handle:
        header = pd.read_csv(handle, nrows=0).columns.tolist()
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputFileError(f"{path} has no column(s) {', '.join(map(repr, missing))}; its columns are: "
                             f"{', '.join(header)}")
    wanted = [column] + [c for c in columns if c != column]
    with open_text(path) as handle:
        # blank lines stay rows (reported as empty SMILES) so line numbers stay exact
        reader = pd.read_csv(handle, usecols=wanted, dtype=str, keep_default_na=False,
                             skip_blank_lines=False, chunksize=chunk_size)
        for frame in reader:
            smiles = frame[column].tolist()
            rows = list(range(row, row + len(smiles)))
            extra = {c: frame[c].tolist() for c in columns} if columns else None
            yield SmilesChunk(rows, [r + 2 for r in rows], smiles, extra)
            row += len(smiles)


def _iter_lines(path: Path, chunk_size: int) -> Iterator[SmilesChunk]:
    rows: list[int] = []
    lines: list[int] = []
    smiles: list[str] = []
    row = 0
    with open_text(path) as handle:
        for line_number, text in enumerate(handle, start=1):
            token = text.split(maxsplit=1)[0] if text.strip() else ""
            if not token or (line_number == 1 and token.lower() == "smiles"):
                continue
            rows.append(row)
            lines.append(line_number)
            smiles.append(token)
            row += 1
            if len(smiles) == chunk_size:
                yield SmilesChunk(rows, lines, smiles)
                rows, lines, smiles = [], [], []
    if smiles:
        yield SmilesChunk(rows, lines, smiles)


def read_input_table(path: Path, smiles_column: Optional[str]) -> pd.DataFrame:
    """The input as a table of strings, one row per molecule row of the featurizer.

    CSV: all columns, blank lines kept as rows (like :func:`~molssl.chem.data.inputs.iter_smiles`).
    SMILES files: ``smiles`` and ``name`` (the rest of the line, often a name or ID).
    """
    if smiles_column is not None:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputFileError(f"cannot read {path}: {exc}") from exc
    wanted = {line for chunk in iter_smiles(path) for line in chunk.lines}
    smiles, names = [], []
    with open_text(path) as handle:
        for line_number, text in enumerate(handle, start=1):
            if line_number in wanted:
                parts = text.split(maxsplit=1)
                smiles.append(parts[0])
                names.append(parts[1].strip() if len(parts) > 1 else "")
    return pd.DataFrame({"smiles": smiles, "name": names})
