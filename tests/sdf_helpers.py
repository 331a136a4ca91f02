"""A small SD file for the reader and prediction tests: three named records with an ID property."""
from __future__ import annotations

import io

from rdkit import Chem


def sd_text(broken: int = -1, clashing_properties: bool = False) -> str:
    """Records mol0-mol2 (CCO, benzene, acetic acid), property ID = A0-A2. ``broken``: that record gets an
    element RDKit does not know. ``clashing_properties``: record 2 also has a ``smiles`` property (the name
    of the reader's own column) and a two-line ``note``."""
    out = io.StringIO()
    writer = Chem.SDWriter(out)
    for i, smiles in enumerate(["CCO", "c1ccccc1", "CC(=O)O"]):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", f"mol{i}")
        mol.SetProp("ID", f"A{i}")
        if i == 2 and clashing_properties:
            mol.SetProp("smiles", "given")
            mol.SetProp("note", "two\nlines")
        writer.write(mol)
    writer.close()
    records = out.getvalue().split("$$$$\n")[:3]
    if broken >= 0:
        records[broken] = records[broken].replace(" C   0", " Xx  0", 1)
    return "$$$$\n".join(records) + "$$$$\n"
