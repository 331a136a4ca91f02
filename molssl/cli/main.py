"""The root ``molssl`` app: registers every verb and group; errors follow :class:`~molssl.cli.common.MolsslGroup`."""
from __future__ import annotations

from typing import Optional

import typer

from molssl.cli import common
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


common.command(app)(pretrain)


def _register_groups() -> None:
    from molssl.audio.cli import app as audio_app
    from molssl.cli.finetune_cli import app as finetune_app
    from molssl.cli.predict_cli import app as predict_app
    from molssl.cli.data import app as data_app
    from molssl.rl.cli import app as rl_app
    from molssl.video.cli import app as video_app
    from molssl.vision.cli import app as vision_app

    app.add_typer(finetune_app)
    app.add_typer(predict_app)
    app.add_typer(data_app, name="data")
    app.add_typer(vision_app, name="vision")
    app.add_typer(video_app, name="video")
    app.add_typer(audio_app, name="audio")
    app.add_typer(rl_app, name="rl")


_register_groups()


def main() -> None:
    app()
