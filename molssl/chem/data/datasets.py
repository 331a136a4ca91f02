"""MoleculeNet registry and loaders: find a benchmark file locally or download it, verify it, read it.

A data set is found, in this order, in: the ``data_dir`` you pass (``--data-dir`` on the command
line), the folder named by the ``MOLSSL_DATA_DIR`` environment variable, and the user cache
(``$XDG_CACHE_HOME/molssl/moleculenet``, by default ``~/.cache/molssl/moleculenet``). Failing
those it is downloaded from DeepChem's public MoleculeNet bucket (or the mirror named by
``MOLSSL_DATA_URL``) into the cache, and its checksum is verified before it is kept.
Both ``X.csv`` and ``X.csv.gz`` are accepted.

Checksums are md5 digests of the *uncompressed text with line endings normalised* (``\\r\\n`` and
``\\r`` become ``\\n``, whitespace-only lines are dropped, every line ends with ``\\n``), so a file
saved with Windows line endings or re-compressed still matches.

Labels are float arrays with NaN wherever a label is missing; missing labels are never filled.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from molssl.core.checkpoint import current_umask
from molssl.errors import InputFileError


BASE_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/"
TaskType = Literal["classification", "regression"]

MOLCLR_CITATION = (
    "Wang, Wang, Cao & Barati Farimani, 'Molecular contrastive learning of representations via "
    "graph neural networks', Nat. Mach. Intell. 4, 279-287 (2022), Table 1 (MolCLR-GIN test "
    "ROC-AUC, %). Values taken as reproduced, with that citation, in Table 1 of 'HDBind: encoding "
    "of molecular structure with hyperdimensional binary representations', Sci. Rep. (2024), "
    "doi:10.1038/s41598-024-80009-w; the primary table could not be read from this workplace."
)


MOLCLR_REGRESSION_CITATION = (
    "MolCLR-GIN regression figures of Wang et al. 2022 (Table 2), as quoted in IBM's SMI-TED paper "
    "(Soares et al., 'A large encoder-decoder family of foundation models for chemical language', "
    "arXiv:2407.20267, Tables 3-4): FreeSolv 2.20, ESOL 1.11, Lipophilicity 0.65 RMSE; QM7 87.2, QM8 0.0174, "
    "QM9 2.357 MAE."
)
MOLCLR_RERUN_CITATION = (
    "MolCLR re-run under the GEM protocol (Fang et al. 2022 splits and settings), InstructMol paper (Cao et al., "
    "'InstructMol: Multi-Modal Integration for Building a Versatile and Reliable Molecular Assistant', 2023), "
    "Table 3: BBBP 72.2, Tox21 75.0, ClinTox 91.2, BACE 82.4, SIDER 58.9 ROC-AUC %; ESOL 1.271, FreeSolv 2.594, "
    "Lipophilicity 0.691 RMSE. An independent second reference: the paper's own figures are not reproduced "
    "by others (MolCLR issues #10, #15, #23)."
)


@dataclass(frozen=True)
class DatasetSpec:
    """One MoleculeNet benchmark as MolCLR fine-tunes on it.

    ``tasks`` is ``None`` only for ToxCast, whose 617 tasks are every column but the SMILES one.
    ``md5`` is ``None`` where the canonical file's checksum is not known (QM9, see ``notes``).
    ``molclr`` is the MolCLR-GIN test score from the paper (ROC-AUC in %, RMSE/MAE in target units),
    or ``None`` where it was not verified (:data:`MOLCLR_CITATION`, :data:`MOLCLR_REGRESSION_CITATION`);
    ``molclr_rerun`` is MolCLR re-run by others under the GEM protocol (:data:`MOLCLR_RERUN_CITATION`).
    """

    name: str
    title: str
    file_name: str
    md5: Optional[str]
    smiles_column: str
    tasks: Optional[tuple[str, ...]]
    n_tasks: int
    n_molecules: int
    task_type: TaskType
    metric: Literal["roc_auc", "rmse", "mae"]
    molclr: Optional[float] = None
    notes: str = ""
    molclr_rerun: Optional[float] = None

    @property
    def url(self) -> str:
        """Download address (``MOLSSL_DATA_URL`` replaces DeepChem's bucket when set)."""
        base = os.environ.get("MOLSSL_DATA_URL", BASE_URL)
        return base.rstrip("/") + "/" + self.file_name


_TOX21 = ("NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
          "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53")
_SIDER = (
    "Hepatobiliary disorders", "Metabolism and nutrition disorders", "Product issues",
    "Eye disorders", "Investigations", "Musculoskeletal and connective tissue disorders",
    "Gastrointestinal disorders", "Social circumstances", "Immune system disorders",
    "Reproductive system and breast disorders",
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
    "General disorders and administration site conditions", "Endocrine disorders",
    "Surgical and medical procedures", "Vascular disorders", "Blood and lymphatic system disorders",
    "Skin and subcutaneous tissue disorders", "Congenital, familial and genetic disorders",
    "Infections and infestations", "Respiratory, thoracic and mediastinal disorders",
    "Psychiatric disorders", "Renal and urinary disorders",
    "Pregnancy, puerperium and perinatal conditions", "Ear and labyrinth disorders",
    "Cardiac disorders", "Nervous system disorders",
    "Injury, poisoning and procedural complications",
)
_MUV = tuple(f"MUV-{i}" for i in (466, 548, 600, 644, 652, 689, 692, 712, 713, 733, 737, 810, 832,
                                   846, 852, 858, 859))
# MolCLR's 12 QM8 targets: the file repeats the PBE0 block (pandas reads it as "E1-PBE0.1", ...);
# MolCLR, like this registry, uses the first copy. DeepChem's loader keeps all 16 columns.
_QM8 = ("E1-CC2", "E2-CC2", "f1-CC2", "f2-CC2", "E1-PBE0", "E2-PBE0", "f1-PBE0", "f2-PBE0",
        "E1-CAM", "E2-CAM", "f1-CAM", "f2-CAM")
# MolCLR's 8 QM9 targets (its finetune.py); the energies u0/u298/h298/g298 are not among them.
_QM9 = ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "cv")


REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("bbbp", "BBBP", "BBBP.csv", "1e9b3301067a00e8be4bf7bb26ff8b8a", "smiles", ("p_np",), 1,
          2050, "classification", "roc_auc", 73.6,
          "11 SMILES cannot be parsed by RDKit; MolCLR drops them before splitting.", 72.2),
    DatasetSpec("tox21", "Tox21", "tox21.csv.gz", "abba03d94658629f183b39181d4f0689", "smiles", _TOX21,
          12, 7831, "classification", "roc_auc", 79.8, molclr_rerun=75.0),
    DatasetSpec("clintox", "ClinTox", "clintox.csv.gz", "fc4b90fda8fd61985adff2fc16a5e302", "smiles",
          ("FDA_APPROVED", "CT_TOX"), 2, 1484, "classification", "roc_auc", 93.2, molclr_rerun=91.2),
    DatasetSpec("hiv", "HIV", "HIV.csv", "5f95d85c85e54a04a23b521fe7e7b9bd", "smiles", ("HIV_active",),
          1, 41127, "classification", "roc_auc", 80.6),
    DatasetSpec("bace", "BACE", "bace.csv", "acc9b4aa2451df597e4459c816e14b3a", "mol", ("Class",), 1,
          1513, "classification", "roc_auc", 89.0, molclr_rerun=82.4),
    DatasetSpec("sider", "SIDER", "sider.csv.gz", "38f6f6d402cc6ba13ccadee1a6d1c3b6", "smiles", _SIDER,
          27, 1427, "classification", "roc_auc", 68.0, molclr_rerun=58.9),
    DatasetSpec("muv", "MUV", "muv.csv.gz", "a95f05c4230778edded01b9b1457e047", "smiles", _MUV, 17,
          93087, "classification", "roc_auc", None, "MolCLR's MUV figure not verified."),
    DatasetSpec("toxcast", "ToxCast", "toxcast_data.csv.gz", "b99eedf3e7fbc4fbe0d8d517c8a61539",
          "smiles", None, 617, 8576, "classification", "roc_auc", None,
          "Not in MolCLR's tables; tasks are all 617 assay columns."),
    DatasetSpec("freesolv", "FreeSolv", "SAMPL.csv", "bf819f4e2b5ca49956e9886af20606bf", "smiles",
          ("expt",), 1, 642, "regression", "rmse", 2.20, "MolCLR figure via SMI-TED.", 2.594),
    DatasetSpec("esol", "ESOL", "delaney-processed.csv", "0c90a51668d446b9e3ab77e67662bd1c", "smiles",
          ("measured log solubility in mols per litre",), 1, 1128, "regression", "rmse", 1.11,
          "MolCLR figure via SMI-TED.", 1.271),
    DatasetSpec("lipo", "Lipophilicity", "Lipophilicity.csv", "e12c3fe5b7f1f82696a8e00bfd68511b",
          "smiles", ("exp",), 1, 4200, "regression", "rmse", 0.65, "MolCLR figure via SMI-TED.", 0.691),
    DatasetSpec("qm7", "QM7", "qm7.csv", "85266bf2676a86403863a32c8961fd8c", "smiles", ("u0_atom",), 1,
          6834, "regression", "mae", 87.2, "MolCLR figure via SMI-TED."),
    DatasetSpec("qm8", "QM8", "qm8.csv", "c4e915221aa24786c400c0d841b38231", "smiles", _QM8, 12, 21786,
          "regression", "mae", 0.0174, "MolCLR figure via SMI-TED."),
    DatasetSpec("qm9", "QM9", "qm9.csv", None, "smiles", _QM9, 8, 133885, "regression", "mae", 2.357,
          "Checksum of DeepChem's qm9.csv unknown here (not verified on download). The reference "
          "copy on the development machine is a reconstruction without the 3,054 uncharacterized "
          "molecules (130,831 rows): results on it are not exactly comparable to published ones."),
)}


class DatasetNotFound(FileNotFoundError):
    """A data set is neither on disk nor downloadable; the message says where it was looked for."""


class ChecksumError(ValueError):
    """Downloaded content does not match the registry checksum."""


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name`` (case-insensitive), or a ValueError listing known names."""
    spec = REGISTRY.get(name.lower())
    if spec is None:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)}")
    return spec


def cache_dir() -> Path:
    """The user cache for downloaded MoleculeNet files."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "molssl" / "moleculenet"


def _search_dirs(data_dir: Optional[str | os.PathLike]) -> list[Path]:
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    if os.environ.get("MOLSSL_DATA_DIR"):
        dirs.append(Path(os.environ["MOLSSL_DATA_DIR"]).expanduser())
    dirs.append(cache_dir())
    return dirs


def _candidate_names(file_name: str) -> list[str]:
    stem = file_name[:-3] if file_name.endswith(".gz") else file_name
    return [stem, stem + ".gz"]


def find_local(name: str, data_dir: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """The first local copy of data set ``name`` in the search order, or ``None``."""
    spec = get_spec(name)
    for folder in _search_dirs(data_dir):
        for candidate in _candidate_names(spec.file_name):
            path = folder / candidate
            if path.is_file():
                return path
    return None


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    try:
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, OSError, zlib.error) as exc:  # a truncated or damaged download
        raise InputFileError(f"{path} is truncated or damaged (not a complete gzip file: {exc}); download it again") from None


def normalised_md5(content: bytes) -> str:
    """md5 of text with line endings normalised (see the module docstring)."""
    lines = re.split(rb"\r\n|\r|\n", content)
    kept = b"".join(line + b"\n" for line in lines if line.strip())
    return hashlib.md5(kept).hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """:func:`normalised_md5` of a (possibly gzip-compressed) file."""
    return normalised_md5(_read_bytes(Path(path)))


def fetch(name: str, data_dir: Optional[str | os.PathLike] = None, timeout: float = 60.0) -> Path:
    """Download data set ``name`` into ``data_dir`` (default: the user cache) and verify it.

    An existing copy there that matches the checksum is kept as is. The download goes to a
    temporary file in the same folder and is renamed into place only once verified.
    """
    spec = get_spec(name)
    dest_dir = Path(data_dir).expanduser() if data_dir is not None else cache_dir()
    for candidate in _candidate_names(spec.file_name):
        existing = dest_dir / candidate
        if existing.is_file() and (spec.md5 is None or file_md5(existing) == spec.md5):
            return existing
    dest = dest_dir / spec.file_name
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.file_name}.", suffix=".part", dir=dest_dir)
    os.chmod(tmp, 0o666 & ~current_umask())  # a shared data folder stays readable to its group, as other files
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(spec.url, timeout=timeout) as response:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DatasetNotFound(
                    f"could not download {spec.title} from {spec.url} ({reason}); download "
                    f"{spec.file_name} elsewhere and point --data-dir or MOLSSL_DATA_DIR at its "
                    "folder") from exc
        if spec.md5 is None:
            warnings.warn(f"{spec.title}: no known checksum, the download was not verified",
                          stacklevel=2)
        else:
            got = file_md5(tmp)
            if got != spec.md5:
                raise ChecksumError(f"{spec.title} from {spec.url} has md5 {got}, expected "
                                    f"{spec.md5} (normalised text); the file was not kept")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def resolve(name: str, data_dir: Optional[str | os.PathLike] = None, download: bool = True) -> Path:
    """The file for data set ``name``: a local copy in the search order, else a fresh download."""
    path = find_local(name, data_dir)
    if path is not None:
        return path
    if not download:
        looked = ", ".join(str(d) for d in _search_dirs(data_dir))
        raise DatasetNotFound(f"{get_spec(name).title} not found in {looked}")
    return fetch(name)


def check_local_copy(path: Path, spec: DatasetSpec) -> None:
    """Warn when a local copy's content differs from the registry's checksum (results may not be comparable)."""
    if spec.md5 is None:
        return
    got = normalised_md5(_read_bytes(path))
    if got != spec.md5:
        warnings.warn(f"{path} differs from the registry's {spec.title} (md5 of normalised text {got}, expected "
                      f"{spec.md5}); results may not be comparable", stacklevel=3)
