"""Does a shipped model score what its card says, predicted the way a user predicts? (``molssl models check``)

A card's numbers were computed at export from the fine-tuning runs' own batches. This rebuilds the card's scaffold
test split from the MoleculeNet file, predicts its SMILES through :class:`~molssl.chem.serve.predict.Predictor`
(parsing, features, descriptors, packed weights, calibration, domain) and scores them with the card's metric; the
interval coverage and width (regression) and the share of molecules in the applicability domain are compared with
the card's reliability sentence. It found BACE's card 0.0007 above what users got (Platt scaling tied 17 molecules;
benchmarks/results/zoo_audit.md).
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np

from molssl.chem.data.labelled import load_labelled
from molssl.chem.serve import zoo
from molssl.chem.serve.predict import Predictor
from molssl.chem.tasks.groups import make_split, task_groups
from molssl.chem.tasks.metrics import score
from molssl.errors import MolsslError

# fp32 on another CPU may move a prediction in its sixth digit; these leave room for that, not for BACE's 0.0007
ROC_AUC_TOLERANCE = 5e-4
ERROR_TOLERANCE = 1e-3  # relative, for RMSE / MAE
# the card rounds coverage to 0.1% and the domain share to 1% (half a unit each); widths to three figures (below)
CARD_ROUNDING = {"coverage": 0.0005, "in_domain": 0.005}


def card_test_split(card: zoo.ModelCard, data_dir: Optional[str] = None) -> tuple[list[str], np.ndarray]:
    """(SMILES, labels (n, tasks) in the card's task order, NaN where missing) of the card's scaffold test split."""
    if card.kind != "property":
        raise MolsslError(f"{card.name!r} is an encoder: it has no test split to check")
    if card.split != "scaffold" or card.test_score is None:
        raise MolsslError(f"{card.name}: its card gives no scaffold-split test score to check")
    data = load_labelled(dataset=card.name, data_dir=data_dir, featurizer=card.inputs.get("featurizer", "molclr"),
                         extras=("scaffold",), progress=False)
    columns = [data.tasks.index(task) for task in card.tasks]
    rows: dict[int, np.ndarray] = {}  # store position -> labels in the card's task order (insertion order kept)
    for group in task_groups(data, card.protocol):
        # a per-target model is scored on its own target's test molecules; a multitask one on all of them
        mine = [k for k, j in enumerate(columns) if j in group.task_index]
        for position in make_split(data, group, "scaffold", 0).test:
            row = rows.setdefault(int(position), np.full(len(columns), np.nan))
            row[mine] = data.labels[position, [columns[k] for k in mine]]
    positions = np.fromiter(rows, dtype=np.int64)
    return data.store.smiles(positions), np.stack(list(rows.values()))


def measure(name: str, smiles: Sequence[str], labels: np.ndarray, precision: str = "fp32",
            reliability: bool = True) -> dict:
    """The card's metric on these molecules through the user's path, how many could not be predicted, and with
    ``reliability`` what the command line's default columns say: the 90% intervals' coverage and mean width
    (regression) and the share of molecules in the applicability domain."""
    predictor = Predictor([name], precision=precision, progress=False,
                          **({} if reliability else {"coverage": None, "domain": False}))
    table = predictor.predict(list(smiles))
    model = predictor.models[0]
    ok = (table["status"] == "ok").to_numpy()
    predictions = table[[model.column(task) for task in model.tasks]].to_numpy(dtype=np.float64)
    found = {"score": score(zoo.get_card(name).metric, labels[ok], predictions[ok]), "invalid": int((~ok).sum())}
    if reliability and model.column(model.tasks[0], "lower") in table:
        lower, upper = (table[[model.column(t, kind) for t in model.tasks]].to_numpy(dtype=np.float64)
                        for kind in ("lower", "upper"))
        labelled = ~np.isnan(labels) & ok[:, None]
        covered = (labels >= lower) & (labels <= upper)
        found.update(coverage=float(covered[labelled].mean()), width=float((upper - lower)[labelled].mean()))
    if reliability and model.domain_column("in_domain") in table:
        found["in_domain"] = float(table[model.domain_column("in_domain")][ok].astype(bool).mean())
    return found


def card_reliability(card: zoo.ModelCard) -> dict:
    """The coverage, width and in-domain share the card's reliability sentence gives (written by the export)."""
    out = {}
    interval = re.search(r"covers ([0-9.]+)% of the \d+ test labels, mean width ([0-9.]+)", card.notes)
    if interval:
        out.update(coverage=float(interval.group(1)) / 100, width=float(interval.group(2)))
    domain = re.search(r"(\d+)% of test molecules in the domain", card.notes)
    if domain:
        out["in_domain"] = float(domain.group(1)) / 100
    return out


def disagreements(card: zoo.ModelCard, found: dict) -> list[str]:
    """What in ``found`` (from :func:`measure`, fp32) the card does not say, beyond CPU noise and its rounding."""
    out = []
    tolerance = ROC_AUC_TOLERANCE if card.metric == "roc_auc" else ERROR_TOLERANCE * card.test_score
    if found["invalid"]:
        out.append(f"{found['invalid']} test molecules could not be predicted")
    if not math.isclose(found["score"], card.test_score, abs_tol=tolerance):
        out.append(f"test {card.metric} {found['score']:.4f} against the card's {card.test_score:.4f}")
    stated = card_reliability(card)
    for key in ("coverage", "width", "in_domain"):
        if key in stated and key in found:
            allowed = CARD_ROUNDING.get(key) or _half_unit_of_third_figure(stated[key])
            if abs(found[key] - stated[key]) > allowed + 1e-9:
                out.append(f"{key.replace('_', ' ')} {found[key]:.3f} against the card's {stated[key]:.3f}")
    return out


def _half_unit_of_third_figure(value: float) -> float:
    """How far a number printed with three significant figures (``:.3g``) can be from the one it stands for."""
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - 2) if value else 0.0
