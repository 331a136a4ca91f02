"""Errors that the CLI reports as one clear sentence (no traceback)."""
from __future__ import annotations


class MolsslError(Exception):
    """Base class for user-facing errors: bad input files, invalid SMILES, missing data."""


class InputFileError(MolsslError):
    """A file that cannot be read, is empty, or lacks the expected column."""


class InvalidSmilesError(MolsslError):
    """Some input rows are not valid molecules; the message names them."""

    def __init__(self, source: str, rejected: list[tuple[int, str, str]], total: int, hint: str = "") -> None:
        self.rejected = rejected
        shown = "; ".join(f"line {line}: {smiles!r} ({reason})" for line, smiles, reason in rejected[:5])
        more = f" and {total - 5} more" if total > 5 else ""
        super().__init__(f"{source}: {total} invalid SMILES — {shown}{more}.{(' ' + hint) if hint else ''}")
