"""The root ``molssl`` app: registers every verb and group; errors follow :class:`~molssl.cli.common.MolsslGroup`."""
from __future__ import annotations

from typing import Optional

import typer

from molssl.cli import common
from molssl.cli.benchmark import benchmark
from molssl.cli.convert import convert
from molssl.cli.finetune import finetune
from molssl.cli.fingerprint import fingerprint
from molssl.cli.plot import plot
from molssl.cli.predict import predict
from molssl.cli.pretrain import pretrain

app = common.new_app("Self-supervised contrastive learning on molecules (MolCLR, iMolCLR) and beyond.", root=True,
                     name="molssl")


def _version(value: bool) -> None:
    if value:
        from molssl import __version__

        typer.echo(f"molssl {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")) -> None:
    """Self-supervised contrastive learning on molecules (MolCLR, iMolCLR) and beyond."""


for verb in (pretrain, finetune, benchmark, convert, predict, fingerprint, plot):
    common.command(app)(verb)


def _register_groups() -> None:
    from molssl.cli.audio import app as audio_app
    from molssl.cli.data import app as data_app
    from molssl.cli.multimodal import app as multimodal_app
    from molssl.cli.models import app as models_app
    from molssl.cli.rl import app as rl_app
    from molssl.cli.video import app as video_app
    from molssl.cli.vision import app as vision_app

    app.add_typer(models_app, name="models")
    app.add_typer(data_app, name="data")
    app.add_typer(vision_app, name="vision")
    app.add_typer(video_app, name="video")
    app.add_typer(audio_app, name="audio")
    app.add_typer(rl_app, name="rl")
    app.add_typer(multimodal_app, name="multimodal")


_register_groups()


def main() -> None:
    app()
