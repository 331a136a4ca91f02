"""Reading molecules: SMILES from .smi/.txt, .csv and stdin, records from .sdf, objects from Python; in chunks.

Two readers share the file conventions. :func:`iter_smiles` yields only the SMILES text (and label
columns), for the store that pre-training and fine-tuning featurize. :class:`MoleculeReader` yields
every input row with all of its own columns (a CSV's columns, a .smi file's name, an SD record's
name and properties) for prediction and fingerprints, which stream their output chunk by chunk;
:mod:`molssl.chem.data.objects` does the same for Python inputs (SMILES, RDKit molecules, pandas objects).
Rows that hold no readable molecule are kept, with the reason, never dropped.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import sys
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Sequence

import pandas as pd

from molssl.errors import InputFileError

SMILES_COLUMN_CANDIDATES = ("smiles", "SMILES", "Smiles")
MOL_COLUMN_CANDIDATES = ("ROMol", "mol", "Mol", "molecule")  # RDKit PandasTools names its column ROMol
STDIN = "-"


class SmilesChunk(NamedTuple):
    """Consecutive data rows: 0-based row numbers, 1-based line numbers in the file, the SMILES, and
    the text of any other requested columns (labels), by column name."""

    rows: list[int]
    lines: list[int]
    smiles: list[str]
    columns: Optional[dict[str, list[str]]] = None


class MoleculeChunk(NamedTuple):
    """Consecutive input rows with everything the input said about them.

    ``table`` holds the input's own columns (index: the input's index, or the 0-based row);
    ``smiles`` the text to featurize ("" where the row holds no molecule); ``mols`` the RDKit
    molecules when the input held molecules (SD records, ``Mol`` objects); ``reasons`` maps a
    position in the chunk to why its row holds no molecule, when that was decided while reading.
    """

    start: int
    table: pd.DataFrame
    smiles: list[str]
    mols: Optional[list] = None
    reasons: Optional[dict[int, str]] = None

    def __len__(self) -> int:
        return len(self.smiles)


def _is_csv(path: Path) -> bool:
    return ".csv" in path.suffixes


def is_sdf(path: str | Path) -> bool:
    """``.sdf`` or ``.sdf.gz`` (any case)."""
    return str(path).lower().removesuffix(".gz").endswith(".sdf")


def open_text(path: Path, encoding: str = "utf-8") -> io.TextIOBase:
    if not path.is_file():
        raise InputFileError(f"cannot read {path}: {'it is a folder' if path.is_dir() else 'no such file'}")
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding=encoding, newline="")
        return open(path, "r", encoding=encoding, newline="")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def unreadable(source: object, exc: BaseException, what: str = "", lines_before: int = 0) -> InputFileError:
    """One sentence for a file that cannot be read as text: which file, and the likely remedy.

    ``lines_before``: lines of the file read before pandas started (1 when the header was read apart), so that a
    CSV syntax error names the file's own line.
    """
    path = Path(str(source))
    if isinstance(exc, pd.errors.ParserError):
        where = _csv_syntax_error(str(exc), lines_before)
        if where:
            return InputFileError(f"{source}, {where}")
    if isinstance(exc, UnicodeDecodeError):
        try:
            with open(path, "rb") as handle:
                compressed = handle.read(2) == b"\x1f\x8b"
        except OSError:
            compressed = False
        if compressed and path.suffix != ".gz":
            return InputFileError(f"{source} is gzip-compressed; name it with a .gz suffix (e.g. "
                                  f"{path.name}.gz) or decompress it")
        return InputFileError(f"{source} is not UTF-8 text (it holds byte 0x{exc.object[exc.start]:02x}); "
                              f"save it as UTF-8")
    if isinstance(exc, gzip.BadGzipFile):
        return InputFileError(f"{source} ends in .gz but is not gzip-compressed; remove the .gz suffix")
    if isinstance(exc, EOFError):
        return InputFileError(f"{source} ends early (a truncated compressed file?); copy it again")
    return InputFileError(f"{source} {what or 'cannot be read'} ({exc})")


def _csv_syntax_error(message: str, lines_before: int) -> Optional[str]:
    """pandas' tokenizer message as the file's line number and what is wrong there (None: not one of those)."""
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        expected, line, seen = (int(g) for g in fields.groups())
        return (f"line {line + lines_before}: {seen} fields where the header has {expected} (put a value that "
                f"holds a comma in double quotes)")
    quote = re.search(r"EOF inside string starting at row (\d+)", message)
    if quote:  # pandas counts rows from 0 at the first line it read
        return f"line {int(quote.group(1)) + 1 + lines_before}: a double quote opens a value that is never closed"
    return None


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (how run directories identify their input)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_header(path: Path) -> list[str]:
    """Column names of a CSV file (plain or gzipped)."""
    with open_text(path) as handle:
        try:
            return pd.read_csv(handle, nrows=0).columns.tolist()
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise unreadable(path, exc, "is empty or not a readable CSV file") from None


def pick_smiles_column(header: Sequence, requested: Optional[str], source: object) -> str:
    """The requested column (checked), else the first of smiles/SMILES/Smiles in ``header``."""
    if requested is not None:
        if requested not in header:
            raise InputFileError(f"{source} has no column {requested!r}; its columns are: {', '.join(map(str, header))}")
        return requested
    for name in SMILES_COLUMN_CANDIDATES:
        if name in header:
            return name
    raise InputFileError(f"{source} has no SMILES column (looked for {', '.join(SMILES_COLUMN_CANDIDATES)}); "
                         f"name it with --smiles-column (columns: {', '.join(map(str, header))})")


def resolve_smiles_column(path: Path, requested: Optional[str]) -> Optional[str]:
    """The CSV column holding SMILES: the requested one, else the first of smiles/SMILES/Smiles present."""
    return pick_smiles_column(read_header(path), requested, path) if _is_csv(path) else None


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
        raise unreadable(path, exc) from exc


def _iter_csv(path: Path, column: str, chunk_size: int, columns: list[str]) -> Iterator[SmilesChunk]:
    row = 0
    with open_text(path) as handle:
        header = pd.read_csv(handle, nrows=0).columns.tolist()
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputFileError(f"{path} has no column(s) {', '.join(map(repr, missing))}; its columns are: "
                             f"{', '.join(header)}")
    with open_text(path) as handle:
        # blank lines stay rows (reported as empty SMILES) so line numbers stay exact; every column is read, because
        # with usecols pandas accepts a row with too many fields and shifts its values into the wrong columns
        reader = pd.read_csv(handle, dtype=str, keep_default_na=False, skip_blank_lines=False, chunksize=chunk_size)
        for frame in reader:
            smiles = frame[column].tolist()
            rows = list(range(row, row + len(smiles)))
            extra = {c: frame[c].tolist() for c in columns} if columns else None
            yield SmilesChunk(rows, [r + 2 for r in rows], smiles, extra)
            row += len(smiles)


def _smiles_lines(lines: Any) -> Iterator[tuple[int, str, str]]:
    """(line number, SMILES, rest of the line) of each non-blank line; a first line ``smiles ...`` is a header."""
    for number, text in enumerate(lines, start=1):
        parts = text.split(maxsplit=1)
        if not parts or (number == 1 and parts[0].lower() == "smiles"):
            continue
        yield number, parts[0], parts[1].strip() if len(parts) > 1 else ""


def _iter_lines(path: Path, chunk_size: int) -> Iterator[SmilesChunk]:
    lines: list[int] = []
    smiles: list[str] = []
    row = 0
    with open_text(path) as handle:
        for line_number, token, _rest in _smiles_lines(handle):
            lines.append(line_number)
            smiles.append(token)
            if len(smiles) == chunk_size:
                yield SmilesChunk(list(range(row, row + len(smiles))), lines, smiles)
                row += len(smiles)
                lines, smiles = [], []
    if smiles:
        yield SmilesChunk(list(range(row, row + len(smiles))), lines, smiles)


def read_input_table(path: Path, smiles_column: Optional[str]) -> pd.DataFrame:
    """The input as a table of strings, one row per molecule row of the featurizer.

    CSV: all columns, blank lines kept as rows (like :func:`~molssl.chem.data.inputs.iter_smiles`).
    SMILES files: ``smiles`` and ``name`` (the rest of the line, often a name or ID).
    """
    if smiles_column is not None:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise unreadable(path, exc) from exc
    with open_text(path) as handle:
        rows = [(token, rest) for _n, token, rest in _smiles_lines(handle)]
    return pd.DataFrame(rows, columns=["smiles", "name"], dtype=object)


# --------------------------------------------------------------------------- whole rows, streamed
class MoleculeReader:
    """Every row of a ``.csv``, ``.smi``/``.txt`` or ``.sdf`` file (gzipped too), or of stdin (``-``), in chunks.

    ``columns`` (known before the first chunk) are the input's own columns: a CSV's header; ``smiles``
    and ``name`` for SMILES lines; ``name``, ``smiles`` and every SD property for an SD file. Stdin
    holds SMILES lines, or a CSV when its first line names the SMILES column (so does a pipe named as a file).
    """

    def __init__(self, source: str | Path, smiles_column: Optional[str] = None, chunk_size: int = 4096,
                 stream: Optional[io.TextIOBase] = None) -> None:
        given = None if str(source) == STDIN else Path(source).expanduser()
        # stdin, or a pipe / device such as /dev/stdin: read once, as it comes
        self.stdin = given is None or (given.exists() and not given.is_file() and not given.is_dir())
        self.path = None if self.stdin else given
        self.name = "stdin" if given is None else str(given)
        self.chunk_size = chunk_size
        self._stream = (stream or (sys.stdin if given is None else open(given, encoding="utf-8"))) if self.stdin else None
        self._first = self._stream.readline() if self.stdin else None
        if self.stdin:
            cells = next(csv.reader([self._first]), [])
            as_csv = smiles_column is not None or any(c in cells for c in SMILES_COLUMN_CANDIDATES)
            self.kind = "csv" if as_csv else "smi"
            self._header = cells if as_csv else []
        else:
            open_text(self.path).close()  # a missing file, a folder, no permission: said now, before any work
            self.kind = "sdf" if is_sdf(self.path) else "csv" if _is_csv(self.path) else "smi"
            self._header = self._file_header() if self.kind != "smi" else []
        if self.kind == "csv":
            self.smiles_column = pick_smiles_column(self._header, smiles_column, self.name)
            self.columns = list(self._header)
        else:
            if smiles_column is not None:
                raise InputFileError(f"--smiles-column names a CSV column, but {self.name} is not a CSV file")
            self.smiles_column = "smiles"
            self.columns = ["name", "smiles", *self._header] if self.kind == "sdf" else ["smiles", "name"]
        self._used = False

    def _file_header(self) -> list[str]:
        if self.kind == "csv":
            return read_header(self.path)
        from molssl.chem.data.sdf import sd_property_names

        with open_text(self.path) as handle:
            return self._guard(lambda: sd_property_names(handle))

    def _guard(self, work: Any) -> Any:
        try:
            return work()
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, pd.errors.ParserError, OSError) as exc:
            raise unreadable(self.name, exc, lines_before=int(self.kind == "csv")) from None  # header read apart

    def __iter__(self) -> Iterator[MoleculeChunk]:
        return self.chunks()

    def chunks(self, skip: int = 0) -> Iterator[MoleculeChunk]:
        """The rows from row ``skip`` on (earlier rows are read but not parsed into molecules)."""
        if self.stdin and self._used:
            raise InputFileError("stdin can be read only once")
        self._used = True
        handle = self._stream if self.stdin else open_text(self.path, "utf-8-sig")
        try:
            parts = {"csv": self._csv_chunks, "smi": self._smi_chunks, "sdf": self._sdf_chunks}[self.kind](handle, skip)
            while True:
                chunk = self._guard(lambda: next(parts, None))
                if chunk is None:
                    return
                yield chunk
        finally:
            if not self.stdin:
                handle.close()

    def _csv_chunks(self, handle: Any, skip: int) -> Iterator[MoleculeChunk]:
        if not self.stdin:
            handle.readline()  # the header, read already
        frames = pd.read_csv(handle, header=None, names=self._header, dtype=str, keep_default_na=False,
                             skip_blank_lines=False, chunksize=self.chunk_size) if self._header else iter(())
        row = 0
        for frame in frames:
            frame.index = pd.RangeIndex(row, row + len(frame))
            row += len(frame)
            if row > skip:
                frame = frame.iloc[max(0, skip - frame.index[0]):]
                yield MoleculeChunk(int(frame.index[0]), frame, frame[self.smiles_column].tolist())

    def _smi_chunks(self, handle: Any, skip: int) -> Iterator[MoleculeChunk]:
        lines = _chain_first(self._first, handle) if self.stdin else handle
        rows: list[tuple[str, str]] = []
        start = 0
        for _number, token, rest in _smiles_lines(lines):
            if start + len(rows) < skip:
                start += 1
                continue
            rows.append((token, rest))
            if len(rows) == self.chunk_size:
                yield _smiles_chunk(start, rows)
                start, rows = start + len(rows), []
        if rows:
            yield _smiles_chunk(start, rows)

    def _sdf_chunks(self, handle: Any, skip: int) -> Iterator[MoleculeChunk]:
        from molssl.chem.data.sdf import sd_rows

        columns, start, rows, mols, reasons = ["name", "smiles", *self._header], skip, [], [], {}
        for values, mol, reason in sd_rows(handle, skip):
            if reason is not None:
                reasons[len(rows)] = reason
            rows.append([values.get(c, "") for c in columns])
            mols.append(mol)
            if len(rows) == self.chunk_size:
                yield _table_chunk(start, rows, columns, mols, reasons)
                start, rows, mols, reasons = start + len(rows), [], [], {}
        if rows:
            yield _table_chunk(start, rows, columns, mols, reasons)


def _chain_first(first: str, rest: Any) -> Iterator[str]:
    yield first
    yield from rest


def _smiles_chunk(start: int, rows: list[tuple[str, str]]) -> MoleculeChunk:
    return _table_chunk(start, rows, ["smiles", "name"])


def _table_chunk(start: int, rows: list, columns: list[str], mols: Optional[list] = None,
                 reasons: Optional[dict[int, str]] = None) -> MoleculeChunk:
    table = pd.DataFrame(rows, columns=columns, dtype=object, index=pd.RangeIndex(start, start + len(rows)))
    return MoleculeChunk(start, table, table["smiles"].tolist(), mols, reasons or None)
