"""Re-ship the property models from the quality ablation's best configuration (issue 16), with the baselines
measured on the same split written on each card.

For every data set: the runs of every seed found under the ``--ablation`` folders for each candidate
(``--configs`` x random init / the pre-trained encoder); the candidate with the best mean *validation* score
over the seeds every candidate has (the test split is not looked at to choose); the baselines' mean test
scores over their seeds; then ``molssl models export``. Prints each command before running it
(``--dry-run``: only prints).

    python benchmarks/ship_zoo.py --ablation runs/ablation runs/full --data-dir ../shared/data/moleculenet

A model whose runs are gone competes with the validation score its card was chosen by (``--incumbent-valid
NAME=SCORE``) and is kept unless a candidate beats it; its baselines are then read from its card. The
2026-12-03 re-ship (benchmarks/results/model_zoo.md):

    python benchmarks/ship_zoo.py --ablation runs/ablation runs/full \
        --models esol freesolv lipo bbbp bace clintox tox21 sider \
        --incumbent-valid esol=0.829 freesolv=2.700 lipo=0.664 bbbp=0.967 bace=0.740 clintox=0.915 \
        --max-members tox21=1 sider=1

and the later one, with the rich encoder's runs as candidates and seeds 0-2:

    python benchmarks/ship_zoo.py --ablation runs/ablation runs/full --models esol freesolv lipo bbbp clintox \
        --incumbent-valid lipo=0.664 --max-members esol=2 freesolv=2 lipo=2 bbbp=2 clintox=2
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from molssl.chem.data.datasets import get_spec

CONFIGS = ("molclr-rdkit2d", "rich-rdkit2d")
FEATURES_TEXT = {  # featurizer: what the card says about the atom and bond fields
    "molclr": "MolCLR atom/bond features (element, chirality; bond type, direction)",
    "rich": "rich atom/bond features (MolCLR's plus formal charge, H count, degree, hybridization, aromaticity, "
            "ring membership, isotope/radical flags; bond conjugation, ring, stereo)",
}
ENCODERS = {"molclr": "molclr-gin-mix", "rich": "runs/pretrain/rich-chembl"}  # featurizer: what "pretrained" started from
ENCODER_TEXT = {  # encoder (shipped name or run): how cards name it
    "molclr-gin-mix": "the molclr-gin-mix encoder (ChEMBL+MOSES, 4,000 steps)",
    "runs/pretrain/rich-chembl": "the rich-featurizer encoder pre-trained on ChEMBL (236k, 2,000 steps of 512; "
                                 "shipped as rich-gin-chembl)",
    "runs/pretrain/rich-imolclr-chembl-moses": "a rich-featurizer encoder pre-trained with the iMolCLR objective on "
                                               "ChEMBL + 500k MOSES (736k molecules, 3,000 steps of 512; "
                                               "runs/pretrain/rich-imolclr-chembl-moses, not shipped on its own: the "
                                               "package's 50 MB)",
}
ENCODER_EXPORTS = {  # shipped encoder: (run, title, training data, command)
    "molclr-gin-mix": ("runs/pretrain/molclr-mix", "MolCLR GIN (5 x 300), ChEMBL + MOSES 472k, 4,000 steps of 512",
                       "236k ChEMBL SMILES (chembl_subset_union.smi.gz) + 236k random MOSES training SMILES (seed 0), "
                       "from ../shared/data/pretrain/: 471,782 lines, sha256 b9bb533c7f129b01...; 5% held out for the "
                       "validation loss",
                       "molssl pretrain --smiles chembl_moses_mix.smi.gz --out runs/pretrain/molclr-mix --epochs 10 "
                       "--max-steps 4000 --precision auto --checkpoint-every 100 --skip-invalid --workers 1"),
    "rich-gin-chembl": ("runs/pretrain/rich-chembl", "GIN (5 x 300) on the rich featurizer, ChEMBL 236k, 2,000 steps of 512",
                        "236k ChEMBL SMILES (../shared/data/pretrain/chembl_subset_union.smi.gz, 235,891 molecules); 5% "
                        "held out for the validation loss",
                        "molssl pretrain --smiles ../shared/data/pretrain/chembl_subset_union.smi.gz --out "
                        "runs/pretrain/rich-chembl --featurizer rich --epochs 10 --max-steps 2000 --precision auto "
                        "--checkpoint-every 100 --skip-invalid --workers 1"),
}
BASELINE_TITLES = {"rf-ecfp": "RF-ECFP4", "chemprop": "chemprop v2", "rf-rdkit2d": "RF-RDKit2D",
                   "delaney": "Delaney 2004 equation"}
MODELS = {  # name: (data set, title, units, labels, training data)
    "esol": ("esol", "Aqueous solubility (ESOL)", "log10(mol/L)", ["measured log solubility in mols per litre=logS"],
             "ESOL (Delaney 2004), 1,128 molecules"),
    "freesolv": ("freesolv", "Hydration free energy (FreeSolv)", "kcal/mol", ["expt=hydration free energy"],
                 "FreeSolv (Mobley & Guthrie 2014), 642 molecules"),
    "lipo": ("lipo", "Lipophilicity, logD at pH 7.4 (AstraZeneca/ChEMBL)", "logD", ["exp=logD"],
             "Lipophilicity (AstraZeneca deposition in ChEMBL), 4,200 molecules"),
    "bbbp": ("bbbp", "Blood-brain barrier penetration (BBBP)", None, ["p_np=P(penetrates BBB)"],
             "BBBP (Martins et al. 2012), 2,050 rows, those RDKit cannot parse left out"),
    "bace": ("bace", "BACE-1 inhibition (BACE)", None, ["Class=P(BACE-1 inhibitor)"],
             "BACE (Subramanian et al. 2016), 1,513 molecules"),
    "clintox": ("clintox", "Clinical toxicity and FDA approval (ClinTox)", None,
                ["FDA_APPROVED=P(FDA approved)", "CT_TOX=P(failed trials for toxicity)"],
                "ClinTox (Gayvert et al. 2016), 1,484 molecules"),
    "tox21": ("tox21", "Tox21: 12 toxicity endpoints", None, [],
              "Tox21 (2014 challenge), 7,831 molecules, 12 assays with missing labels masked"),
    "sider": ("sider", "SIDER: 27 side-effect groups of marketed drugs", None, [],
              "SIDER (Kuhn et al. 2016; as in MoleculeNet), 1,427 drugs, 27 system-organ classes"),
}


def seeds_of(roots: list[Path], config: str, dataset: str, init: str) -> dict[int, Path]:
    found = {}
    for root in roots:
        for run in sorted(root.glob(f"seed*/{config}/{dataset}/{init}")):
            if (run / "results.json").is_file():
                found.setdefault(int(run.parent.parent.parent.name.removeprefix("seed")), run)
    return found


def mean_of(runs: list[Path], key: str) -> float:
    return float(np.mean([json.loads((r / "results.json").read_text())[key] for r in runs]))


def _loss_text(value) -> str:
    return "in the run's metrics" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablation", type=Path, nargs="+", default=[Path("runs/ablation")])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), help="FEATURIZER-FEATURES folders to choose from")
    parser.add_argument("--data-dir", default="../shared/data/moleculenet")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="models to re-ship (none: encoders only)")
    parser.add_argument("--incumbent-valid", nargs="*", default=[], metavar="NAME=SCORE",
                        help="mean validation score of the model shipped now (its runs are gone; the value its card "
                             "was chosen by): it is kept unless a candidate beats it")
    parser.add_argument("--max-members", nargs="*", default=[], metavar="NAME=N",
                        help="ship only the N seeds with the best validation scores (to keep the package under 50 MB)")
    parser.add_argument("--min-seeds", type=int, default=2, help="seeds every candidate must have (ensemble size)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--encoder", nargs="*", default=[], metavar="FEATURIZER=ENCODER",
                        help="the encoder the --ablation folders' pretrained runs started from, per featurizer "
                             f"(default: {', '.join(f'{k}={v}' for k, v in ENCODERS.items())}; one of "
                             f"{', '.join(ENCODER_TEXT)})")
    parser.add_argument("--ship-encoders", nargs="*", default=[], choices=list(ENCODER_EXPORTS),
                        help="also export these pre-trained encoders from their runs")
    args = parser.parse_args()
    for name in args.ship_encoders:
        run, title, training, command = ENCODER_EXPORTS[name]
        summary = json.loads((Path(run) / "summary.json").read_text()) if (Path(run) / "summary.json").is_file() else {}
        cmd = [sys.executable, "-m", "molssl", "models", "export", run, "--name", name, "--title", title,
               "--description", "Pre-trained with the MolCLR objective (NT-Xent, atom masking + bond deletion at 25%) "
               "under bf16 autocast on one CPU thread; the encoder of the shipped models that start from pre-training "
               f"with its featurizer. Final validation loss {_loss_text(summary.get('final_val_loss'))}.",
               "--training-data", training, "--command", command, "--probe", "data/demo_smiles.smi"]
        print(shlex.join(cmd[2:]), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    incumbent = {key: float(value) for key, value in (item.split("=", 1) for item in args.incumbent_valid)}
    max_members = {key: int(value) for key, value in (item.split("=", 1) for item in args.max_members)}
    encoders = {**ENCODERS, **dict(item.split("=", 1) for item in args.encoder)}
    unknown = [name for name in encoders.values() if name not in ENCODER_TEXT]
    if unknown:
        parser.error(f"--encoder: no card text for {', '.join(unknown)}; add it to ENCODER_TEXT")
    for name in args.models:
        dataset, title, units, labels, training = MODELS[name]
        spec = get_spec(dataset)
        higher = spec.metric == "roc_auc"
        candidates = {(config, init): seeds_of(args.ablation, config, dataset, init)
                      for config in args.configs for init in ("random-init", "pretrained")}
        candidates = {key: runs for key, runs in candidates.items() if runs}
        common = sorted(set.intersection(*(set(runs) for runs in candidates.values())))
        if len(common) < args.min_seeds:
            print(f"{name}: skipped, candidates share seeds {common}, fewer than --min-seeds {args.min_seeds}")
            continue
        valid = {key: mean_of([runs[s] for s in common], "valid_mean") for key, runs in candidates.items()}
        if name in incumbent:
            valid[("shipped", "now")] = incumbent[name]
        chosen_key = max(valid, key=valid.get) if higher else min(valid, key=valid.get)
        if chosen_key == ("shipped", "now"):
            print(f"{name}: keeping the shipped model (validation {incumbent[name]:.3f}; candidates "
                  + ", ".join(f"{c} {i} {v:.3f}" for (c, i), v in sorted(valid.items()) if c != "shipped") + ")")
            continue
        config, init = chosen_key
        chosen_runs = candidates[chosen_key]
        if name in max_members:  # the best seeds by validation score, in seed order
            ranked = sorted(chosen_runs, key=lambda s: mean_of([chosen_runs[s]], "valid_mean"), reverse=higher)
            chosen_runs = {s: chosen_runs[s] for s in sorted(ranked[:max_members[name]])}
        chosen = [chosen_runs[s] for s in sorted(chosen_runs)]
        baselines, counts = {}, []
        for variant, label in BASELINE_TITLES.items():
            scores = [json.loads((p / "results.json").read_text())["mean"]
                      for root in args.ablation for p in sorted(root.glob(f"seed*/baselines/{dataset}/{variant}"))
                      if (p / "results.json").is_file()]
            if scores:
                baselines[label] = float(np.mean(scores))
                counts.append(f"{label} {len(scores)}")
        shipped_card = Path(__file__).resolve().parents[1] / "molssl" / "models" / name / "card.json"
        if not baselines and shipped_card.is_file():  # same rows and split: the shipped card's baseline scores
            card = json.loads(shipped_card.read_text())
            baselines = card.get("baselines", {})
            counts = [f"as on the card of {card.get('date')}: " + card.get("notes", "").split("(", 1)[-1].split(")")[0]]
        seeds = sorted(chosen_runs)
        featurizer, features = config.split("-", 1)
        encoder = f"from {ENCODER_TEXT[encoders[featurizer]]}" if init == "pretrained" else "from random initialization"
        others = ", ".join(f"{c} {i} {v:.3f}" for (c, i), v in sorted(valid.items()) if (c, i) != chosen_key)
        description = (f"GIN 5x300 on {FEATURES_TEXT[featurizer]} with all RDKit 2D descriptors (217) concatenated "
                       f"before the head; fine-tuned {encoder}, up to 100 epochs with patience 10"
                       f"{', balanced class weights' if higher else ''}. "
                       + (f"Ensemble of {len(chosen)} (seeds {', '.join(map(str, seeds))}). " if len(chosen) > 1 else
                          f"One model (seed {seeds[0]}, the better validation score of seeds "
                          f"{', '.join(map(str, sorted(candidates[chosen_key])))}; one member keeps the package "
                          "under 50 MB). ")
                       + f"Chosen by mean validation score over seeds "
                       f"{', '.join(map(str, common))} ({valid[chosen_key]:.3f}; the others: {others}).")
        root = chosen[0].parent.parent.parent.parent
        command = (f"python benchmarks/quality_ablation.py --out {root} --datasets {dataset} --seeds "
                   f"{' '.join(map(str, seeds))} --configs {featurizer}:{features} --init {init}"
                   + (f" --encoder {featurizer}={encoders[featurizer]}" if init == "pretrained" else "")
                   + f" --data-dir {args.data_dir}")
        limitations = (f"Trained on {training.split(',')[0]} only; scaffold split, so test scaffolds are new but the "
                       "chemistry is that data set's. Not tested on other assays, conditions or chemical series; "
                       "check the applicability-domain columns. Scored on one scaffold split.")
        cmd = [sys.executable, "-m", "molssl", "models", "export", *map(str, chosen), "--name", name, "--title", title,
               "--description", description, "--training-data",
               f"{training}. MoleculeNet file (DeepChem copy, checksum in molssl.chem.data.datasets); DeepChem/MolCLR "
               "scaffold split 80/10/10 (no chirality)", "--command", command, "--data-dir", args.data_dir,
               "--limitations", limitations, "--notes", "Baselines on the card: mean test score over their seeds ("
               + ", ".join(counts) + "); chemprop v2.3.1 with its defaults (50 epochs); RF: 500 trees. "
               "All numbers: benchmarks/results/quality_ablation.md."]
        for label in labels:
            cmd += ["--label", label]
        if units:
            cmd += ["--units", units]
        for label, value in baselines.items():
            cmd += ["--baseline", f"{label}={value}"]  # results.json holds ROC-AUC as a fraction
        print(shlex.join(cmd[2:]), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
