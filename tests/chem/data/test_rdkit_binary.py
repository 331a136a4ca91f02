"""RDKit's binary form read in bulk: every field equal to the atom-by-atom reader's, and anything it does not
cover (another layout, atom maps, queries, huge molecules, damaged bytes) handed back unread, never misread."""
import gzip

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molssl.chem.data import featurize_rich, rdkit_binary
from molssl.chem.data.featurize_rich import RICH, _RawFields
from molssl.chem.data.rdkit_binary import AtomBondFields, binary_form, read_binary_fields
from molssl.chem.data.smiles_text import parse_for_graph
from tests.chem.data.test_featurize_rich import MOLECULES, TRICKY

DATA = "../shared/data"
PANEL = MOLECULES + [text for text in TRICKY if text.strip()] + [
    "C[N+](C)(C)C", "[O-][n+]1ccccc1", "c1ccc2c(c1)ccc1ccccc12", "C1CC2CCC1C2", "C12C3C4C1C5C2C3C45",  # bridged, cubane
    "[Cu+2].[O-]S(=O)(=O)[O-]", "C#C[Si](C)(C)C", "[SH2]", "[N-]=[N+]=[N-]", "B(O)(O)c1ccccc1", "[Cl-].[K+]",
    "C[C@@H]1CC[C@H](C)CC1", "C/C=C/C=C\\C", "[13C@H](F)(Cl)Br", "CC(C)(C)[Sn](Cl)(Cl)Cl", "[Xe]", "[Pt+4]",
    "C1=CC=CC=CC=C1", "O=S1(=O)CCCC1", "[nH]1cccc1", "[2H][2H]", "[CH2]C[CH2]", "C[N]C", "OC1C2CC3CC1CC(C2)C3"]


def _smiles_of(name: str, column: str, count: int) -> list[str]:
    return pd.read_csv(f"{DATA}/moleculenet/{name}", nrows=count)[column].astype(str).tolist()


def _reference(mols):
    raw = _RawFields()
    for mol in mols:
        raw.add(mol, None)
    return raw.fields()


BOND_FIELDS = ("begin", "end", "bond_type", "bond_direction", "bond_stereo", "conjugated", "bond_in_ring")


def _assert_same(fields: AtomBondFields, expected: AtomBondFields, keep: np.ndarray) -> None:
    """``fields`` (the readable molecules) equal ``expected`` (all molecules) on the molecules ``keep`` marks."""
    rows = {"atom": np.repeat(keep, expected.n_atoms), "bond": np.repeat(keep, expected.n_bonds), "molecule": keep}
    for name in AtomBondFields._fields[1:]:
        kind = "molecule" if name in ("n_atoms", "n_bonds") else "bond" if name in BOND_FIELDS else "atom"
        np.testing.assert_array_equal(np.asarray(getattr(fields, name), dtype=np.int64),
                                      np.asarray(getattr(expected, name), dtype=np.int64)[rows[kind]], err_msg=name)


def test_the_layout_of_this_rdkit_is_the_one_checked():
    assert rdkit_binary.READABLE, "this RDKit writes another pickle version: re-check rdkit_binary against it"


@pytest.mark.parametrize("source", ["panel", "hiv", "sider", "tox21"])
def test_every_field_equals_the_atom_by_atom_reader(source):
    """Charges, isotopes, radicals, stereo, metals, bridged rings, explicit hydrogens and (from the data sets)
    thousands of drug-like molecules: RDKit's values read both ways are equal, field by field."""
    texts = {"panel": lambda: PANEL, "hiv": lambda: _smiles_of("HIV.csv.gz", "smiles", 3000),
             "sider": lambda: _smiles_of("sider.csv.gz", "smiles", 1500),
             "tox21": lambda: _smiles_of("tox21.csv.gz", "smiles", 3000)}[source]()
    mols = [mol for mol in map(parse_for_graph, texts) if mol is not None and mol.GetNumAtoms() > 0]
    fields = read_binary_fields([binary_form(mol) for mol in mols])
    expected = _reference(mols)
    assert fields.readable.sum() >= 0.98 * len(mols)
    too_big = np.array([mol.GetNumAtoms() > 255 for mol in mols])
    assert not fields.readable[too_big].any()  # one-byte atom indices: larger molecules go atom by atom
    _assert_same(fields, expected, fields.readable)


def test_what_the_layout_does_not_cover_is_left_unread():
    """Atom-map numbers, dummy atoms, query atoms and molecules of more than 255 atoms are handed back."""
    texts = ["[CH3:1]C", "*C", "C" * 300, "CCO"]
    mols = [Chem.MolFromSmiles(text) for text in texts] + [Chem.MolFromSmarts("[C,N]C")]
    mols[-1].UpdatePropertyCache(strict=False)
    fields = read_binary_fields([binary_form(mol) for mol in mols])
    assert fields.readable.tolist() == [False, False, False, True, False]
    assert fields.n_atoms.tolist() == [3]


def test_damaged_bytes_are_never_read_as_a_molecule():
    """A truncated form, bytes flipped in its header, or noise: unread (not an exception, not a graph)."""
    good = binary_form(Chem.MolFromSmiles("c1ccccc1CC(=O)O"))
    rng = np.random.default_rng(0)
    noise = bytes(rng.integers(0, 256, 80, dtype=np.uint8))
    other_version = good[:8] + b"\x11" + good[9:]
    damaged = [good[:len(good) // 2], good[:31], b"", other_version, noise, good[:29] + b"\x07" + good[30:]]
    fields = read_binary_fields(damaged + [good])
    assert fields.readable.tolist() == [False] * len(damaged) + [True]


def test_the_featurizer_gives_the_same_graphs_with_the_bulk_reader_switched_off(monkeypatch):
    """Where this RDKit's layout is unknown every molecule is read atom by atom (parsed once, never sent through the
    bulk reader only to come back), with the same graphs."""
    texts = PANEL + _smiles_of("BBBP.csv.gz", "smiles", 300)
    fast = RICH.graphs(texts)
    monkeypatch.setattr(rdkit_binary, "READABLE", False)
    monkeypatch.setattr(featurize_rich, "read_binary_fields", None)  # not called: no bulk read, no second parse
    slow = RICH.graphs(texts)
    assert [reason for _, reason in fast] == [reason for _, reason in slow]
    for (graph, _), (expected, _) in zip(fast, slow):
        if graph is not None:
            np.testing.assert_array_equal(graph.atoms, expected.atoms)
            np.testing.assert_array_equal(graph.bonds, expected.bonds)


def test_pretraining_corpus_sample_reads_in_bulk():
    """The corpora the encoders are pre-trained on are read without falling back (speed depends on it)."""
    with gzip.open(f"{DATA}/pretrain/chembl_subset_union.smi.gz", "rt") as handle:
        texts = [next(handle).split()[0] for _ in range(2000)]
    mols = [mol for mol in map(parse_for_graph, texts) if mol is not None]
    assert read_binary_fields([binary_form(mol) for mol in mols]).readable.all()


def test_small_and_large_batches_give_the_same_graphs_and_reasons():
    """Below BULK_MIN_MOLECULES a batch is read atom by atom, from it on in bulk: the same results either way,
    the rejection reasons (unparsable, empty, dummy atom, dative bond, too large) included."""
    small = RICH.graphs(TRICKY)
    repeats = featurize_rich.BULK_MIN_MOLECULES // len(TRICKY) + 1
    large = RICH.graphs(TRICKY * repeats)
    assert len(TRICKY) < featurize_rich.BULK_MIN_MOLECULES <= len(TRICKY) * repeats
    for k, (graph, reason) in enumerate(large):
        expected, expected_reason = small[k % len(TRICKY)]
        assert reason == expected_reason
        if graph is not None:
            np.testing.assert_array_equal(graph.atoms, expected.atoms)
            np.testing.assert_array_equal(graph.bonds, expected.bonds)
