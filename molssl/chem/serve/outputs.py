"""Writing prediction tables as they are computed: CSV or SD files, or CSV on a stream (stdout).

A file is written in chunks to ``<stem>.partial<suffix>`` (``preds.partial.csv``) and renamed to its
own name when the last row is in, so a file under the requested name is always complete. Beside it,
``<name>.json`` (``preds.csv.json``) says what every column holds (model, task, units, interval
coverage), how uncertainty and domain were computed, and how far the run got: after each chunk it
records the rows and bytes written, so a killed run leaves a valid prefix and says so, and
``resume`` truncates the partial file to its last complete chunk and continues after it. Outputs are
checked before any work starts (a folder, an unwritable folder, an unknown suffix).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional, TextIO

import pandas as pd

from molssl import __version__
from molssl.errors import MolsslError

FORMATS = (".csv", ".sdf")
NAME_COLUMN = "name"
FLOAT_FORMAT = "%.7g"  # predictions come from float32 models: 7 significant digits are all they hold


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + ".json")


def partial_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.partial{output.suffix}")


def check_output_file(output: Path, suffixes: tuple[str, ...], inputs: tuple = ()) -> Path:
    """``output`` as a writable file name with one of ``suffixes``, checked before any work starts."""
    output = Path(output).expanduser()
    if output.is_dir() or str(output).endswith(os.sep):
        raise MolsslError(f"--output {output} is a folder; give a file name such as {output / ('out' + suffixes[0])}")
    if output.suffix.lower() not in suffixes:
        choices = suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
        raise MolsslError(f"--output must end in {choices}, not {output.name!r}")
    if any(str(i) != "-" and Path(i).expanduser().resolve() == output.resolve() for i in inputs):
        raise MolsslError(f"--output {output} is the input file; choose another name")
    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MolsslError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise MolsslError(f"cannot write {output}: permission denied")
    return output


class CsvFormat:
    """Rows as CSV (header first); numbers to 7 significant digits, booleans as True/False, missing values empty."""

    def header(self, handle: TextIO, columns: list[str]) -> None:
        pd.DataFrame(columns=columns).to_csv(handle, index=False)

    def rows(self, handle: TextIO, table: pd.DataFrame, mols: Optional[list]) -> None:
        table.to_csv(handle, index=False, header=False, float_format=FLOAT_FORMAT)


class SdfFormat:
    """One SD record per row: the input's molecule (or one built from its SMILES, with 2D coordinates; an
    empty one for invalid rows), named after the ``name`` column, every other non-empty cell as an SD property."""

    def header(self, handle: TextIO, columns: list[str]) -> None:
        pass

    def rows(self, handle: TextIO, table: pd.DataFrame, mols: Optional[list]) -> None:
        from rdkit import Chem
        from rdkit.Chem import rdDepictor

        writer = Chem.SDWriter(handle)
        smiles = table.get("smiles")
        for i, (_, row) in enumerate(table.iterrows()):
            mol = mols[i] if mols is not None and i < len(mols) else None
            if mol is None and smiles is not None and isinstance(row["smiles"], str) and row["smiles"]:
                mol = Chem.MolFromSmiles(row["smiles"])
                if mol is not None:
                    rdDepictor.Compute2DCoords(mol)
            mol = Chem.Mol(mol) if mol is not None else Chem.Mol()
            for key in list(mol.GetPropNames()):
                mol.ClearProp(key)
            mol.SetProp("_Name", _text(row[NAME_COLUMN]) if NAME_COLUMN in table.columns else "")
            for column, value in row.items():
                if column != NAME_COLUMN and _text(value):
                    mol.SetProp(str(column), _text(value))
            writer.write(mol)
        writer.flush()


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return FLOAT_FORMAT % value if isinstance(value, float) else str(value)


def output_format(output: Path) -> CsvFormat | SdfFormat:
    return SdfFormat() if output.suffix.lower() == ".sdf" else CsvFormat()


class StreamSink:
    """CSV rows on a text stream (stdout), header before the first chunk; nothing to resume."""

    done = 0

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.started = stream, False

    def write(self, table: pd.DataFrame, mols: Optional[list]) -> None:
        if not self.started:
            CsvFormat().header(self.stream, list(table.columns))
            self.started = True
        CsvFormat().rows(self.stream, table, mols)
        self.stream.flush()

    def close(self) -> None:
        pass

    def stop(self) -> Optional[str]:
        return None


class FileSink:
    """A CSV or SD file written chunk by chunk under a partial name, with its sidecar (see the module doc).

    ``identity`` (input, models, options) must match the sidecar's to ``resume``; ``describe`` (column
    descriptions, models) goes into the sidecar.
    """

    def __init__(self, output: Path, identity: dict, describe: dict, resume: bool = False) -> None:
        self.output, self.partial, self.sidecar = output, partial_path(output), sidecar_path(output)
        self.format = output_format(output)
        self.identity, self.describe = identity, describe
        self.done, self.bytes, self.started, self.complete = 0, 0, False, False
        previous = self._previous() or {}
        changed = sorted(k for k in set(identity) | set(previous.get("run", {}))
                         if identity.get(k) != previous.get("run", {}).get(k))
        if previous and self.partial.is_file() and not previous.get("complete"):
            if not resume:
                raise MolsslError(f"{self.partial} holds {previous.get('rows', 0):,} rows of an interrupted run; continue "
                                  "it with --resume, or delete it to start again")
            if changed:
                raise MolsslError(f"cannot resume {self.partial}: {', '.join(changed)} differ from the interrupted run")
            self.done, self.bytes = int(previous.get("rows", 0)), int(previous.get("bytes", 0))
            self.started = self.bytes > 0
            with open(self.partial, "r+b") as handle:
                handle.truncate(self.bytes)  # whatever a kill left after the last complete chunk
        elif resume and previous.get("complete") and self.output.is_file():
            if changed:
                raise MolsslError(f"{output} is complete but was made with other {', '.join(changed)}; run without "
                                  "--resume to replace it")
            self.complete = True  # nothing left to do

    def _previous(self) -> Optional[dict]:
        try:
            state = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and isinstance(state.get("run", {}), dict) else None

    def write(self, table: pd.DataFrame, mols: Optional[list]) -> None:
        with open(self.partial, "a" if self.started else "w", encoding="utf-8", newline="") as handle:
            if not self.started:
                self.format.header(handle, list(table.columns))
            self.format.rows(handle, table, mols)
            handle.flush()
            os.fsync(handle.fileno())
            self.bytes = os.fstat(handle.fileno()).st_size
        self.started = True
        self.done += len(table)
        self._journal(complete=False)

    def _journal(self, complete: bool) -> None:
        state = {"complete": complete, "rows": self.done, "bytes": self.bytes,
                 "file": str(self.output if complete else self.partial), "run": self.identity,
                 "molssl_version": __version__, "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **self.describe}
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.sidecar)

    def close(self) -> None:
        if not self.started:
            return
        os.replace(self.partial, self.output)
        self._journal(complete=True)

    def stop(self) -> Optional[str]:
        """What an interrupted run leaves, in one sentence (None when nothing was written)."""
        if not self.started:
            return None
        return (f"stopped after {self.done:,} rows: {self.partial} holds them (a valid prefix, recorded in "
                f"{self.sidecar}); run the same command with --resume to continue")
