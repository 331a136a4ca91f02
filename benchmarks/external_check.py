"""Out of distribution: a shipped property model against its baselines on an external set of compounds not in its data set.

Issue 16 asks that the shipped solubility model be checked on an external set of ~7.8k compounds that are not
in ESOL, kept outside the project so nothing can be tuned to it, and that it beat Delaney's 2004 equation
there. The same check serves any shipped model with a public external set; the sets are read at run time from
snapshots of their public repositories, never copied into the project:

    # ESOL against AqSolDB (Sorkun, Khetan and Er, Sci. Data 6, 143 (2019); 9,982 compounds)
    git -C /work/.mirror/mcsorkun+AqSolDB/repo show HEAD:results/data_curated.csv > /tmp/aqsoldb.csv
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/external_check.py --dataset esol --external /tmp/aqsoldb.csv \\
        --smiles-column SMILES --targets Solubility --data-dir ../shared/data/moleculenet --out runs/external-esol
    # BBBP against B3DB (Meng et al., Sci. Data 8, 289 (2021); 7,807 compounds, BBB+ / BBB-)
    git -C /work/.mirror/theochem+B3DB/repo show HEAD:B3DB/B3DB_classification.tsv > /tmp/b3db.tsv
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/external_check.py --dataset bbbp --external /tmp/b3db.tsv \\
        --smiles-column SMILES --targets BBB+/BBB- --positive BBB+ --data-dir ../shared/data/moleculenet --out runs/external-bbbp

    # Tox21 against the Tox21 Data Challenge's final evaluation set (647 compounds, 12 assays; labels released
    # after the challenge; copy in github:alphaleegroup/InverseIsing)
    R=/work/.mirror/alphaleegroup+InverseIsing/repo
    python -c "import pandas as pd, sys; s = pd.read_csv(sys.argv[1], sep='\\t'); y = pd.read_csv(sys.argv[2], sep='\\t'); \\
        s.rename(columns={'#SMILES': 'SMILES'}).merge(y, on='Sample ID').to_csv(sys.argv[3], index=False)" \\
        <(git -C $R show HEAD:tox21_10k_challenge_score.smiles) <(git -C $R show HEAD:tox21_10k_challenge_score.txt) /tmp/tox21_score.csv
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/external_check.py --dataset tox21 --external /tmp/tox21_score.csv \\
        --source "Tox21 challenge final set" --data-dir ../shared/data/moleculenet --out runs/external-tox21

What counts as "not in the data set" and in scope (printed with counts): RDKit parses the SMILES; no molecule
of the MoleculeNet set (all of it, not only its training split) has the same InChIKey skeleton (first block:
the same connectivity, whatever the stereo, isotopes or charge state); every atom is one of H, B, C, N, O, F,
Si, P, S, Cl, Se, Br, I and there is a carbon (metal salts and inorganic compounds are outside every model's
domain by construction).

Rows, each trained on the data set's scaffold split's training molecules (the shipped model's own), so the
external score is comparable with the card's test score: the shipped model as installed (with its conformal
intervals or calibrated probabilities, and its domain flag); Delaney's 2004 equation for ESOL; the baselines'
forests on ECFP4 bits and on RDKit descriptors (one per seed; with ``--pooled`` also on the training +
validation molecules, what a fold ensemble's members saw together); chemprop v2 with its defaults (one per seed,
when the ``bench`` extra is installed). Every row is scored on all external compounds, on those the shipped
model calls in and out of its applicability domain, and on those of one component (no salt or mixture). Every
prediction goes to ``OUT/predictions.csv``; ``--json`` keeps the scores; ``--card`` writes the result into
the shipped model's card (its limitations; weights and digest untouched).
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from molssl.chem.serve.zoo import EXTERNAL_CHECK

ORGANIC = frozenset({"H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "I"})
# the table's columns by task type: (subset, measure)
COLUMNS = {"regression": [("all", "rmse"), ("in domain", "rmse"), ("out of domain", "rmse"), ("one component", "rmse"),
                          ("all", "mae"), ("all", "r2"), ("all", "spearman")],
           "classification": [("all", "roc_auc"), ("in domain", "roc_auc"), ("out of domain", "roc_auc"),
                              ("one component", "roc_auc"), ("all", "brier")]}
UNTESTED = "Not tested on other assays, conditions or chemical series"  # ship_zoo.py's card template
UNTESTED_BESIDE_CHECK = "Beyond the check below, not tested on other assays, conditions or chemical series"


def with_check(limitations: str, text: str) -> str:
    """A card's limitations with the external check ``text`` at the end (replacing an earlier check) and the
    template's "not tested" sentence pointing to it."""
    base = limitations.split(EXTERNAL_CHECK)[0].rstrip().replace(UNTESTED, UNTESTED_BESIDE_CHECK)
    return f"{base} {text}"


def skeleton(mol) -> str:
    """First block of the InChIKey: the connectivity, without stereo, isotopes or protonation."""
    from rdkit import Chem

    return Chem.MolToInchiKey(mol).split("-")[0]


def read_external(path: Path, smiles_column: str, targets: list[str], tasks: list[str],
                  positive: str | None) -> pd.DataFrame:
    """``smiles`` and one label column per model task (external column ``targets[j]`` becomes ``tasks[j]``) of
    the external file (tab-separated when it ends in .tsv). With ``positive``, a text label becomes 1 where it
    equals ``positive`` and 0 elsewhere; otherwise labels are numbers, anything else (``x``, empty) missing."""
    table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype={c: str for c in targets})
    out = pd.DataFrame({"smiles": table[smiles_column]})
    for target, task in zip(targets, tasks):
        labels = table[target]
        values = (labels == positive).astype(float).where(labels.notna()) if positive is not None \
            else pd.to_numeric(labels, errors="coerce")
        out[task] = values.to_numpy(dtype=float)  # an empty cell stays missing, never a negative
    return out


def external_set(table: pd.DataFrame, reference_smiles: list[str], name: str) -> tuple[pd.DataFrame, dict]:
    """The external compounds in scope and how many each rule removed."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    known = {skeleton(m) for m in map(Chem.MolFromSmiles, reference_smiles) if m is not None}
    rules = ("unparsable or unlabelled", f"in {name} (same InChIKey skeleton)", "not organic (metal, inorganic)")
    counts = {"rows": len(table), **{rule: 0 for rule in rules}}
    keep = []
    labelled = np.isfinite(table.drop(columns="smiles").to_numpy(dtype=float)).any(axis=1)
    for row, (smiles, has_label) in enumerate(zip(table["smiles"], labelled)):
        mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
        symbols = {a.GetSymbol() for a in mol.GetAtoms()} if mol is not None else set()
        if mol is None or not has_label:
            counts[rules[0]] += 1
        elif skeleton(mol) in known:
            counts[rules[1]] += 1
        elif not (symbols <= ORGANIC and "C" in symbols):
            counts[rules[2]] += 1
        else:
            keep.append(row)
    counts["kept"] = len(keep)
    return table.iloc[keep].reset_index(drop=True), counts


def scores(y: np.ndarray, pred: np.ndarray, task_type: str) -> dict:
    """(molecules, tasks) labels (NaN missing) and predictions: ROC-AUC averaged over tasks (molssl's metric
    code) and Brier over every label; or, for one regression task, RMSE, MAE, R² and Spearman."""
    if task_type == "classification":
        from molssl.chem.serve.uncertainty import brier_score
        from molssl.chem.tasks.metrics import task_scores

        per_task = task_scores("roc_auc", y, pred)
        return {"n": int(len(y)), "positives": float(np.nanmean(y)),
                "roc_auc": float(np.nanmean(per_task)) if np.isfinite(per_task).any() else float("nan"),
                "brier": brier_score(pred, y)}
    from scipy.stats import spearmanr
    from sklearn.metrics import r2_score

    from molssl.chem.tasks.metrics import score

    y, pred = y[:, 0], pred[:, 0]
    return {"n": int(len(y)), "rmse": score("rmse", y, pred), "mae": score("mae", y, pred),
            "r2": float(r2_score(y, pred)), "spearman": float(spearmanr(y, pred).statistic)}


def by_part(y: np.ndarray, pred: np.ndarray, parts: dict[str, np.ndarray], task_type: str) -> dict:
    """Scores on every subset in ``parts`` (boolean masks by name)."""
    return {name: scores(y[mask], pred[mask], task_type) for name, mask in parts.items()}


def mean_of(runs: list[dict], part: str, key: str) -> float:
    return float(np.mean([r[part][key] for r in runs]))


def shown(value: float, key: str) -> str:
    return f"{100 * value:.1f}" if key == "roc_auc" else f"{value:.3f}"


def record_on_card(model: str, dataset: str, source: str, rows: dict, reliability: str, parts: dict,
                   task_type: str) -> None:
    """Put the external check into the shipped model's limitations (replacing an earlier one)."""
    from molssl.chem.serve import zoo
    from molssl.chem.serve.zoo_export import write_card

    folder = zoo.model_folder(model)
    card = zoo.read_card(folder)
    key = COLUMNS[task_type][0][1]
    what = "ROC-AUC" if key == "roc_auc" else f"RMSE ({card.units})" if card.units else "RMSE"
    ours = next(runs for label, runs in rows.items() if label.startswith("molssl"))
    others = ", ".join(f"{label.split(' (')[0]} {shown(mean_of(runs, 'all', key), key)}" for label, runs in rows.items()
                       if not label.startswith("molssl"))
    text = (f"{EXTERNAL_CHECK} {dataset} ({time.strftime('%Y-%m-%d', time.gmtime())}, benchmarks/external_check.py, "
            f"benchmarks/results/external_check.md): on {int(parts['all'].sum())} {source} compounds whose InChIKey "
            f"skeleton is in no {dataset} molecule, {what} {shown(mean_of(ours, 'all', key), key)}: "
            f"{shown(mean_of(ours, 'in domain', key), key)} on the {int(parts['in domain'].sum())} its domain check "
            f"accepts, {shown(mean_of(ours, 'out of domain', key), key)} on the {int(parts['out of domain'].sum())} it "
            f"flags; trained on the same {dataset} split: {others}. {reliability}")
    card.limitations = with_check(card.limitations, text)
    write_card(folder, card)
    print(f"{folder / zoo.CARD_FILE}: limitations now end with: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="MoleculeNet set the model was trained on (esol, bbbp, ...)")
    parser.add_argument("--model", default=None, help="model to check (default: the shipped model named --dataset)")
    parser.add_argument("--external", type=Path, required=True, help="the external set (.csv, or .tsv)")
    parser.add_argument("--source", default=None, help="the external set's name in the card (default: from the file)")
    parser.add_argument("--smiles-column", default="SMILES")
    parser.add_argument("--targets", nargs="+", default=None,
                        help="the external label column of each task, in the data set's task order and the model's "
                             "units (default: columns named as the data set's tasks)")
    parser.add_argument("--positive", default=None, help="classification: the text label that means 1")
    parser.add_argument("--data-dir", default=None, help="folder with the MoleculeNet files")
    parser.add_argument("--out", type=Path, required=True, help="work folder (the filtered set, chemprop's files)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-chemprop", action="store_true")
    parser.add_argument("--pooled", action="store_true",
                        help="also forests trained on the training + validation molecules, the fair comparison for a "
                             "fold ensemble (whose members saw both)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--card", action="store_true", help="write the result into the shipped model's card")
    args = parser.parse_args()

    from molssl.chem.data.descriptors import column_medians
    from molssl.chem.data.datasets import get_spec
    from molssl.chem.data.labelled import load_dataset, load_labelled
    from molssl.chem.serve.predict import Predictor
    from molssl.chem.serve.uncertainty import expected_calibration_error
    from molssl.chem.tasks.baselines import delaney_logs, forest_features, forest_predict
    from molssl.chem.tasks.chemprop_baseline import chemprop_available, chemprop_predict, run_chemprop
    from molssl.chem.tasks.groups import make_split, task_groups
    from molssl.core.precision import cpu_description

    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    extras = ("scaffold", "ecfp2048", "rdkit2d")
    data = load_dataset(args.dataset, data_dir=args.data_dir, extras=extras, progress=False)
    tasks, task_type, name = data.tasks, data.task_type, get_spec(args.dataset).title
    targets = args.targets or tasks
    if len(targets) != len(tasks):
        raise SystemExit(f"--targets names {len(targets)} columns; {args.dataset} has {len(tasks)} tasks")
    if task_type == "regression" and len(tasks) > 1:
        raise SystemExit("multitask regression sets are not supported")
    split = make_split(data, task_groups(data, "multitask")[0], "scaffold", 0)
    source = args.source or args.external.stem
    external, counts = external_set(read_external(args.external, args.smiles_column, targets, tasks, args.positive),
                                    data.smiles, name)
    external.to_csv(args.out / "external.csv", index=False)
    ext = load_labelled(csv=args.out / "external.csv", smiles_column="smiles", targets=tasks, task=task_type,
                        extras=extras, progress=False)
    if len(ext) != len(external):
        raise SystemExit(f"{len(external) - len(ext)} external molecules could not be featurized")
    y = ext.labels
    print(f"CPU: {cpu_description()[0]}; {name} training split {len(split.train)} molecules; external set {source}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items())
          + (f"; {int(np.isfinite(y).sum())} labels, positives {np.nanmean(y):.1%}" if task_type == "classification"
             else ""))

    predictor = Predictor([args.model or args.dataset], threads=1, progress=False)
    shipped = predictor.predict_smiles(ext.smiles)
    model = predictor.models[0]
    if sorted(model.tasks) != sorted(tasks):
        raise SystemExit(f"the model's tasks ({', '.join(model.tasks)}) are not {args.dataset}'s")
    pred = shipped[[model.column(t) for t in tasks]].to_numpy(dtype=np.float64)
    in_domain = shipped[model.domain_column("in_domain")].to_numpy(dtype=bool)
    parts = {"all": np.ones(len(y), dtype=bool), "in domain": in_domain, "out of domain": ~in_domain,
             "one component": np.array(["." not in text for text in ext.smiles])}
    predictions = {"smiles": ext.smiles, "in_domain": in_domain}  # columns, made a table once at the end

    def add(label: str, values: np.ndarray) -> dict:
        """Keep one row's predictions (a column per task) and return its scores."""
        for j, task in enumerate(tasks):
            predictions[label + (f" {task}" if len(tasks) > 1 else "")] = values[:, j]
        return by_part(y, values, parts, task_type)

    for j, task in enumerate(tasks):
        predictions["label" + (f" {task}" if len(tasks) > 1 else "")] = y[:, j]
    rows = {f"molssl {model.name} (shipped)": [add(f"molssl {model.name}", pred)]}
    if task_type == "regression":
        lower, upper = (shipped[model.column(tasks[0], side)].to_numpy() for side in ("lower", "upper"))
        inside = (y[:, 0] >= lower) & (y[:, 0] <= upper)
        reliability = (f"Its {predictor.coverage:.0%} interval covered {inside.mean():.0%} of them "
                       f"({inside[in_domain].mean():.0%} in the domain, {inside[~in_domain].mean():.0%} outside), "
                       f"mean width {np.mean(upper - lower):.2f}.")
    else:
        labelled = np.isfinite(y)
        inside_labelled = labelled & in_domain[:, None]
        reliability = (f"Its calibrated probabilities: Brier {rows[next(iter(rows))][0]['all']['brier']:.3f}, "
                       f"expected calibration error {expected_calibration_error(pred[labelled], y[labelled]):.3f} "
                       f"({expected_calibration_error(pred[inside_labelled], y[inside_labelled]):.3f} in the domain).")
    if args.dataset == "esol":
        rows["Delaney 2004 equation"] = [add("Delaney 2004 equation", delaney_logs(ext)[:, None])]

    training_sets = {"": np.asarray(split.train)}
    if args.pooled:  # what a fold ensemble's members saw together (benchmarks/pooled_baselines.py)
        training_sets[" on training + validation"] = np.concatenate([split.train, split.valid])
    forests_run = (("rf-ecfp", "RF-ECFP4"), ("rf-rdkit2d", "RF-RDKit2D"))
    for (method, forest), (suffix, rows_seen) in itertools.product(forests_run, training_sets.items()):
        label = forest + suffix
        x_train, x_ext = forest_features(method, data)[rows_seen], forest_features(method, ext)
        if method == "rf-rdkit2d":  # NaN descriptors take the training medians, as in the baseline
            medians = column_medians(x_train)
            x_train, x_ext = np.where(np.isnan(x_train), medians, x_train), np.where(np.isnan(x_ext), medians, x_ext)
        rows[label] = []
        for seed in args.seeds:
            forests = np.zeros_like(y)
            for j in range(len(tasks)):  # one forest per task, on its labelled training molecules
                seen = ~np.isnan(data.labels[rows_seen, j])
                forests[:, j] = forest_predict(x_train[seen], data.labels[rows_seen, j][seen], x_ext,
                                               task_type == "classification", seed)
            rows[label].append(add(f"{label} seed {seed}", forests))
        print(f"{label}: {len(args.seeds)} x {len(tasks)} forests done ({time.time() - started:.0f} s)", flush=True)

    if args.no_chemprop or not chemprop_available():
        print("chemprop: not run" + ("" if args.no_chemprop else " (the bench extra is not installed)"))
    else:
        rows["chemprop v2 (defaults)"] = []
        for seed in args.seeds:
            work = args.out / f"chemprop_seed{seed}"
            trained = run_chemprop(data, list(range(len(tasks))), split, seed, work)["model_path"]
            chem = chemprop_predict(Path(trained), ext.smiles, tasks, work / "chemprop", "external")
            rows["chemprop v2 (defaults)"].append(add(f"chemprop seed {seed}", chem))
            print(f"chemprop seed {seed} done ({time.time() - started:.0f} s)", flush=True)

    pd.DataFrame(predictions).to_csv(args.out / "predictions.csv", index=False)
    print(f"\n{source}: {len(y)} compounds not in {name}; {int(in_domain.sum())} in the shipped model's domain, "
          f"{int((~in_domain).sum())} out; {int(parts['one component'].sum())} of one component (no salt or mixture); "
          "mean ± std over seeds:\n")
    print("| model | " + " | ".join(f"{key}, {part}" for part, key in COLUMNS[task_type]) + " | seeds |")
    print("|---|" + "---|" * (len(COLUMNS[task_type]) + 1))
    for label, runs in rows.items():
        cells = []
        for part, key in COLUMNS[task_type]:
            values = [r[part][key] * (100 if key == "roc_auc" else 1) for r in runs]
            spread = np.std(values, ddof=1) if len(values) > 1 else None
            cells.append(shown(mean_of(runs, part, key), key)
                         + (f" ± {spread:.{1 if key == 'roc_auc' else 3}f}" if spread is not None else ""))
        print(f"| {label} | " + " | ".join(cells) + f" | {len(runs)} |")
    print(f"\n{reliability}\nwall time {time.time() - started:.0f} s")
    if args.card:
        record_on_card(args.model or args.dataset, name, source, rows, reliability, parts, task_type)
    if args.json is not None:
        args.json.write_text(json.dumps({"counts": counts, "rows": rows, "reliability": reliability,
                                         "cpu": cpu_description()[0]}, indent=1))


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
