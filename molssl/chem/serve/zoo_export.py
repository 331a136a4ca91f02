"""Packing runs into the zoo: compact weights plus a model card with the scores measured on the test split."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from molssl.chem.serve.evaluation import ensemble_test_predictions
from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.serve.fingerprints import encode_smiles
from molssl.chem.serve.loading import (ENCODER_FILE, EXACT_PREFIXES, PROJECTION_PREFIX, QUANTIZE_MIN_SIZE,
                                       encoder_from_state, load_encoder_file, load_property_model, load_zoo_weights,
                                       member_from_packed, pack_state, run_member_files, unpack_state)
from molssl.chem.serve.zoo import CARD_FILE, CARD_MARKDOWN, MODELS_DIR, WEIGHTS_FILE, ZOO_FORMAT, ModelCard, read_card
from molssl.core.checkpoint import atomic_save
from molssl.errors import MolsslError


COMPRESSION_SCHEME = f"int8 per row for matrices >= {QUANTIZE_MIN_SIZE} entries and embedding tables, fp32 otherwise"


def write_model_folder(folder: Path, blob: dict, card: ModelCard) -> ModelCard:
    """A zoo folder: ``weights.pt`` (gzip), and the card with that file's size and sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(blob, folder / WEIGHTS_FILE, compress=True)
    data = (folder / WEIGHTS_FILE).read_bytes()
    card.size_bytes, card.sha256 = len(data), hashlib.sha256(data).hexdigest()
    return write_card(folder, card)


def write_card(folder: Path, card: ModelCard) -> ModelCard:
    """``card.json`` and its markdown twin ``README.md`` (the weights and their digest are left as they are)."""
    (folder / CARD_FILE).write_text(json.dumps(asdict(card), indent=1), encoding="utf-8")
    (folder / CARD_MARKDOWN).write_text(card.to_markdown(), encoding="utf-8")
    return card


def repack(folder: Path) -> ModelCard:
    """Write a shipped model's weights again in the current file form (gzip since 2026-12-04), the content
    unchanged: the old file is checked against its card first, then the card gets the new size and sha256."""
    return write_model_folder(folder, load_zoo_weights(folder), read_card(folder))


def _share_statistics(packed: list[dict]) -> None:
    """Members trained on one split have equal descriptor statistics (quantile knots: 88 kB each); let them
    reference one tensor, which the file then stores once."""
    seen: list[Tensor] = []
    for entry in packed:
        for name, value in entry["state"].items():
            tensor = value.get("t")
            if not name.startswith(EXACT_PREFIXES) or tensor is None:
                continue
            same = next((t for t in seen if t.shape == tensor.shape and torch.equal(t, tensor)), None)
            if same is None:
                seen.append(tensor)
            else:
                value["t"] = same


def today_utc() -> str:
    """A card's date."""
    return time.strftime("%Y-%m-%d", time.gmtime())


def export_property_model(run_dirs: str | Path | Sequence[str | Path], name: str, *, title: str, description: str, training_data: str,
                          commands: Sequence[str], task_labels: Optional[dict] = None, units: Optional[str] = None,
                          data_dir: Optional[str] = None, notes: str = "", baselines: Optional[dict] = None,
                          limitations: str = "", models_dir: Optional[Path] = None) -> ModelCard:
    """Pack every model of one or more fine-tuning runs (e.g. one per seed) into an ensemble; write its card.

    The runs must share their test split. The card's test score is the ensemble's (mean over members) on the run's test split,
    computed with the packed weights; ``compression`` records the largest change that packing
    makes to a test prediction. ``baselines`` ({"RF-ECFP4": score, ...}, fractions for ROC-AUC) are
    other models' test scores on the same split, shown beside the model's own.
    """
    folders = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    result_files = sorted(f for d in folders for f in d.rglob("results.json"))
    if not result_files:
        raise MolsslError(f"no results.json in {', '.join(map(str, folders))}: unfinished or not `molssl finetune` runs")
    runs = [json.loads(f.read_text()) for f in result_files]
    results = runs[0]
    members = [load_property_model(p) for d in folders for p in run_member_files(d)]
    packed = [{"meta": {k: v for k, v in m.meta.items() if k not in ("pretrained", "digest")},
               "state": pack_state(m.state_dict(), PROJECTION_PREFIX)} for m in members]
    for entry, model in zip(packed, members):
        entry["meta"]["units"] = units or model.units
    _share_statistics(packed)
    restored = [member_from_packed(e) for e in packed]
    folded = any(r["config"].get("folds") for r in runs)  # members validated on cross-validation folds (--folds)
    calibration_note = fold_reliability(packed, folders, members, data_dir) if folded else ""
    restored = with_packed_reliability(packed, restored)
    full = ensemble_test_predictions(folders, PropertyEnsemble(name, members), data_dir)
    shipped = PropertyEnsemble(name, restored)
    small = ensemble_test_predictions(folders, shipped, data_dir)
    notes = " ".join(filter(None, [notes, calibration_note, reliability_note(shipped, small)]))
    budget = dict(results["budget"], **{key: [v for r in runs for v in r["budget"].get(key, [])]  # every member run's
                                        for key in ("seeds", "epochs_run")})
    if folded:
        budget["folds"] = [f"{r['config']['fold']} of {r['config']['folds']}" for r in runs]
    card = ModelCard(
        name=name, kind="property", title=title, description=description, training_data=training_data,
        date=today_utc(), commands=list(commands), tasks=list(results["tasks"]), task_labels=dict(task_labels or {}),
        task_type=results["task_type"], units=units, metric=results["metric"], split=results["split"],
        protocol=results["protocol"], test_score=small.score, member_test_scores=[s["test"] for r in runs for s in r["seeds"]],
        test_molecules=small.n_molecules, members=len(members), budget=budget,
        compression={"scheme": COMPRESSION_SCHEME,
                     "max_abs_change_test_prediction": float(np.nanmax(np.abs(full.mean - small.mean))),
                     "test_score_uncompressed": full.score},
        notes=notes, baselines={k: float(v) for k, v in (baselines or {}).items()}, limitations=limitations,
        inputs=model_inputs(members[0].meta),
    )
    folder = (Path(models_dir) if models_dir is not None else MODELS_DIR) / name
    return write_model_folder(folder, {"format": ZOO_FORMAT, "members": packed}, card)


def model_inputs(meta: dict) -> dict:
    """What a property model reads, from its member metadata: the graph featurizer and the molecule features."""
    features = meta.get("features") or ()
    if isinstance(features, str):
        features = [features]
    inputs = {"featurizer": meta.get("encoder_config", {}).get("featurizer", "molclr"),
              "features": "+".join(features) or "none"}
    if meta.get("descriptor_scaling", "standard") != "standard":  # cards of standard-scaled models stay as they were
        inputs["descriptor_scaling"] = meta["descriptor_scaling"]
    return inputs


def fold_reliability(packed: list[dict], folders: Sequence[Path], members: Sequence, data_dir: Optional[str]) -> str:
    """Cut fold members' calibration and domain records in ``packed`` as an ensemble of them uses them
    (:func:`molssl.chem.serve.reliability.like_test_subset`), so the file holds what its predictions use; returns
    the card's sentence. Runs fine-tuned before molssl marked the scaffold split's validation molecules in the
    record (2026-12-06) get the mark here, from the data."""
    from molssl.chem.serve.reliability import LIKE_TEST, like_test_subset, marked

    metas = [entry["meta"] for entry in packed]
    if not all(isinstance(meta.get("calibration"), dict) for meta in metas):
        return ""
    if any(meta["calibration"].get(LIKE_TEST) is None for meta in metas):
        rows = like_test_rows(folders, members, data_dir)
        if rows is None:
            return ""
        for meta in metas:
            meta.update(marked(meta, np.isin(np.asarray(meta["calibration"]["rows"], dtype=np.int64), rows)))
    cut, note = like_test_subset(metas)
    for entry, meta in zip(packed, cut):
        entry["meta"] = meta
    return note


def like_test_rows(folders: Sequence[Path], members: Sequence, data_dir: Optional[str]) -> Optional[np.ndarray]:
    """Input rows of the scaffold split's validation part of the runs' data (None: one model per target on several
    targets, whose splits differ per target)."""
    from molssl.chem.serve.evaluation import run_data, scaffold_validation_rows

    data, config = run_data(folders, PropertyEnsemble("", members), data_dir, scaffolds=True)
    return scaffold_validation_rows(data, config.get("protocol", "multitask"))


def with_packed_reliability(packed: list[dict], restored: list) -> list:
    """Members' calibration records re-predicted with the packed weights (what will be shipped), and one copy of a
    training domain that several members share (the file stores an object referenced twice once)."""
    from molssl.chem.serve.predict import predict_member
    from molssl.chem.serve.reliability import refreshed

    shared: list[dict] = []
    for entry, member in zip(packed, restored):
        record = entry["meta"].get("calibration")
        if record is None:
            continue
        if len(record["smiles"]):  # a fold member may hold none of the scaffold split's validation molecules
            entry["meta"].update(refreshed(entry["meta"], predict_member(member, record["smiles"])[0]))
        domain = entry["meta"].get("domain")
        same = next((d for d in shared if d["smiles"] == domain["smiles"] and
                     np.array_equal(d["fingerprints"], domain["fingerprints"])), None) if domain else None
        if same is not None:
            entry["meta"]["domain"] = same
        elif domain is not None:
            shared.append(domain)
    return [member_from_packed(e) for e in packed]


def reliability_note(ensemble: PropertyEnsemble, test, coverage: float = 0.9) -> str:
    """One paragraph for the model card: how the shipped ensemble's uncertainty and domain did on its test split."""
    from molssl.chem.serve.evaluation import test_reliability

    if ensemble.calibration is None and ensemble.domain is None:
        return ""
    found = test_reliability(ensemble, test, coverage)
    parts = []
    if "empirical_coverage" in found:
        parts.append(f"{coverage:.0%} split-conformal interval ({ensemble.calibration.describe(coverage)[0]}): covers "
                     f"{found['empirical_coverage']:.1%} of the {found['labelled']} test labels, mean width "
                     f"{found['mean_width']:.3g}{' ' + ensemble.units if ensemble.units else ''}.")
    if "brier_before" in found:
        parts.append(f"Platt-calibrated probabilities: test Brier {found['brier_before']:.4f} -> {found['brier_after']:.4f}, "
                     f"ECE {found['ece_before']:.4f} -> {found['ece_after']:.4f} (mean over tasks).")
    if "in_domain" in found:
        parts.append(f"Applicability domain ({len(ensemble.domain.smiles)} training molecules, ECFP4 similarity "
                     f">= {ensemble.domain.threshold:.2f}, atoms and descriptor ranges of the training set): "
                     f"{found['in_domain']:.0%} of test molecules in the domain{_domain_errors(found, test)}.")
    return "Uncertainty and domain, measured on the test split: " + " ".join(parts)


def _domain_errors(found: dict, test) -> str:
    """The evidence for a domain on the card: the test error inside and outside it."""
    inside, outside = found.get("error_in_domain"), found.get("error_out_of_domain")
    if inside is None or outside is None:
        return ""
    what = "mean absolute error" + (" of the probabilities" if test.task_type == "classification" else "")
    return f" ({what} {inside:.3g} inside, {outside:.3g} outside)"


def export_encoder(run_dir: str | Path, name: str, *, title: str, description: str, training_data: str,
                   commands: Sequence[str], probe_smiles: Sequence[str] = (), notes: str = "",
                   models_dir: Optional[Path] = None) -> ModelCard:
    """Pack a pre-training run's ``encoder.pt`` (projection head left out) and write its card.

    ``compression`` records the smallest cosine similarity between fingerprints of
    ``probe_smiles`` from the full and the packed encoder.
    """
    run_dir = Path(run_dir)
    config, state = load_encoder_file(run_dir / ENCODER_FILE)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    pretrain_config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    entry = {"encoder_config": config.to_dict(), "state": pack_state(state, "head.")}
    full = encoder_from_state(config, state, run_dir / ENCODER_FILE)
    small = encoder_from_state(config, unpack_state(entry["state"]), run_dir / ENCODER_FILE)
    compression = {"scheme": COMPRESSION_SCHEME}
    if probe_smiles:
        a, _ = encode_smiles(full.eval(), probe_smiles)
        b, _ = encode_smiles(small.eval(), probe_smiles)
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        compression["min_cosine_to_uncompressed"] = float(np.nanmin(cosine))
        compression["probe_molecules"] = int(np.isfinite(cosine).sum())
    budget = {k: pretrain_config.get(k) for k in ("method", "max_steps", "batch_size", "lr", "precision", "seed")}
    budget.update({k: summary.get(k) for k in ("steps", "molecules", "final_loss", "final_val_loss", "seconds")})
    card = ModelCard(name=name, kind="encoder", title=title, description=description, training_data=training_data,
                     date=today_utc(), commands=list(commands), budget=budget, compression=compression, notes=notes)
    folder = (Path(models_dir) if models_dir is not None else MODELS_DIR) / name
    return write_model_folder(folder, {"format": ZOO_FORMAT, "encoder": entry}, card)
