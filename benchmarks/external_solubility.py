"""Out-of-distribution solubility: the shipped ``esol`` model against its baselines on AqSolDB compounds not in ESOL.

Issue 16 asks that the shipped solubility model be checked on an external set of ~7.8k compounds that are
not in ESOL, kept outside the project so nothing can be tuned to it, and that it beat Delaney's 2004
equation there. The set is AqSolDB (Sorkun, Khetan and Er, Sci. Data 6, 143 (2019); 9,982 compounds),
read from a snapshot of its public repository at run time, never copied into the project:

    git -C /work/.mirror/mcsorkun+AqSolDB/repo show HEAD:results/data_curated.csv > /tmp/aqsoldb.csv
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/external_solubility.py --external /tmp/aqsoldb.csv \\
        --data-dir ../shared/data/moleculenet --out runs/external-solubility --seeds 0 1 2

What counts as "not in ESOL" and in scope (printed with counts): RDKit parses the SMILES; no ESOL molecule
(all 1,128, not only its training split) has the same InChIKey skeleton (first block: the same
connectivity, whatever the stereo, isotopes or charge state); every atom is one of H, B, C, N, O, F, Si,
P, S, Cl, Se, Br, I and there is a carbon (ESOL holds organic compounds only; metal salts and inorganic
compounds are out of every model's domain by construction). That leaves 7,854 of 9,982.

Rows, each trained on the ESOL scaffold split's training molecules (the shipped model's own), so the
external score is comparable with the card's test score:

- ``molssl esol`` (shipped): the ensemble in the package, with its conformal intervals and domain flag;
- Delaney's 2004 equation (RDKit's Crippen clogP), no fitting;
- RF-ECFP4 and RF-RDKit2D: the baselines' forests (``molssl.chem.tasks.baselines``), one per seed;
- chemprop v2 (defaults), one per seed, when the ``bench`` extra is installed.

Every row is scored on all external compounds, on those the shipped model calls in and out of its
applicability domain, and on those of one component (no salt or mixture: Delaney's equation adds up the
counter-ion's clogP and weight); the shipped model's interval coverage is printed beside it. Every
prediction goes to ``OUT/predictions.csv``; ``--json`` keeps the scores.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

ORGANIC = frozenset({"H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "I"})


def skeleton(mol) -> str:
    """First block of the InChIKey: the connectivity, without stereo, isotopes or protonation."""
    from rdkit import Chem

    return Chem.MolToInchiKey(mol).split("-")[0]


def external_set(path: Path, smiles_column: str, target: str, esol_smiles: list[str]) -> tuple[pd.DataFrame, dict]:
    """The external compounds in scope (``smiles``, ``logS``) and how many each rule removed."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    known = {skeleton(m) for m in map(Chem.MolFromSmiles, esol_smiles) if m is not None}
    table = pd.read_csv(path)
    counts = {"rows": len(table)}
    keep = []
    for smiles, value in zip(table[smiles_column], table[target]):
        mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
        if mol is None or not np.isfinite(value):
            counts["unparsable or unlabelled"] = counts.get("unparsable or unlabelled", 0) + 1
        elif skeleton(mol) in known:
            counts["in ESOL (same InChIKey skeleton)"] = counts.get("in ESOL (same InChIKey skeleton)", 0) + 1
        elif not ({a.GetSymbol() for a in mol.GetAtoms()} <= ORGANIC and any(a.GetSymbol() == "C" for a in mol.GetAtoms())):
            counts["not organic (metal, inorganic)"] = counts.get("not organic (metal, inorganic)", 0) + 1
        else:
            keep.append((smiles, float(value)))
    counts["kept"] = len(keep)
    return pd.DataFrame(keep, columns=["smiles", "logS"]), counts


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    err = pred - y
    return {"n": int(len(y)), "rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
            "r2": float(1 - np.sum(err ** 2) / np.sum((y - y.mean()) ** 2)),
            "spearman": float(spearmanr(y, pred).statistic)}


def by_part(y: np.ndarray, pred: np.ndarray, parts: dict[str, np.ndarray]) -> dict:
    """Scores on every subset in ``parts`` (boolean masks by name)."""
    return {name: scores(y[mask], pred[mask]) for name, mask in parts.items()}


CARD_MARKER = "Checked outside ESOL"


def mean_rmse(runs: list[dict], part: str = "all") -> float:
    return float(np.mean([r[part]["rmse"] for r in runs]))


def record_on_card(model: str, rows: dict, coverage: dict, parts: dict) -> None:
    """Put the external check into the shipped model's limitations (replacing an earlier one)."""
    from molssl.chem.serve import zoo
    from molssl.chem.serve.zoo_export import write_card

    folder = zoo.model_folder(model)
    card = zoo.read_card(folder)
    ours = next(runs for label, runs in rows.items() if label.startswith("molssl"))
    others = ", ".join(f"{label.split(' (')[0]} {mean_rmse(runs):.2f}" for label, runs in rows.items()
                       if not label.startswith("molssl"))
    text = (f"{CARD_MARKER} ({time.strftime('%Y-%m-%d', time.gmtime())}, benchmarks/external_solubility.py, "
            f"benchmarks/results/external_solubility.md): on {int(parts['all'].sum())} AqSolDB compounds whose InChIKey "
            f"skeleton is in no ESOL molecule, RMSE {mean_rmse(ours):.2f} log10(mol/L): {mean_rmse(ours, 'in domain'):.2f} "
            f"on the {int(parts['in domain'].sum())} its domain check accepts, {mean_rmse(ours, 'out of domain'):.2f} on "
            f"the {int(parts['out of domain'].sum())} it flags; trained on the same ESOL split: {others}. Its 90% "
            f"interval covered {coverage['all']:.0%} of them ({coverage['in domain']:.0%} in the domain).")
    card.limitations = card.limitations.split(CARD_MARKER)[0].rstrip() + " " + text
    write_card(folder, card)
    print(f"{folder / zoo.CARD_FILE}: limitations now end with: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--external", type=Path, required=True, help="AqSolDB's data_curated.csv (see above)")
    parser.add_argument("--smiles-column", default="SMILES")
    parser.add_argument("--target", default="Solubility", help="log10 solubility in mol/L, as ESOL's")
    parser.add_argument("--data-dir", default=None, help="folder with delaney-processed.csv(.gz)")
    parser.add_argument("--out", type=Path, required=True, help="work folder (the filtered set, chemprop's files)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="esol", help="shipped model (or any model path molssl predict takes)")
    parser.add_argument("--no-chemprop", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--card", action="store_true",
                        help="write the result into the shipped model's card (its limitations), weights untouched")
    args = parser.parse_args()

    from molssl.chem.data.descriptors import column_medians
    from molssl.chem.data.labelled import load_dataset, load_labelled
    from molssl.chem.serve.predict import Predictor
    from molssl.chem.tasks.baselines import delaney_logs, forest_features, forest_predict
    from molssl.chem.tasks.chemprop_baseline import chemprop_available, chemprop_predict, run_chemprop
    from molssl.chem.tasks.groups import make_split, task_groups
    from molssl.core.precision import cpu_description

    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    extras = ("scaffold", "ecfp2048", "rdkit2d")
    esol = load_dataset("esol", data_dir=args.data_dir, extras=extras, progress=False)
    split = make_split(esol, task_groups(esol, "molclr-per-target")[0], "scaffold", 0)
    external, counts = external_set(args.external, args.smiles_column, args.target, esol.smiles)
    external.to_csv(args.out / "external.csv", index=False)
    ext = load_labelled(csv=args.out / "external.csv", smiles_column="smiles", targets=["logS"], task="regression",
                        extras=extras, progress=False)
    if len(ext) != len(external):
        raise SystemExit(f"{len(external) - len(ext)} external molecules could not be featurized")
    y = ext.labels[:, 0]
    print(f"CPU: {cpu_description()[0]}; ESOL training split {len(split.train)} molecules; external set: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))

    predictor = Predictor([args.model], threads=1, progress=False)
    shipped = predictor.predict_smiles(ext.smiles)
    name = predictor.models[0].name
    in_domain = shipped[f"{name}_in_domain"].to_numpy(dtype=bool)
    pred = shipped[name].to_numpy(dtype=np.float64)
    parts = {"all": np.ones(len(y), dtype=bool), "in domain": in_domain, "out of domain": ~in_domain,
             "one component": np.array(["." not in text for text in ext.smiles])}
    predictions = pd.DataFrame({"smiles": ext.smiles, "logS": y, f"molssl {name}": pred, "in_domain": in_domain})
    inside = (y >= shipped[f"{name}_lower"].to_numpy()) & (y <= shipped[f"{name}_upper"].to_numpy())
    rows = {f"molssl {name} (shipped)": [by_part(y, pred, parts)]}
    coverage = {"all": float(inside.mean()), "in domain": float(inside[in_domain].mean()),
                "out of domain": float(inside[~in_domain].mean()),
                "mean width": float((shipped[f"{name}_upper"] - shipped[f"{name}_lower"]).mean())}
    predictions["Delaney 2004 equation"] = delaney_logs(ext)
    rows["Delaney 2004 equation"] = [by_part(y, predictions["Delaney 2004 equation"].to_numpy(), parts)]

    y_train = esol.labels[split.train, 0]
    for method, label in (("rf-ecfp", "RF-ECFP4"), ("rf-rdkit2d", "RF-RDKit2D")):
        x_train, x_ext = forest_features(method, esol)[split.train], forest_features(method, ext)
        if method == "rf-rdkit2d":  # NaN descriptors take ESOL's training medians, as in the baseline
            medians = column_medians(x_train)
            x_train, x_ext = np.where(np.isnan(x_train), medians, x_train), np.where(np.isnan(x_ext), medians, x_ext)
        rows[label] = []
        for seed in args.seeds:
            predictions[f"{label} seed {seed}"] = forest_predict(x_train, y_train, x_ext, False, seed)
            rows[label].append(by_part(y, predictions[f"{label} seed {seed}"].to_numpy(), parts))
        print(f"{label}: {len(args.seeds)} forests done ({time.time() - started:.0f} s)")

    if args.no_chemprop or not chemprop_available():
        print("chemprop: not run" + ("" if args.no_chemprop else " (the bench extra is not installed)"))
    else:
        rows["chemprop v2 (defaults)"] = []
        for seed in args.seeds:
            work = args.out / f"chemprop_seed{seed}"
            model = run_chemprop(esol, [0], split, seed, work)["model_path"]
            chem = chemprop_predict(Path(model), ext.smiles, esol.tasks, work / "chemprop", "external")[:, 0]
            predictions[f"chemprop seed {seed}"] = chem
            rows["chemprop v2 (defaults)"].append(by_part(y, chem, parts))
            print(f"chemprop seed {seed} done ({time.time() - started:.0f} s)")

    predictions.to_csv(args.out / "predictions.csv", index=False)
    print(f"\nExternal solubility ({len(y)} AqSolDB compounds not in ESOL; {int(in_domain.sum())} in the shipped "
          f"model's domain, {int((~in_domain).sum())} out; {int(parts['one component'].sum())} of one component, "
          "no salt or mixture), RMSE in log10(mol/L), mean ± std over seeds:\n")
    print("| model | RMSE, all | in domain | out of domain | one component | MAE | R² | Spearman | seeds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, runs in rows.items():
        def cell(part: str, key: str) -> str:
            values = [r[part][key] for r in runs]
            return f"{np.mean(values):.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")
        print(f"| {label} | {cell('all', 'rmse')} | {cell('in domain', 'rmse')} | {cell('out of domain', 'rmse')} | "
              f"{cell('one component', 'rmse')} | "
              f"{cell('all', 'mae')} | {cell('all', 'r2')} | {cell('all', 'spearman')} | {len(runs)} |")
    print(f"\nShipped model's 90% conformal interval on the external set: coverage {coverage['all']:.3f} (in domain "
          f"{coverage['in domain']:.3f}, out {coverage['out of domain']:.3f}), mean width {coverage['mean width']:.2f}")
    print(f"wall time {time.time() - started:.0f} s")
    if args.card:
        record_on_card(args.model, rows, coverage, parts)
    if args.json is not None:
        args.json.write_text(json.dumps({"counts": counts, "rows": rows, "coverage": coverage,
                                         "cpu": cpu_description()[0]}, indent=1))


if __name__ == "__main__":
    main()
