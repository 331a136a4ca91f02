"""Fine-tuning a (pre-trained) molecular encoder on labelled molecules, and the baselines on the same splits.

Defaults follow MolCLR's ``config_finetune.yaml`` and ``finetune.py`` (github.com/yuyangw/MolCLR):
batch 32, 100 epochs, Adam with lr 5e-4 for the prediction head ("init_lr") and 1e-4 for the
encoder ("init_base_lr", ``feat_lin`` included), weight decay 1e-6, dropout 0.3 in the encoder,
feat_dim 512, a head ``feat -> feat/2 -> feat/2 -> tasks`` with Softplus (its ``pred_n_layer=2``,
``pred_act='softplus'``), scaffold split 80/10/10, and the weights of the epoch with the best
validation metric kept for testing. The protocols (per target or multitask) are in
:mod:`molssl.chem.tasks.groups`.

Deviations from MolCLR, on purpose: classification uses one logit per task with binary cross
entropy (MolCLR: two logits and softmax cross entropy; the same model family for one task);
regression targets are always standardized on the training split (MolCLR: only QM7/QM9); the
loss is L1 when the metric is MAE, else MSE (MolCLR: L1 for QM7/8/9).

Options beyond MolCLR (each recorded in ``results.json``): ``featurizer`` (``rich``), molecule-level
``features`` concatenated before the head (``rdkit2d``, ``ecfp4``), ``patience`` (stop when the
validation metric has not improved for that many epochs), ``class_weight="balanced"`` (positives
weighted by negatives/positives of the training split, per task), a ``cosine`` learning-rate
schedule with warm-up, and ``precision`` (``auto``: bf16 where the CPU has AMX). Training runs on
:func:`molssl.core.fit.fit`, so an interrupted run continues with ``resume``.

A run directory holds ``config.json``, ``invalid.csv`` (rows left out), ``split.json`` (0-based data
rows of the input file), ``results.json`` and ``results.md``, and per model a ``model.pt`` (best
validation epoch), ``history.jsonl`` (training loss and validation metric per epoch),
``metrics.jsonl`` and ``test_predictions.csv``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from molssl import __version__
from molssl.chem.data.inputs import file_sha256
from molssl.chem.data.labelled import LabelledData, load_labelled
from molssl.chem.data.splits import fold_set_sizes
from molssl.chem.nn.property_model import feature_extras
from molssl.chem.serve.loading import resolve_encoder_state
from molssl.chem.tasks.baselines import BASELINE_EXTRAS
from molssl.chem.tasks.finetune_config import RUNTIME_SETTINGS, FinetuneConfig, with_added_fields
from molssl.chem.tasks.groups import (SPLIT_EXTRAS, cap_training_set, fold_of, group_dir, make_split, split_to_rows,
                                     task_groups)
from molssl.chem.tasks.reports import describe_score, results_markdown, summarize, write_invalid
from molssl.chem.tasks.training import ModelResult, baseline_model, train_model
from molssl.core.cputime import cpu_seconds
from molssl.core.device import torch_threads
from molssl.core.rundir import check_output_dir, locked_run_dir
from molssl.errors import MolsslError

__all__ = ["FinetuneConfig", "load_run_data", "run_finetune", "is_finetune_run"]


# --------------------------------------------------------------------------- runs
def load_run_data(config: FinetuneConfig, featurizer: str) -> LabelledData:
    """The run's labelled molecules with every extra its method, features and split need."""
    extras = set(SPLIT_EXTRAS[config.split]) | set(feature_extras(config.features))
    extras |= set(BASELINE_EXTRAS.get(config.method, ()))
    return load_labelled(dataset=config.dataset, csv=config.csv, smiles_column=config.smiles_column,
                         targets=config.targets, task=config.task, metric=config.metric, data_dir=config.data_dir,
                         featurizer=featurizer, extras=sorted(extras), cache_dir=config.cache_dir,
                         workers=config.workers, progress=config.progress)


def run_finetune(config: FinetuneConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or fit the baseline) for every group and seed; write the run directory; return ``results``."""
    out = Path(config.out)
    ours = is_finetune_run(out)
    if ours and (out / "results.json").exists():
        raise MolsslError(f"{out} already holds finished results; choose another --out")
    check_output_dir(out, resume=config.resume, holds_run=ours)
    with locked_run_dir(out), torch_threads(config.threads):
        return _run(config, out, log)


def is_finetune_run(out: Path) -> bool:
    try:
        return "molssl_version" in json.loads((out / "config.json").read_text()) and "protocol" in json.loads(
            (out / "config.json").read_text())
    except (OSError, ValueError):
        return False


def _run(config: FinetuneConfig, out: Path, log: Callable[[str], None]) -> dict:
    started, cpu_started = time.perf_counter(), cpu_seconds()
    encoder_config, pretrained_state, source = replace(config.encoder), None, "random initialization"
    if config.pretrained is not None and config.method == "finetune":
        encoder_config, pretrained_state, source = resolve_encoder_state(config.pretrained)
    encoder_config = replace(encoder_config, dropout=config.dropout)
    if config.method == "finetune":
        log(f"encoder: {source} ({encoder_config.kind}, {encoder_config.featurizer} featurizer)")
    data = load_run_data(config, encoder_config.featurizer)
    saved = {**config.to_dict(), "molssl_version": __version__, "input": str(data.source.resolve()),
             "input_sha256": file_sha256(data.source)}
    if config.resume and (out / "config.json").is_file():
        from molssl.core.rundir import refuse_changed_resume

        before = with_added_fields(json.loads((out / "config.json").read_text()))
        before["patience"] = before.get("patience") or None  # 0 and None both mean off
        refuse_changed_resume(out, before, {**saved, "patience": saved["patience"] or None},
                              RUNTIME_SETTINGS)
    (out / "config.json").write_text(json.dumps(saved, indent=1))
    write_invalid(out / "invalid.csv", data.invalid)
    if data.invalid:
        log(f"{data.name}: {len(data.invalid)} rows left out (listed in {out / 'invalid.csv'})")

    groups = task_groups(data, config.protocol)
    seed_dependent = config.split != "scaffold" or config.max_train_molecules is not None
    per_seed: dict[int, list[ModelResult]] = {seed: [] for seed in config.seeds}
    splits_written: list[str] = []
    earlier = [0.0, 0.0]  # wall and CPU seconds that earlier sessions of a resumed run spent on its models
    for index, group in enumerate(groups):
        folder = group_dir(out, groups, index)
        scaffold = make_split(data, group, "scaffold", 0) if config.split == "scaffold" else None  # seed-free
        like_test = None
        if config.folds:  # one cross-validation fold of the training + validation molecules; test unchanged
            like_test = scaffold.valid  # the fold's calibration marks these (reliability.like_test_subset)
            scaffold = fold_of(data, group, scaffold, config.folds, config.fold, config.fold_acyclic)
            sizes = fold_set_sizes(data.scaffold_keys()[scaffold.valid], config.fold_acyclic)
            if len(sizes) == 1:
                log(f"{data.name}/{group.name}: fold {config.fold} of {config.folds} is one scaffold set ({sizes[0]} "
                    "molecules), so this model never trains on that chemistry; as ensemble members prefer other folds")
        for seed in config.seeds:
            split = scaffold if scaffold is not None else make_split(data, group, config.split, seed)
            split = cap_training_set(split, config.max_train_molecules, seed)
            seed_dir = folder / f"seed_{seed}"
            split_dir = seed_dir if seed_dependent else folder
            split_dir.mkdir(parents=True, exist_ok=True)
            (split_dir / "split.json").write_text(json.dumps(split_to_rows(data, split)))
            splits_written.append(str((split_dir / "split.json").relative_to(out)))
            done = seed_dir / "result.json"
            model_started, model_cpu_started = time.perf_counter(), cpu_seconds()
            if config.resume and done.is_file():
                result = ModelResult(**json.loads(done.read_text()))
            elif config.method == "finetune":
                result = train_model(data, group, split, seed, config, encoder_config, pretrained_state, seed_dir, log,
                                     like_test)
            else:
                result = baseline_model(data, group, split, seed, config, seed_dir, log)
                log(f"  {data.name}/{group.name} seed {seed}: {config.method} valid "
                    f"{describe_score(data.metric, result.valid)}, test {describe_score(data.metric, result.test)}")
            # the part of the model's cost spent in earlier sessions (a finished model reused, an interrupted one resumed)
            earlier[0] += max(0.0, result.seconds - (time.perf_counter() - model_started))
            earlier[1] += max(0.0, result.cpu_seconds - (cpu_seconds() - model_cpu_started))
            done.write_text(json.dumps(asdict(result)))
            per_seed[seed].append(result)

    results = summarize(config, data, groups, per_seed, encoder_config, source, sorted(set(splits_written)),
                        earlier[0] + time.perf_counter() - started, earlier[1] + cpu_seconds() - cpu_started)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_markdown(results))
    return results
