"""Re-ship the property models from the quality ablation's best configuration (issue 16), with the baselines
measured on the same split written on each card.

For every data set: the molclr-rdkit2d runs of every seed found under ``--ablation``; of random init and the
pre-trained encoder, the one with the better mean *validation* score over the seeds both have (the test
split is not looked at to choose); the baselines' mean test scores over their seeds; then ``molssl models
export``. Prints each command before running it (``--dry-run``: only prints).

    python benchmarks/ship_zoo.py --ablation runs/ablation --data-dir ../shared/data/moleculenet
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

CONFIG = "molclr-rdkit2d"
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
}


def seeds_of(root: Path, dataset: str, init: str) -> dict[int, Path]:
    found = {}
    for run in sorted(root.glob(f"seed*/{CONFIG}/{dataset}/{init}")):
        if (run / "results.json").is_file():
            found[int(run.parent.parent.parent.name.removeprefix("seed"))] = run
    return found


def mean_of(runs: list[Path], key: str) -> float:
    return float(np.mean([json.loads((r / "results.json").read_text())[key] for r in runs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablation", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--data-dir", default="../shared/data/moleculenet")
    parser.add_argument("--encoder", default="runs/pretrain/molclr-mix", help="the pre-trained encoder's run")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--ship-encoder", action="store_true", help="also export --encoder as molclr-gin-mix")
    args = parser.parse_args()
    if args.ship_encoder:
        summary = json.loads((Path(args.encoder) / "summary.json").read_text()) if (Path(args.encoder) / "summary.json").is_file() else {}
        cmd = [sys.executable, "-m", "molssl", "models", "export", args.encoder, "--name", "molclr-gin-mix", "--title",
               "MolCLR GIN (5 x 300), ChEMBL + MOSES 472k, 4,000 steps of 512",
               "--description", "Pre-trained with the MolCLR objective (NT-Xent, atom masking + bond deletion at 25%) "
               "under bf16 autocast on one CPU thread; the encoder of the re-shipped models that start from "
               f"pre-training. Final validation loss {summary.get('final_val_loss', 'see the run')}.",
               "--training-data", "236k ChEMBL SMILES (chembl_subset_union.smi.gz) + 236k random MOSES training "
               "SMILES (seed 0), from ../shared/data/pretrain/: 471,782 lines, sha256 b9bb533c7f129b01...; 5% held out "
               "for the validation loss",
               "--command", "molssl pretrain --smiles chembl_moses_mix.smi.gz --out runs/pretrain/molclr-mix "
               "--epochs 10 --max-steps 4000 --precision auto --checkpoint-every 100 --skip-invalid --workers 1",
               "--probe", "data/demo_smiles.smi"]
        print(shlex.join(cmd[2:]), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    for name in args.models:
        dataset, title, units, labels, training = MODELS[name]
        spec = get_spec(dataset)
        higher = spec.metric == "roc_auc"
        runs = {init: seeds_of(args.ablation, dataset, init) for init in ("random-init", "pretrained")}
        common = sorted(set(runs["random-init"]) & set(runs["pretrained"]))
        valid = {init: mean_of([runs[init][s] for s in common], "valid_mean") for init in runs}
        init = max(valid, key=valid.get) if higher else min(valid, key=valid.get)
        chosen = [runs[init][s] for s in sorted(runs[init])]
        baselines, counts = {}, []
        for variant, label in BASELINE_TITLES.items():
            scores = [json.loads((p / "results.json").read_text())["mean"]
                      for p in sorted(args.ablation.glob(f"seed*/baselines/{dataset}/{variant}"))
                      if (p / "results.json").is_file()]
            if scores:
                baselines[label] = float(np.mean(scores))
                counts.append(f"{label} {len(scores)}")
        seeds = sorted(runs[init])
        encoder = ("from the molclr-gin-mix encoder (ChEMBL+MOSES, 4,000 steps)" if init == "pretrained"
                   else "from random initialization")
        description = (f"GIN 5x300 on MolCLR atom/bond features with all RDKit 2D descriptors (217) concatenated "
                       f"before the head; fine-tuned {encoder}, up to 100 epochs with patience 10"
                       f"{', balanced class weights' if higher else ''}. Ensemble of {len(chosen)} (seeds "
                       f"{', '.join(map(str, seeds))}). Chosen over the other initialization by mean validation "
                       f"score ({valid[init]:.3f} vs {valid['pretrained' if init == 'random-init' else 'random-init']:.3f}).")
        command = (f"python benchmarks/quality_ablation.py --out runs/ablation --seeds {' '.join(map(str, seeds))} "
                   f"--configs molclr:rdkit2d --init random-init pretrained --encoder molclr={args.encoder} "
                   f"--data-dir {args.data_dir}")
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
