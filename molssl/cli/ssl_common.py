"""What the sibling-modality commands (vision, video, multimodal) share: method flags, widths, the probe report.

Errors are raised as :class:`~molssl.errors.MolsslError` with one sentence; the root app prints them
(``error: ...``, exit code 2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import typer

from molssl.errors import MolsslError


def method_options(method: str, table: Mapping[str, Mapping[str, str]], **flags: object) -> dict:
    """Map the method-specific flags that were given to constructor options, refusing misplaced ones.

    ``table`` maps each flag to {method it applies to: constructor option}.
    """
    options = {}
    for flag, value in flags.items():
        if value is None:
            continue
        targets = table[flag]
        if method not in targets:
            raise MolsslError(f"--{flag.replace('_', '-')} applies only to --method {', '.join(targets)}")
        options[targets[method]] = value
    return options


def parse_widths(text: str) -> tuple[int, ...]:
    """``"32,64,128"`` -> (32, 64, 128); anything else is refused naming ``--widths``."""
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise MolsslError(f"--widths must be comma-separated positive integers, got {text!r}") from None
    if not widths or min(widths) <= 0:
        raise MolsslError(f"--widths must be comma-separated positive integers, got {text!r}")
    return widths


def pretrain_and_report(run: Callable, config: Any, out: Path, *, name: str, device: str, resume: bool,
                        progress: bool) -> None:
    """``run(config, out, ...)`` (a modality's ``pretrain``) on the resolved device, then the closing line."""
    from molssl.cli.common import echo_err
    from molssl.core.device import resolve_device

    _, state = run(config, out, device=resolve_device(device), resume=resume, progress=progress, log=echo_err)
    report_pretrain(name, state, out)


def load_for_probe(load: Callable, split_data: Callable, checkpoint: Path, data: Optional[Any], device: str) -> tuple:
    """``(module, config, train, test, device)`` of a checkpoint, ``load(path, device, log=...)`` being a modality's
    loader; ``data`` (when given) replaces the data the run was trained on, e.g. a moved copy."""
    import dataclasses

    from molssl.cli.common import echo_err
    from molssl.core.device import resolve_device

    dev = resolve_device(device)
    module, config = load(checkpoint, dev, log=echo_err)
    if data is not None:
        config = dataclasses.replace(config, data=str(data))
    train, test = split_data(config)
    return module, config, train, test, dev


def report_pretrain(method: str, state: Any, out: Path) -> None:
    """The closing line of a pre-training command."""
    last = next((r for r in reversed(state.history) if "loss" in r), {})
    typer.echo(f"{method}: {state.step} steps, final loss {last.get('loss', float('nan')):.4f}; "
               f"checkpoint {out / 'checkpoint.pt'}")


def report_probe(title: str, scores: Mapping[str, Mapping[str, float]], json_out: Optional[Path],
                 extra: Optional[Mapping[str, Any]] = None) -> None:
    """Print each score of the trained encoder next to its random-init twin and the margin; optionally as JSON.

    ``scores``: ``{"trained": {name: value}, "random_init": {name: value}}``.
    """
    typer.echo(title)
    width = max(map(len, scores["trained"]))
    for name, trained in scores["trained"].items():
        random = scores["random_init"][name]
        typer.echo(f"{name:>{width}}: trained {trained:.4f}  random init {random:.4f}  margin {trained - random:+.4f}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({**(extra or {}), **scores}, indent=2), encoding="utf-8")
