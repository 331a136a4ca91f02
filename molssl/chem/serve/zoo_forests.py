"""A shipped fold-ensemble classifier made a consensus: compact forests added to every member, card measured anew.

Why and the rule: on cross-validation folds, averaging a GNN fold ensemble with small random forests on ECFP4 bits
and on RDKit descriptors, each trained on the same fold's molecules, has to beat the GNN alone by >= 1.0 ROC-AUC
point and in >= 4 of 5 folds before a shipped model gets them (benchmarks/fold_consensus.py; met by SIDER only,
quality_ablation.md, twenty-eighth section). The test split is scored after, and reported whatever it gives.

Each member's training molecules are the rows its applicability-domain record holds (written by fine-tuning: the
molecules it was trained on), so a shipped model needs no run directory. Its validation record is predicted again
through the user's path with the forests, so Platt scaling and the domain threshold are fitted to what ships.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from molssl.chem.data.descriptors import column_medians
from molssl.chem.data.labelled import LabelledData, load_labelled
from molssl.chem.nn.forests import FOREST_INPUTS, Forests
from molssl.chem.nn.tree_ensemble import TreeEnsemble
from molssl.chem.serve import zoo
from molssl.chem.serve.ensemble import PropertyEnsemble
from molssl.chem.serve.evaluation import predictions_at
from molssl.chem.serve.loading import load_zoo_weights, member_from_packed, pack_state
from molssl.chem.serve.zoo_export import write_model_folder, today_utc, with_packed_reliability, reliability_note
from molssl.chem.tasks.baselines import compact_forest, forest_features, impute_median
from molssl.chem.tasks.groups import make_split, task_groups
from molssl.errors import MolsslError

RELIABILITY_START = "Uncertainty and domain, measured on the test split:"  # how zoo_export.reliability_note begins
METHODS = {"ecfp2048": "rf-ecfp", "rdkit2d": "rf-rdkit2d"}  # forest input -> the baselines' feature method


def training_positions(data: LabelledData, meta: dict, source: str) -> np.ndarray:
    """Store positions of the molecules a member was trained on (its domain record's rows)."""
    domain = meta.get("domain")
    if not isinstance(domain, dict) or domain.get("rows") is None:
        raise MolsslError(f"{source}: a member has no record of its training molecules (made before molssl kept one)")
    position = {int(row): i for i, row in enumerate(data.rows)}
    rows = np.asarray(domain["rows"], dtype=np.int64)
    missing = [int(r) for r in rows if int(r) not in position]
    if missing:
        raise MolsslError(f"{source}: training rows {missing[:5]} are not in the data set's file as read here")
    return np.asarray([position[int(r)] for r in rows], dtype=np.int64)


def member_forests(data: LabelledData, train: np.ndarray, columns: Sequence[int], seed: int = 0, trees: int = 100,
                   leaves: int = 32) -> Forests:
    """Compact forests on ECFP4 bits and on RDKit descriptors (NaN -> training medians) fitted on ``train``."""
    labels = data.labels[np.ix_(train, list(columns))]
    ensembles, median = {}, None
    for name in FOREST_INPUTS:
        x = forest_features(METHODS[name], data)
        if name == "rdkit2d":
            median = column_medians(x[train])
            x = impute_median(x, train)
        ensembles[name] = TreeEnsemble.from_forest(compact_forest(x[train], labels, seed, trees, leaves))
    return Forests.from_ensembles(ensembles, median)


def add_forests(name: str, data_dir: Optional[str] = None, *, trees: int = 100, leaves: int = 32, seed: int = 0,
                command: str = "", models_dir: Optional[Path] = None) -> zoo.ModelCard:
    """Give every member of shipped classifier ``name`` its forests, re-fit its calibration to the consensus and
    write its weights and card again (test score, member scores, reliability sentence; the GNN alone in the notes)."""
    folder = zoo.model_folder(name, models_dir)
    card = zoo.read_card(folder)
    if card.kind != "property" or card.task_type != "classification" or card.split != "scaffold":
        raise MolsslError(f"{name}: forests are added to scaffold-split classifiers only")
    blob = load_zoo_weights(folder)
    source = str(folder / zoo.WEIGHTS_FILE)
    members = [member_from_packed(entry, source) for entry in blob["members"]]
    if any(member.forests is not None for member in members):
        raise MolsslError(f"{name} already carries forests")
    data = load_labelled(dataset=card.name, data_dir=data_dir, featurizer=card.inputs.get("featurizer", "molclr"),
                         extras=("scaffold", *dict.fromkeys((*members[0].features, *FOREST_INPUTS))), progress=False)
    groups = task_groups(data, card.protocol)
    if len(groups) != 1:
        raise MolsslError(f"{name}: one model per target has a test split per target; forests need one shared split")
    test = make_split(data, groups[0], "scaffold", 0).test
    gnn = predictions_at(data, test, PropertyEnsemble(name, members))
    columns = [data.tasks.index(task) for task in card.tasks]
    for entry, member in zip(blob["members"], members):
        try:
            forests = member_forests(data, training_positions(data, entry["meta"], source), columns, seed, trees, leaves)
        except ValueError as error:  # e.g. a training molecule without every label (Tox21)
            raise MolsslError(f"{name}: {error}") from None
        entry["meta"]["forests"] = forests.describe()
        entry["state"].update(pack_state({f"forests.{key}": value for key, value in forests.state_dict().items()}))
    restored = with_packed_reliability(blob["members"], [member_from_packed(entry, source) for entry in blob["members"]])
    shipped = PropertyEnsemble(name, restored, card.task_labels, card.units)
    found = predictions_at(data, test, shipped)
    card.member_test_scores = [predictions_at(data, test, PropertyEnsemble(name, [m])).score for m in restored]
    card.test_score = found.score
    kept = card.notes.split(RELIABILITY_START)[0].rstrip()
    card.notes = " ".join(filter(None, [
        kept, f"Each member's probabilities are the plain mean of its GNN's and its two forests' ({trees} trees of at "
              f"most {leaves} leaves, one forest for all tasks, on ECFP4 bits and on RDKit descriptors, trained on the "
              f"member's own training molecules, seed {seed}); the GNN members alone score {gnn.score:.4f} on the test "
              "split.", reliability_note(shipped, found)]))
    card.description = card.description.rstrip() + (" A consensus: every member averages its network with two compact "
                                                      "random forests (ECFP4 bits, RDKit descriptors).")
    card.budget = dict(card.budget, forests={"trees": trees, "max_leaves": leaves, "seed": seed,
                                             "inputs": list(FOREST_INPUTS)})
    scheme = card.compression.get("scheme")  # what the export measured was the GNN members' packing alone
    card.compression = {"scheme": scheme, "forests": "thresholds float32 rounded down (every molecule reaches the "
                                                     "same leaf), leaf probabilities in steps of 1/255",
                        "gnn_members_alone": {k: v for k, v in card.compression.items() if k != "scheme"}}
    card.commands = [*card.commands, *([command] if command else [])]
    card.date = today_utc()
    return write_model_folder(folder, blob, card)
