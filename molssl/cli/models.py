"""``molssl models``: the shipped models, their cards, and packing runs into the zoo."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molssl.cli.common import CONTEXT_SETTINGS, ListOptionGroup, check_folder, command, resolved_precision
from molssl.errors import MolsslError, require_input_file


app = typer.Typer(cls=ListOptionGroup, invoke_without_command=True, no_args_is_help=False,
                  context_settings=CONTEXT_SETTINGS, pretty_exceptions_enable=False, add_completion=False,
                  help="List the shipped models (with their test metrics); show, check or export model cards.")


@app.callback()
def models(ctx: typer.Context,
           markdown: bool = typer.Option(False, help="Print the list as a markdown table")) -> None:
    """List the shipped models with their scaffold-split test metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from molssl.chem.serve.zoo import list_models, models_rows, models_table

    cards = list_models()
    if not cards:
        typer.echo("no shipped models found")
        return
    if markdown:
        typer.echo(models_table(cards))
        return
    rows = models_rows(cards)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@command(app)
def show(name: str = typer.Argument(..., help="Shipped model name, or a folder written by `export`")) -> None:
    """Print a model's card (training data, split, metric, units, date, commands)."""
    from molssl.chem.serve.zoo import MODELS_DIR, CARD_MARKDOWN, model_folder

    typer.echo((model_folder(name, MODELS_DIR) / CARD_MARKDOWN).read_text(encoding="utf-8"))


@command(app)
def check(
    names: List[str] = typer.Argument(None, help="Shipped property models (default: all of them)"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the MoleculeNet files (else where `molssl data "
                                            "list` looks; a missing file is downloaded)"),
    precision: str = typer.Option("fp32", help="fp32 (the cards' own), bf16 or auto: what `predict` would use here"),
) -> None:
    """Predict each model's scaffold test split as `predict` does and compare with its card (exit 1 if it differs)."""
    from molssl.chem.serve import zoo
    from molssl.chem.serve.card_check import card_reliability, card_test_split, disagreements, measure

    check_folder(data_dir, "--data-dir")
    precision = resolved_precision(precision, "cpu")
    cards = [zoo.get_card(name) for name in names] if names else \
        [card for card in zoo.list_models() if card.kind == "property"]
    failed = []
    for card in cards:
        smiles, labels = card_test_split(card, str(data_dir) if data_dir else None)
        found = measure(card.name, smiles, labels, precision)
        stated = card_reliability(card)
        extra = "".join(f", {key.replace('_', ' ')} {found[key]:.3f} (card {stated[key]:.3f})"
                        for key in stated if key in found)
        problems = disagreements(card, found)
        verdict = "as on its card" if not problems else "differs: " + "; ".join(problems)
        if problems and precision != "fp32":
            verdict += " (the card is fp32)"
        typer.echo(f"{card.name}: test {card.metric} {found['score']:.4f} (card {card.test_score:.4f}, "
                   f"{len(smiles)} molecules, {precision}){extra}: {verdict}")
        if problems and precision == "fp32":
            failed.append(card.name)
    if failed:
        typer.echo(f"{', '.join(failed)} did not reproduce {'its' if len(failed) == 1 else 'their'} card in fp32",
                   err=True)
        raise typer.Exit(1)


@command(app)
def export(
    run_dirs: List[Path] = typer.Argument(..., help="`molssl finetune` run(s) sharing a split, e.g. one per seed "
                                                     "(property model), or one `molssl pretrain` run (encoder)"),
    name: str = typer.Option(..., help="Model name, e.g. esol"),
    title: str = typer.Option(..., help="One-line title"),
    description: str = typer.Option("", help="A few sentences for the card"),
    training_data: str = typer.Option(..., help="Where the training data came from"),
    command: List[str] = typer.Option([], "--command", help="The exact commands that produced the run (repeatable)"),
    label: List[str] = typer.Option([], "--label", help="Display name of a task: TASK=LABEL (repeatable)"),
    units: Optional[str] = typer.Option(None, help="Units of regression predictions"),
    notes: str = typer.Option("", help="Caveats for the card"),
    baseline: List[str] = typer.Option([], "--baseline", help="Another model's test score on the same split: "
                                       "NAME=SCORE, ROC-AUC as a fraction (repeatable)"),
    limitations: str = typer.Option("", help="Training-set chemistry, what the model was not tested on"),
    probe: Optional[Path] = typer.Option(None, help="Encoders: SMILES file to measure the compression's effect on"),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the MoleculeNet files (test-split score)"),
    models_dir: Optional[Path] = typer.Option(None, help="Where to write (default: the package's molssl/models)"),
) -> None:
    """Pack a run into the zoo (compact weights + model card)."""
    from molssl.chem.serve.zoo_export import export_encoder, export_property_model

    for run_dir in run_dirs:
        check_folder(run_dir, "RUN_DIRS")
    if probe is not None:
        require_input_file(probe)
    labels = {}
    for item in label:
        task, sep, text = item.partition("=")
        if not sep:
            raise MolsslError(f"--label must be TASK=LABEL, got {item!r}")
        labels[task] = text
    baselines = {}
    for item in baseline:
        title_, sep, value = item.rpartition("=")
        try:
            baselines[title_] = float(value)
        except ValueError:
            sep = ""
        if not sep or not title_:
            raise MolsslError(f"--baseline must be NAME=SCORE (e.g. RF-ECFP4=0.868), got {item!r}")
    if len(run_dirs) == 1 and (run_dirs[0] / "encoder.pt").is_file() and not (run_dirs[0] / "results.json").is_file():
        probe_smiles = []
        if probe is not None:
            from molssl.chem.data.inputs import iter_smiles

            probe_smiles = [s for chunk in iter_smiles(probe) for s in chunk.smiles]
        card = export_encoder(run_dirs[0], name, title=title, description=description, training_data=training_data,
                              commands=command, probe_smiles=probe_smiles, notes=notes, models_dir=models_dir)
    else:
        card = export_property_model(run_dirs, name, title=title, description=description,
                                     training_data=training_data, commands=command, task_labels=labels, units=units,
                                     data_dir=str(data_dir) if data_dir else None, notes=notes, baselines=baselines,
                                     limitations=limitations, models_dir=models_dir)
    typer.echo(f"exported {card.name}: {card.score_text()}, {card.size_bytes / 1e6:.2f} MB")
