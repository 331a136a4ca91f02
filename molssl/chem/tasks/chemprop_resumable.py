"""``chemprop train``, continued from its last finished epoch when an earlier run in the same folder stopped.

chemprop's CLI already saves a Lightning ``checkpoints/last.ckpt`` after every epoch (model, optimizer,
learning-rate schedule, early-stopping and best-checkpoint state), but always trains from scratch, so a
3.5-hour MUV run could only be done in one sitting. Run as ``python -m molssl.chem.tasks.chemprop_resumable
<chemprop train arguments>``, this is chemprop's own CLI with one change: each ``Trainer.fit`` starts from
that ``last.ckpt`` when the folder holds one, and each finished epoch prints a line molssl relays as progress.
chemprop saves ``last.ckpt`` when it saves a best checkpoint, so a resumed run repeats the epochs after its last
improvement; a *finished* run is not resumed at all (``--check-only``: its folder is checked, nothing trained).
chemprop's defaults are untouched. Used only in chemprop's subprocess (:mod:`molssl.chem.tasks.chemprop_baseline`),
so lightning never loads into molssl.

Files from an earlier session are untrusted: before chemprop starts, every ``.ckpt`` and ``.pt`` in its output
folder is scanned, and the run is refused (exit status 3, one line) unless each names only classes chemprop keeps in
its hyperparameters (layer classes defined in ``chemprop.nn`` and ``torch.nn`` modules) and Lightning's
``AttributeDict``; chemprop loads its best checkpoint and ``best.pt`` with a full unpickler, so this scan is what
keeps a tampered folder from running code. ``last.ckpt`` itself is read with torch's ``weights_only`` unpickler,
allowing just those classes (``AttributeDict`` as a plain dict: resuming restores weights and training state).
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from lightning import pytorch as pl

RESUMED = "molssl: continuing chemprop from"  # printed before a resumed fit, so its log says so
REFUSED = "molssl: refused"  # printed, with the reason, when a file of an earlier session is refused
REFUSED_STATUS = 3
EPOCH = "molssl: chemprop epoch"  # printed after each epoch's validation; molssl shows these lines as progress


def last_checkpoint(trainer: pl.Trainer) -> Optional[Path]:
    """The ``last.ckpt`` that ``trainer``'s checkpoint callback writes, when it exists already."""
    callback = trainer.checkpoint_callback
    if callback is None or not callback.dirpath:
        return None
    path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
    return path if path.is_file() else None


ALLOWED_MODULES = ("chemprop.nn.", "torch.nn.modules.")
READ_AS_DICT = "lightning.fabric.utilities.data.AttributeDict"  # the unpickler fills only plain dicts


class CheckpointRefused(RuntimeError):
    """A checkpoint names a global outside chemprop's layer classes: it is not loaded."""


def allowed_classes(checkpoint: Path) -> list:
    """What ``checkpoint`` needs beyond torch's safe set, for ``torch.serialization.safe_globals``, when all of it is
    chemprop's or torch's layer classes (or Lightning's ``AttributeDict``, given as ``dict``);
    :class:`CheckpointRefused` for anything else (a function, another module)."""
    try:  # a file cut short (a process killed while saving) is not resumed from either
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(checkpoint))
    except Exception as error:  # whatever torch's reader raises on a damaged file
        raise CheckpointRefused(f"{checkpoint} is not a readable checkpoint ({type(error).__name__})") from None
    classes: list = []
    for name in names:
        if name == READ_AS_DICT:
            classes.append((dict, name))
            continue
        module, _, attribute = name.rpartition(".")
        try:  # a real module of chemprop.nn or torch.nn, not an attribute path through one ("...module.os.system")
            found = getattr(importlib.import_module(module), attribute) if module.startswith(ALLOWED_MODULES) else None
        except (ImportError, AttributeError):
            found = None
        if found is None:
            raise CheckpointRefused(f"{checkpoint} names {name}, which is not one of chemprop's layer classes")
        if not (isinstance(found, type) and found.__module__ == module):
            raise CheckpointRefused(f"{checkpoint} names {name}, which is not a class defined there")
        classes.append(found)
    return classes


class EpochLines(pl.Callback):
    """``molssl: chemprop epoch 3/50: val_loss 0.4312`` after each validation (not the sanity check)."""

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        loss = trainer.callback_metrics.get("val_loss")
        tail = f": val_loss {float(loss):.4f}" if loss is not None else ""
        print(f"{EPOCH} {trainer.current_epoch + 1}/{trainer.max_epochs}{tail}", flush=True)


def _fit_from_last(fit: Callable) -> Callable:
    def fit_from_last(self: pl.Trainer, model, *args, ckpt_path=None, **kwargs):
        if not any(isinstance(callback, EpochLines) for callback in self.callbacks):
            self.callbacks.append(EpochLines())
        last = last_checkpoint(self) if ckpt_path is None else None
        if last is None:
            return fit(self, model, *args, ckpt_path=ckpt_path, **kwargs)
        print(f"{RESUMED} {last}", flush=True)
        with torch.serialization.safe_globals(allowed_classes(last)):
            return fit(self, model, *args, ckpt_path=str(last), **kwargs)

    return fit_from_last


def check_folder(folder: Path) -> None:
    """:class:`CheckpointRefused` unless every checkpoint and model file below ``folder`` passes
    :func:`allowed_classes` (a folder that does not exist yet passes)."""
    for path in sorted([*folder.rglob("*.ckpt"), *folder.rglob("*.pt")]):
        allowed_classes(path)


CHECK_ONLY = "--check-only"  # a finished run: check its folder, train nothing


def main(argv: Sequence[str]) -> None:
    from chemprop.cli.main import main as chemprop_main

    argv = list(argv)
    check_only = CHECK_ONLY in argv
    if check_only:
        argv.remove(CHECK_ONLY)
    output = argv[argv.index("--output-dir") + 1] if "--output-dir" in argv else None
    if output is not None:
        try:
            check_folder(Path(output))
        except CheckpointRefused as refused:
            print(f"{REFUSED} {refused}", flush=True)
            sys.exit(REFUSED_STATUS)
    if check_only:
        return

    pl.Trainer.fit = _fit_from_last(pl.Trainer.fit)
    sys.argv = ["chemprop", "train", *argv]
    chemprop_main()


if __name__ == "__main__":
    main(sys.argv[1:])
