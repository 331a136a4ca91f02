"""SD files: records read one by one with RDKit's supplier; names and SD properties kept, broken records kept as rows.

Records are split on ``$$$$`` lines here, so a record RDKit cannot read still becomes a row (with its
name, its properties read from the text, its line number and the reason) instead of vanishing.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

from rdkit import Chem, RDLogger

RDLogger.DisableLog("rdApp.*")  # a record RDKit cannot read is reported on its row, not on stderr

RECORD_END = "$$$$"
OWN_COLUMNS = ("name", "smiles")  # the reader's columns; SD properties with these names become sd_name, sd_smiles


def property_column(name: str) -> str:
    """The table column of SD property ``name``."""
    return f"sd_{name}" if name in OWN_COLUMNS else name


def sd_records(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(first line number, text) of every record; a last record without ``$$$$`` counts if it holds text."""
    start, parts = 1, []
    for number, line in enumerate(lines, start=1):
        parts.append(line)
        if line.strip() == RECORD_END:
            yield start, "".join(parts)
            start, parts = number + 1, []
    if any(part.strip() for part in parts):
        yield start, "".join(parts)


def _property_name(line: str) -> Optional[str]:
    """The name in a data header line such as ``>  <ID>  (1)``, or None."""
    if not line.startswith(">"):
        return None
    opened = line.find("<")
    closed = line.find(">", opened + 1)
    return line[opened + 1:closed] if 0 <= opened < closed else None


def text_properties(text: str) -> dict[str, str]:
    """The SD properties of a record's text (for records RDKit cannot read): value lines up to a blank line."""
    lines = text.splitlines()
    out: dict[str, str] = {}
    try:
        i = next(k for k, line in enumerate(lines) if line.startswith("M  END")) + 1
    except StopIteration:
        return out
    while i < len(lines):
        name = _property_name(lines[i])
        i += 1
        if name is None:
            continue
        values = []
        while i < len(lines) and lines[i].strip() and lines[i].strip() != RECORD_END:
            values.append(lines[i])
            i += 1
        out[property_column(name)] = "\n".join(values)
    return out


def sd_property_names(lines: Iterable[str]) -> list[str]:
    """The table columns of every SD property of a file, in order of first appearance (one pass over its text)."""
    names: dict[str, None] = {}
    for line in lines:
        name = _property_name(line)
        if name is not None:
            names.setdefault(property_column(name), None)
    return list(names)


def read_record(text: str) -> Optional[Chem.Mol]:
    """The molecule of one record (hydrogens removed, sanitized), or None when RDKit cannot read it."""
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text, sanitize=True, removeHs=True)
    return supplier[0] if len(supplier) else None


def sd_rows(lines: Iterable[str], skip: int = 0) -> Iterator[tuple[dict, Optional[Chem.Mol], Optional[str]]]:
    """(name, smiles and SD properties by column, molecule or None, why not) of every record from record
    ``skip`` on; earlier records are counted, not parsed."""
    for row, (line, text) in enumerate(sd_records(lines)):
        if row < skip:
            continue
        mol = read_record(text)
        if mol is None:
            values = text_properties(text)
            values.update(name=text.splitlines()[0].strip() if text.strip() else "", smiles="")
            yield values, None, f"RDKit cannot read this SD record (line {line})"
            continue
        values = {property_column(key): mol.GetProp(key) for key in mol.GetPropNames()}
        values.update(name=mol.GetProp("_Name") if mol.HasProp("_Name") else "",
                      smiles=Chem.MolToSmiles(mol) if mol.GetNumAtoms() else "")
        yield values, mol, None
