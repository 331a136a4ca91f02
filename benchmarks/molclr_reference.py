"""Time the MolCLR reference implementation (its dataset, model and loss code) on this machine.

The code is read at run time from a copy of github.com/yuyangw/MolCLR (``--molclr-repo``: a checkout,
or the git directory of a snapshot, whose HEAD is exported to a temporary folder); nothing of it is
stored in molssl. Its step is what ``molclr.py`` runs per batch: two views from its ``MoleculeDataset``
(per-molecule RDKit parsing and Python-loop augmentation in DataLoader workers), ``GINet`` on each,
``NTXentLoss`` (cosine similarity), backward, Adam. Two imports the timed path never uses are
stubbed because their wheels do not install beside this torch: ``torchvision.transforms`` and
``torch_scatter`` (imported by its dataset module, unused there); PyG's old ``torch_geometric.data.
DataLoader`` name points at ``torch_geometric.loader.DataLoader``.

    python benchmarks/molclr_reference.py --molclr-repo /work/.mirror/yuyangw+MolCLR/repo \\
        --smiles ../shared/data/pretrain/moses_train.csv.gz --steps 5
"""
from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch


def export_repo(repo: Path, into: Path) -> Path:
    """A folder with the repository's files: ``repo`` itself when it is a checkout, else its HEAD exported."""
    if (repo / "dataset" / "dataset.py").is_file():
        return repo
    # only the code folders: a snapshot may lack its large weight files
    archive = subprocess.run(["git", f"--git-dir={repo}", "archive", "HEAD", "dataset", "models", "utils"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _stub_unused_imports() -> None:
    import torch_geometric.loader

    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    sys.modules.setdefault("torchvision.transforms", types.ModuleType("torchvision.transforms"))
    scatter = types.ModuleType("torch_scatter")
    scatter.scatter = None
    sys.modules.setdefault("torch_scatter", scatter)
    import torch_geometric.data as data

    if not hasattr(data, "DataLoader"):
        data.DataLoader = torch_geometric.loader.DataLoader


def reference_rate(repo: Path, smiles: list[str], batch_size: int = 512, steps: int = 5, warmup: int = 1,
                   workers: int = 2) -> float:
    """Molecules/s of the reference training step, including its data loading (the way it trains)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = export_repo(repo, Path(tmp))
        data_path = Path(tmp) / "smiles.txt"
        data_path.write_text("\n".join(smiles) + "\n")  # its reader takes the last CSV field of each line
        _stub_unused_imports()
        sys.path.insert(0, str(root))
        try:
            from dataset.dataset import MoleculeDataset
            from models.ginet_molclr import GINet
            from torch_geometric.loader import DataLoader
            from utils.nt_xent import NTXentLoss

            torch.manual_seed(0)
            loader = DataLoader(MoleculeDataset(str(data_path)), batch_size=batch_size, shuffle=True,
                                num_workers=workers, drop_last=True)
            model = GINet(num_layer=5, emb_dim=300, feat_dim=512, drop_ratio=0, pool="mean")
            criterion = NTXentLoss("cpu", batch_size, temperature=0.1, use_cosine_similarity=True)
            optimizer = torch.optim.Adam(model.parameters(), 5e-4, weight_decay=1e-5)
            count, start = 0, None
            for i, (xis, xjs) in enumerate(itertools.islice(loader, steps + warmup)):
                if i == warmup:
                    start = time.perf_counter()
                optimizer.zero_grad()
                _, zis = model(xis)
                _, zjs = model(xjs)
                loss = criterion(zis, zjs)
                loss.backward()
                optimizer.step()
                if i >= warmup:
                    count += batch_size
            return count / (time.perf_counter() - start)
        finally:
            sys.path.remove(str(root))


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pretrain_throughput import first_smiles

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--molclr-repo", type=Path, required=True)
    parser.add_argument("--smiles", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    smiles = first_smiles(args.smiles, args.batch_size * (args.steps + 2))
    rate = reference_rate(args.molclr_repo, smiles, args.batch_size, args.steps, workers=args.workers)
    print(f"MolCLR reference step path: {rate:.1f} molecules/s (batch {args.batch_size}, {args.workers} loader workers)")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
