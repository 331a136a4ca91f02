"""``molssl audio pretrain|probe``: multi-format contrastive pre-training and linear probes on WAV folders."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli import common
from molssl.errors import MolsslError

app = common.new_app("Audio: multi-format (waveform / log-mel) contrastive learning on folders of WAV files.")


class Variant(str, Enum):
    wave_spec = "wave-spec"
    wave_wave = "wave-wave"
    spec_spec = "spec-spec"


class Format(str, Enum):
    wave = "wave"
    spec = "spec"


@common.command(app)
def pretrain(
    data: Path = typer.Option(..., help="folder of <label>/<clip>.wav files (labels are ignored)"),
    out: Path = typer.Option(..., help="run folder: checkpoint.pt and metrics.jsonl go here"),
    variant: Variant = typer.Option(Variant.wave_spec, help="formats of the two views"),
    epochs: int = typer.Option(50, min=1),
    max_steps: Optional[int] = typer.Option(None, min=1, help="stop after this many optimizer steps"),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(1e-3),
    temperature: float = typer.Option(0.1),
    sample_rate: int = typer.Option(16000),
    clip_seconds: float = typer.Option(1.0, help="clips are centre-cropped / zero-padded to this length"),
    crop_seconds: float = typer.Option(0.75, help="length of each of the two random crops"),
    n_mels: int = typer.Option(64),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:n]"),
    precision: str = typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA)"),
    checkpoint_every: int = typer.Option(100, min=1),
    resume: bool = typer.Option(False, help="continue from OUT/checkpoint.pt"),
    progress: bool = typer.Option(True),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (1 is fastest on a busy machine)"),
) -> None:
    """Pre-train encoders with NT-Xent between two crops of each recording."""
    import torch

    from molssl.audio.model import ModelConfig
    from molssl.audio.pretrain import PretrainConfig, pretrain as run_pretrain

    if threads:
        torch.set_num_threads(threads)
    config = PretrainConfig(
        data=str(data), out_dir=str(out),
        model=ModelConfig.for_rate(variant.value, sample_rate, crop_seconds, n_mels=n_mels, temperature=temperature),
        clip_samples=round(clip_seconds * sample_rate), epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, lr=lr, seed=seed, device=device, precision=precision,
        checkpoint_every=checkpoint_every, progress=progress,
    )
    trainer = run_pretrain(config, resume=resume, log=common.echo_err)
    typer.echo(f"done: {trainer.state.step} steps; checkpoint at {trainer.checkpoint_path}")


@common.command(app)
def probe(
    train: Path = typer.Option(..., help="labelled training folder <label>/<clip>.wav"),
    test: Path = typer.Option(..., help="labelled test folder with the same labels"),
    checkpoint: Optional[Path] = typer.Option(None, help="checkpoint.pt from `molssl audio pretrain`"),
    random_init: bool = typer.Option(False, help="probe an untrained model instead (baseline)"),
    variant: Variant = typer.Option(Variant.wave_spec, help="architecture of the --random-init model"),
    fmt: List[Format] = typer.Option([], "--format", help="encoder(s) to probe; default: all in the model"),
    sample_rate: int = typer.Option(16000, help="for --random-init"),
    clip_seconds: float = typer.Option(1.0, help="for --random-init"),
    crop_seconds: float = typer.Option(0.75, help="for --random-init"),
    n_mels: int = typer.Option(64, help="for --random-init"),
    shots: List[int] = typer.Option([], "--shots", help="also probe with this many labelled clips per class"),
    repeats: int = typer.Option(10, min=1, help="random draws per few-shot probe"),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results here"),
) -> None:
    """Linear-probe accuracy of frozen encoder outputs (logistic regression)."""
    from dataclasses import asdict

    from molssl.audio.model import ModelConfig, MultiFormatContrastive
    from molssl.audio.pretrain import load_pretrained
    from molssl.audio.probe import linear_probe
    from molssl.audio.wav import load_wav_folder
    from molssl.core.checkpoint import seed_everything
    from molssl.core.device import resolve_device

    if (checkpoint is None) == (not random_init):
        raise MolsslError("give either --checkpoint or --random-init (not both)")
    seed_everything(seed)
    if checkpoint is not None:
        model, config = load_pretrained(checkpoint, log=common.echo_err)
        model_config, clip_samples = config.model, config.clip_samples
    else:
        model_config = ModelConfig.for_rate(variant.value, sample_rate, crop_seconds, n_mels=n_mels)
        model, clip_samples = MultiFormatContrastive(model_config), round(clip_seconds * sample_rate)
    train_set = load_wav_folder(train, model_config.sample_rate, clip_samples)
    test_set = load_wav_folder(test, model_config.sample_rate, clip_samples)
    formats = [f.value for f in fmt] or list(model.encoders)
    results = [linear_probe(model, train_set, test_set, f, device=resolve_device(device), shots=tuple(shots),
                            repeats=repeats, seed=seed) for f in formats]
    source = str(checkpoint) if checkpoint else f"random init ({model_config.variant}, seed {seed})"
    for r in results:
        typer.echo(f"{source} [{r.format}]: test accuracy {r.test_accuracy:.4f} "
                   f"(train {r.train_accuracy:.4f}; {r.num_train} train / {r.num_test} test clips)")
        for k, (mean, std) in r.few_shot.items():
            typer.echo(f"  {k}-shot test accuracy {mean:.4f} +- {std:.4f} over {repeats} draws")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"source": source, "results": [asdict(r) for r in results]}, indent=2))
