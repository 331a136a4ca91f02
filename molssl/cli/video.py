"""``molssl video``: pre-train a 3D-CNN clip encoder and probe it (heavy imports happen inside the commands)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli import common
from molssl.cli.ssl_common import load_for_probe, method_options, parse_widths, pretrain_and_report, report_probe

app = common.new_app("Self-supervised pre-training on video (CVRL, shuffle-and-learn).")


class Method(str, Enum):
    cvrl = "cvrl"
    shuffle = "shuffle"


# Method-specific flags: {flag: {method it applies to: constructor option}}.
METHOD_FLAGS = {
    "temperature": {"cvrl": "temperature"},
    "window": {"shuffle": "window"},
    "conv_head": {"shuffle": "conv_head"},
}


@common.command(app)
def pretrain(
    method: Method = typer.Option(..., help="cvrl (two clips, NT-Xent) or shuffle (frame-order verification)."),
    data: str = typer.Option("moving-mnist", help="'moving-mnist' (real MNIST digits moving in 8 directions at 2 speeds) "
                                                  "or a folder root/<class>/<video folder or .gif>."),
    out: Path = typer.Option(..., help="Run folder: checkpoint.pt, metrics.jsonl and config.json are written here."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(1e-3, min=0.0),
    seed: int = typer.Option(0),
    clip_len: int = typer.Option(6, min=1, help="Frames per CVRL clip (and per probed clip)."),
    frames: int = typer.Option(16, min=2, help="Frames kept per video (folders are subsampled evenly)."),
    size: int = typer.Option(24, min=2, help="Frame size (square); moving-mnist digits are 2/3 of it."),
    channels: int = typer.Option(3, help="Folder data only: 1 (grey) or 3 (RGB)."),
    widths: str = typer.Option("16,32,64", help="3D-CNN channel widths, one stage each."),
    temperature: Optional[float] = typer.Option(None, help="cvrl: NT-Xent temperature (0.5)."),
    window: Optional[int] = typer.Option(None, min=5, help="shuffle: draw each frame tuple from this many consecutive "
                                                           "frames (default: the whole video)."),
    conv_head: Optional[bool] = typer.Option(
        None, "--conv-head/--no-conv-head",
        help="shuffle: the classifier starts with its own 3D conv stage on the encoder's feature map (default on)."),
    flip_p: float = typer.Option(0.5, min=0.0, max=1.0, help="Horizontal-flip probability (set 0 when left/right "
                                                             "motion is a label)."),
    max_videos: Optional[int] = typer.Option(None, min=1, help="Use at most this many training videos."),
    max_steps: Optional[int] = typer.Option(None, min=1),
    precision: str = typer.Option("fp32"),
    device: str = typer.Option("auto"),
    resume: bool = typer.Option(False, help="Continue the run in --out (its settings must be the same)."),
    progress: bool = typer.Option(True),
) -> None:
    """Pre-train a clip encoder; writes OUT/checkpoint.pt, OUT/metrics.jsonl and OUT/config.json."""
    options = method_options(method.value, METHOD_FLAGS, temperature=temperature, window=window, conv_head=conv_head)
    from molssl.video.pretrain import make_config
    from molssl.video.pretrain import pretrain as run_pretrain

    config = make_config(method.value, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         clip_len=clip_len, frames=frames, size=size, channels=channels,
                         digit_size=max(2, round(size * 2 / 3)), widths=parse_widths(widths), options=options,
                         augment={"flip_p": flip_p}, max_videos=max_videos, max_steps=max_steps, precision=precision)
    pretrain_and_report(run_pretrain, config, out, name=method.value, device=device, resume=resume, progress=progress)


@common.command(app)
def probe(
    checkpoint: Path = typer.Option(..., help="checkpoint.pt written by 'molssl video pretrain'."),
    label: List[str] = typer.Option([], help="Label(s) to probe; moving-mnist has direction, speed, digit. Default: all."),
    data: Optional[str] = typer.Option(None, help="Override the data the run was trained on."),
    device: str = typer.Option("auto"),
    json_out: Optional[Path] = typer.Option(None, help="Also write the accuracies as JSON here."),
) -> None:
    """Linear-probe accuracy of the frozen clip encoder vs the same encoder at random initialization."""
    from molssl.video.pretrain import load_encoder, probe_video_encoders, random_init_encoder, split_data

    encoder, config, train, test, dev = load_for_probe(load_encoder, split_data, checkpoint, data, device)
    scores = probe_video_encoders({"trained": encoder, "random_init": random_init_encoder(config)}, train, test,
                                  config.clip_len, dev, label or None)
    report_probe(f"{config.method} on {config.data}: {len(train)} train / {len(test)} test videos", scores, json_out,
                 {"method": config.method, "data": config.data})
