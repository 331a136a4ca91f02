"""Errors that the CLI reports as one clear sentence (no traceback), and the check of an input file's path."""
from __future__ import annotations

import os


class MolsslError(Exception):
    """Base class for user-facing errors: bad input files, invalid SMILES, missing data."""


class InputFileError(MolsslError):
    """A file that cannot be read, is empty, or lacks the expected column."""


class CorruptFileError(MolsslError, ValueError):
    """A file whose content does not match its recorded digest, or that cannot be read at all."""


class InvalidSmilesError(MolsslError):
    """Some input rows are not valid molecules; the message names them."""

    def __init__(self, source: str, rejected: list[tuple[int, str, str]], total: int, hint: str = "") -> None:
        self.rejected = rejected
        shown = "; ".join(f"line {line}: {smiles!r} ({reason})" for line, smiles, reason in rejected[:5])
        more = f" and {total - 5} more" if total > 5 else ""
        super().__init__(f"{source}: {total} invalid SMILES — {shown}{more}.{(' ' + hint) if hint else ''}")


def require_input_file(path: str | os.PathLike) -> None:
    """:class:`InputFileError` naming ``path`` unless it is a regular file molssl can read.

    molssl reads an input twice (its checksum keys the featurized store, then its rows), so a pipe
    or device such as ``/dev/stdin`` is refused with the reason, not reported as missing.
    """
    if os.path.isfile(path):
        if not os.access(path, os.R_OK):
            raise InputFileError(f"cannot read {path}: permission denied")
        return
    if os.path.isdir(path):
        raise InputFileError(f"cannot read {path}: it is a folder, not a file")
    if os.path.exists(path):
        raise InputFileError(f"cannot read {path}: it is not a regular file (a pipe or device can be read only "
                             "once); save the molecules to a file first")
    raise InputFileError(f"cannot read {path}: no such file")
