"""``molssl multimodal``: ConVIRT between RDKit depictions and SMILES; probe and retrieval vs random init."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli import common
from molssl.cli.ssl_common import load_for_probe, parse_widths, pretrain_and_report, report_probe

app = common.new_app("Image-text contrastive learning on molecules: ConVIRT between RDKit depictions and SMILES.")


@common.command(app)
def pretrain(
    data: Path = typer.Option(..., help="SMILES file (.smi/.txt, optionally .gz; first token per line); molecules "
                                        "are drawn with RDKit at run time."),
    out: Path = typer.Option(..., help="Run folder: checkpoint.pt, metrics.jsonl and config.json are written here."),
    molecules: int = typer.Option(12_500, min=4, help="Molecules to draw (12-32 heavy atoms, distinct), held-out ones included."),
    test_molecules: int = typer.Option(1_000, min=2, help="Held out from pre-training: retrieval candidates and probe test set."),
    image_size: int = typer.Option(64, min=16, help="Depiction size in pixels."),
    widths: str = typer.Option("32,64,128,128", help="Image encoder channel widths, one conv stage each."),
    text_width: int = typer.Option(128, min=1, help="Character-CNN width."),
    temperature: float = typer.Option(0.1, help="InfoNCE temperature (ConVIRT: 0.1)."),
    image_weight: float = typer.Option(0.75, help="Weight lambda of the image-to-text term (ConVIRT: 0.75)."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(128, min=2),
    lr: float = typer.Option(1e-3, min=0.0),
    seed: int = typer.Option(0),
    max_steps: Optional[int] = typer.Option(None, min=1),
    precision: str = typer.Option("fp32"),
    device: str = typer.Option("auto"),
    resume: bool = typer.Option(False, help="Continue the run in --out (its settings must be the same)."),
    progress: bool = typer.Option(True),
) -> None:
    """Pre-train an image and a SMILES encoder with ConVIRT's bidirectional InfoNCE."""
    from molssl.multimodal.pretrain import MultimodalConfig
    from molssl.multimodal.pretrain import pretrain as run_pretrain

    config = MultimodalConfig(data=str(data), molecules=molecules, test_molecules=test_molecules,
                              image_size=image_size, widths=parse_widths(widths), text_width=text_width,
                              temperature=temperature, image_weight=image_weight, epochs=epochs, batch_size=batch_size,
                              lr=lr, seed=seed, max_steps=max_steps, precision=precision)
    pretrain_and_report(run_pretrain, config, out, name="convirt", device=device, resume=resume, progress=progress)


def _load(checkpoint: Path, data: Optional[Path], device: str):
    """The trained module and its random-init twin, the run config, the split and the device."""
    from molssl.multimodal.pretrain import load_module, random_init_module, split_data

    module, config, train, test, dev = load_for_probe(load_module, split_data, checkpoint, data, device)
    return {"trained": module, "random_init": random_init_module(config)}, config, train, test, dev


@common.command(app)
def probe(
    checkpoint: Path = typer.Option(..., help="checkpoint.pt written by 'molssl multimodal pretrain'."),
    label: List[str] = typer.Option([], help="Label(s) to probe: rings, halogen, sulfur (default all)."),
    knn_k: int = typer.Option(20, min=1),
    data: Optional[Path] = typer.Option(None, help="Override the SMILES file the run was trained on (a moved copy)."),
    device: str = typer.Option("auto"),
    json_out: Optional[Path] = typer.Option(None, help="Also write the accuracies as JSON here."),
) -> None:
    """Linear probe and k-NN of the frozen image encoder on chemistry labels, vs the same encoder at random init."""
    from molssl.multimodal.pretrain import probe as run_probe

    modules, config, train, test, dev = _load(checkpoint, data, device)
    scores = run_probe(modules, train, test, dev, label or None, knn_k)
    report_probe(f"convirt image encoder on {config.data}: {len(train)} train / {len(test)} held-out molecules",
                 scores, json_out, {"method": "convirt", "data": config.data})


@common.command(app)
def retrieve(
    checkpoint: Path = typer.Option(..., help="checkpoint.pt written by 'molssl multimodal pretrain'."),
    candidates: int = typer.Option(1000, min=2, help="Held-out molecules to retrieve among."),
    data: Optional[Path] = typer.Option(None, help="Override the SMILES file the run was trained on (a moved copy)."),
    device: str = typer.Option("auto"),
    json_out: Optional[Path] = typer.Option(None, help="Also write the accuracies as JSON here."),
) -> None:
    """Image->text and text->image top-1 / top-5 retrieval among held-out molecules, vs random init."""
    from molssl.multimodal.pretrain import retrieve as run_retrieve

    modules, config, _train, test, dev = _load(checkpoint, data, device)
    scores = run_retrieve(modules, test, config, dev, candidates)
    report_probe(f"convirt retrieval among {candidates} held-out molecules of {config.data}", scores, json_out,
                 {"method": "convirt", "data": config.data, "candidates": candidates})
