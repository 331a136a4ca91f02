"""Molecules already in memory (SMILES, RDKit molecules, pandas objects) as the chunks the file readers of
:mod:`molssl.chem.data.inputs` yield, so prediction and fingerprints treat both alike."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import pandas as pd

from molssl.chem.data.inputs import MOL_COLUMN_CANDIDATES, SMILES_COLUMN_CANDIDATES, MoleculeChunk, pick_smiles_column
from molssl.errors import InputFileError


def molecules_chunk(molecules: Any, smiles_column: Optional[str] = None) -> MoleculeChunk:
    """One chunk of every input of a Python call: a SMILES string, an RDKit ``Mol``, a sequence of
    either, a pandas Series (index kept) or a DataFrame (all columns and index kept; the SMILES or
    ``Mol`` column is ``smiles_column``, else the first of smiles/SMILES/Smiles/ROMol/mol present).

    ``Mol`` objects are written as canonical SMILES in a ``smiles`` column; None/NaN entries are
    rows without a molecule.
    """
    from rdkit import Chem

    if isinstance(molecules, (str, Chem.Mol)):
        molecules = [molecules]
    if isinstance(molecules, pd.DataFrame):
        table = molecules
        found = [c for c in (*SMILES_COLUMN_CANDIDATES, *MOL_COLUMN_CANDIDATES) if c in table.columns]
        column = pick_smiles_column(list(table.columns), smiles_column or (found[0] if found else None), "the DataFrame")
        values, index = table[column].tolist(), table.index
    elif isinstance(molecules, pd.Series):
        table, values, index = None, molecules.tolist(), molecules.index
    elif isinstance(molecules, Sequence) or hasattr(molecules, "__array__") or isinstance(molecules, pd.Index):
        table, values, index = None, list(molecules), None
    else:
        raise InputFileError(f"expected SMILES, RDKit molecules, or a pandas Series/DataFrame of them, got "
                             f"{type(molecules).__name__}")
    if values and hasattr(values[0], "__len__") and not isinstance(values[0], (str, Chem.Mol)) and len(values[0]) == 1:
        values = [v[0] for v in values]  # one column of a 2-D array (e.g. from ColumnTransformer)
    smiles, mols = [], []
    for position, value in enumerate(values):
        if isinstance(value, Chem.Mol):
            mols.append(value)
            smiles.append(Chem.MolToSmiles(value) if value.GetNumAtoms() else "")
        elif isinstance(value, str) or value is None or (isinstance(value, float) and value != value):
            mols.append(None)
            smiles.append(value if isinstance(value, str) else "")
        else:
            raise InputFileError(f"expected SMILES strings or RDKit molecules; position {position} holds {value!r} "
                                 f"({type(value).__name__})")
    has_mols = any(m is not None for m in mols)
    if table is None:
        table = pd.DataFrame({"smiles": smiles}, index=index if index is not None else pd.RangeIndex(len(smiles)))
    return MoleculeChunk(0, table, smiles, mols if has_mols else None)


class ChunkReader:
    """Molecules already in memory (a :func:`molecules_chunk`), read like a :class:`MoleculeReader`."""

    path = None
    smiles_column = "smiles"

    def __init__(self, chunk: MoleculeChunk, name: str, chunk_size: int = 4096) -> None:
        self.chunk, self.name, self.chunk_size, self.columns = chunk, name, chunk_size, list(chunk.table.columns)

    def chunks(self, skip: int = 0) -> Iterator[MoleculeChunk]:
        return (piece for piece in split_chunk(self.chunk, self.chunk_size) if piece.start >= skip)


def split_chunk(chunk: MoleculeChunk, size: int) -> Iterator[MoleculeChunk]:
    """``chunk`` in consecutive pieces of at most ``size`` rows."""
    for i in range(0, len(chunk), size):
        reasons = {k - i: v for k, v in (chunk.reasons or {}).items() if i <= k < i + size}
        yield MoleculeChunk(chunk.start + i, chunk.table.iloc[i:i + size], chunk.smiles[i:i + size],
                            chunk.mols[i:i + size] if chunk.mols is not None else None, reasons or None)
