"""RDKit 2D depictions of molecules from a SMILES file: an unlimited real colour image set with exact labels.

RDKit draws heteroatoms in their element colours (N blue, O red, S yellow, halogens green, ...) on a white
background with black carbon skeletons, so colour carries meaning (what colorization has to predict) and
every image comes with labels computed exactly from its molecule: ``rings`` (ring count: <=2, 3, 4, >=5),
``halogen`` (contains F, Cl, Br or I) and ``sulfur``. The SMILES file is read where it lies (plain or
gzipped, first token per line); rendered sets are cached under ``$MOLSSL_CACHE/depictions`` keyed by the
file, the count, the size and :data:`DEPICTION_VERSION`, never copied into the project.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from molssl.errors import MolsslError

DEPICTION_VERSION = 1  # the drawing settings of render_depiction; changing them changes every image
HEAVY_ATOMS = (12, 32)  # molecules outside this range are skipped: too trivial, or illegible at 64 px
HALOGENS = frozenset({"F", "Cl", "Br", "I"})
LABELS = {
    "rings": ["<=2", "3", "4", ">=5"],
    "halogen": ["no", "yes"],
    "sulfur": ["no", "yes"],
}
PRIMARY_LABEL = "rings"  # the split is stratified by it, whichever label a probe asks for


@dataclass
class Depictions:
    """``images`` uint8 (N, 3, S, S), the canonical ``smiles`` they show, and ``labels[name]`` long (N,)."""

    images: Tensor
    smiles: list[str]
    labels: dict[str, Tensor]


def read_smiles(path: str | Path) -> Iterator[str]:
    """The first whitespace-separated token of every non-empty line of a .smi/.txt file (plain or .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                token = line.split(maxsplit=1)
                if token and token[0].lower() != "smiles":
                    yield token[0]
    except OSError as exc:
        raise MolsslError(f"cannot read SMILES file {path}: {exc.strerror or exc}") from None


def select_molecules(path: str | Path, count: int) -> list:
    """The first ``count`` distinct RDKit molecules of ``path`` that parse and have 12-32 heavy atoms."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mols, seen = [], set()
    for smiles in read_smiles(path):
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or not HEAVY_ATOMS[0] <= mol.GetNumHeavyAtoms() <= HEAVY_ATOMS[1]:
            continue
        canonical = Chem.MolToSmiles(mol)
        if canonical in seen:
            continue
        seen.add(canonical)
        mols.append(mol)
        if len(mols) == count:
            return mols
    raise MolsslError(f"{path} holds only {len(mols)} usable molecules (12-32 heavy atoms, distinct); "
                      f"{count} were asked for")


def render_depiction(mol, size: int) -> np.ndarray:
    """One molecule drawn by RDKit's Cairo renderer: uint8 (3, size, size), element colours, white background."""
    from PIL import Image
    from rdkit.Chem.Draw import rdMolDraw2D

    drawer = rdMolDraw2D.MolDraw2DCairo(size, size)
    drawer.drawOptions().addStereoAnnotation = False
    drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    with Image.open(io.BytesIO(drawer.GetDrawingText())) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()


def molecule_labels(mol) -> dict[str, int]:
    """The exact chemistry labels of one molecule (see :data:`LABELS`)."""
    from rdkit.Chem import rdMolDescriptors

    symbols = {atom.GetSymbol() for atom in mol.GetAtoms()}
    rings = rdMolDescriptors.CalcNumRings(mol)
    return {"rings": int(min(max(rings - 2, 0), 3)), "halogen": int(bool(symbols & HALOGENS)),
            "sulfur": int("S" in symbols)}


def _cache_path(path: Path, count: int, size: int) -> Path:
    from rdkit import __version__ as rdkit_version

    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{count}|{size}|{DEPICTION_VERSION}|{rdkit_version}"
    root = Path(os.environ.get("MOLSSL_CACHE", "~/.cache/molssl")).expanduser() / "depictions"
    return root / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def render_corpus(path: str | Path, count: int, size: int = 64) -> Depictions:
    """Depictions, canonical SMILES and labels of the first ``count`` usable molecules of ``path`` (cached)."""
    from rdkit import Chem

    path = Path(path).expanduser()
    if not path.is_file():
        raise MolsslError(f"SMILES file {path} does not exist")
    if size < 16:
        raise MolsslError(f"depictions need at least 16 pixels, got {size}")
    cache = _cache_path(path, count, size)
    if cache.is_file():
        with np.load(cache) as stored:
            labels = {name: torch.from_numpy(stored[f"label_{name}"]) for name in LABELS}
            return Depictions(torch.from_numpy(stored["images"]), [str(s) for s in stored["smiles"]], labels)
    mols = select_molecules(path, count)
    images = np.stack([render_depiction(mol, size) for mol in mols])
    smiles = [Chem.MolToSmiles(mol) for mol in mols]
    rows = [molecule_labels(mol) for mol in mols]
    labels = {name: np.array([row[name] for row in rows], dtype=np.int64) for name in LABELS}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, images=images, smiles=np.array(smiles), **{f"label_{k}": v for k, v in labels.items()})
    os.replace(tmp, cache)
    return Depictions(torch.from_numpy(images), smiles, {k: torch.from_numpy(v) for k, v in labels.items()})

