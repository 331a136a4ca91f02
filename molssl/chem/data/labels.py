"""Label cells (text from the input reader) to numbers: NaN for a missing label, one clear error otherwise."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from molssl.errors import InputFileError

MISSING_TOKENS = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "na", "n/a", "null", "NULL", "None"})


class LabelError(InputFileError):
    """A label cell that is neither a finite number nor a missing-value token; names line, column and value."""


def parse_label_cells(cells: Sequence[str], lines: Sequence[int], column: str) -> np.ndarray:
    """float64 labels of one column; NaN for missing tokens; text, ``inf`` and ``nan``-like numbers raise.

    ``lines`` are the 1-based file lines of the cells, for the error message.
    """
    out = np.empty(len(cells), dtype=np.float64)
    for i, (cell, line) in enumerate(zip(cells, lines)):
        text = cell.strip() if isinstance(cell, str) else ""
        if text in MISSING_TOKENS:
            out[i] = np.nan
            continue
        try:
            value = float(text)
        except ValueError:
            raise LabelError(f"line {line}: column {column!r} holds {cell!r}, which is not a number") from None
        if not math.isfinite(value):
            raise LabelError(f"line {line}: column {column!r} holds {cell!r}; labels must be finite numbers "
                             "(leave the cell empty for a missing label)")
        out[i] = value
    return out


def check_class_labels(labels: np.ndarray, tasks: Sequence[str], lines: np.ndarray, source: str) -> None:
    """Classification labels must be 0 or 1 (or missing); the first offending cell is named."""
    bad = ~np.isnan(labels) & (labels != 0) & (labels != 1)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise LabelError(f"{source}: line {int(lines[i])}: column {tasks[j]!r} holds {labels[i, j]:g}, which is not "
                         f"a class label (0 or 1){f'; {int(bad.sum()) - 1} more such cells' if bad.sum() > 1 else ''}")
