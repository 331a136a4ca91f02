"""What a SMILES string's text tells before (and instead of) RDKit calls: which parse it needs, its atoms' elements.

Both graph featurizers read molecules through :func:`parse_for_graph`; the MolCLR one reads atomic numbers
from the text (:func:`atomic_numbers_in_smiles`) instead of asking RDKit atom by atom.
"""
from __future__ import annotations

import re
from typing import Optional

from rdkit import Chem

# chirality, bond directions, unusual bonds: SMILES symbols whose molecules need per-atom or per-bond reads
PER_MOLECULE_SYMBOLS = frozenset("@/\\$<>~")

# A bracket atom that is hydrogen ([H], [2H], [H+], [H:1], ...), which RDKit's default parse removes;
# [Hg], [He], [Hf] and hydrogen counts such as [NH4+] do not match.
_HYDROGEN_ATOM = re.compile(r"\[\d*H(?![a-z])")
# what only RDKit's default parse handles: stereo and bond directions (perceived after sanitizing),
# unusual bonds, CXSMILES extensions and names after a space
_DEFAULT_PARSE_SYMBOLS = PER_MOLECULE_SYMBOLS | frozenset("| \t")


_SANITIZE = Chem.SanitizeFlags
# The sanitization steps a SMILES without stereo symbols needs: all but the chirality and atropisomer
# clean-ups (no stereo was written, so they find nothing to do, and cost 5-10% of a parse).
SANITIZE_FOR_GRAPHS = int(_SANITIZE.SANITIZE_ALL & ~_SANITIZE.SANITIZE_CLEANUPCHIRALITY
                          & ~_SANITIZE.SANITIZE_CLEANUPATROPISOMERS)
# The MolCLR vocabulary reads element, chirality, bond type and bond direction only: it also skips the
# conjugation and hybridization passes (another ~15% of a parse). Neither pass rejects a molecule.
SANITIZE_FOR_MOLCLR = int(SANITIZE_FOR_GRAPHS & ~_SANITIZE.SANITIZE_SETCONJUGATION & ~_SANITIZE.SANITIZE_SETHYBRIDIZATION)


def parse_for_graph(text: str, sanitize: int = SANITIZE_FOR_GRAPHS) -> Optional[Chem.Mol]:
    """The molecule ``Chem.MolFromSmiles`` gives, as far as the graph featurizers read it, in 2/3-3/4 of its time.

    The default parse is: read, remove hydrogen atoms, sanitize, perceive stereo. A SMILES with no stereo
    symbols, no hydrogen atoms and no extensions needs neither hydrogen removal nor stereo perception, so
    it is read and put through the ``sanitize`` steps only (the same atoms, bonds, aromaticity and validity
    checks; :data:`SANITIZE_FOR_MOLCLR` leaves hybridization and conjugation unset). Anything else takes
    the default parse. ``None`` where RDKit rejects the SMILES, as with the default parse.
    """
    text = text.strip()
    if not _DEFAULT_PARSE_SYMBOLS.isdisjoint(text) or ("[" in text and _HYDROGEN_ATOM.search(text)):
        return Chem.MolFromSmiles(text)
    mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol, sanitize)
    except Exception:  # RDKit's sanitization errors (valence, kekulization) have several classes
        return None
    return mol


# SMILES atoms in order: bracket atoms (element after an optional isotope), then the organic subset
# (two-letter symbols first) and the aromatic lowercase ones. RDKit numbers atoms in SMILES order.
_ATOM_TOKEN = re.compile(r"\[\d*([A-Z][a-z]?|se|te|as|[a-z])|(Br?|Cl?|[NOSPFIbcnosp*])")
_PERIODIC_TABLE = Chem.GetPeriodicTable()


class _AtomicNumbers(dict):
    """(bracket symbol, organic symbol) regex groups -> atomic number, filled on first sight of each pair."""

    def __missing__(self, groups: tuple[str, str]) -> int:
        symbol = groups[0] or groups[1]
        number = 0 if symbol == "*" else _PERIODIC_TABLE.GetAtomicNumber(symbol.capitalize())
        self[groups] = number
        return number


_ATOMIC_NUMBERS = _AtomicNumbers()


def atomic_numbers_in_smiles(smiles: str) -> Optional[list[int]]:
    """Atomic numbers of a SMILES string's atoms in RDKit's atom order, read from the text (one regular
    expression and a dictionary lookup per atom, no RDKit call); None when a symbol is not an element.
    The caller checks the count against the parsed molecule (explicit hydrogens are removed by RDKit)."""
    numbers = _ATOMIC_NUMBERS
    try:
        return [numbers[groups] for groups in _ATOM_TOKEN.findall(smiles)]
    except RuntimeError:  # RDKit's periodic table does not know the symbol
        return None
