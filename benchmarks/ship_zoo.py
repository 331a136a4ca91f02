"""Re-ship the property models from the quality ablation's best configuration (issue 16), with the baselines
measured on the same split written on each card.

For every data set, each candidate is one configuration's runs under one ``--ablation`` folder
(``<folder>/seed<N>/<config>/<dataset>/<random-init|pretrained>``; a pre-trained run's encoder is what its
``config.json`` records). Each candidate offers the ensemble of its ``--members`` seeds with the best validation
scores; the shipped model competes with its own ensemble. The one chosen is the ensemble with the best
*validation* score as it would ship: per task the mean of its members' validation predictions (the calibration
record every model file keeps), scored with the set's metric. The test split is not looked at to choose. A
candidate replaces the shipped model only if its lead holds on resampled validation rows (``--lead-confidence``,
since 2026-12-06: better in 90% of paired bootstrap resamples), because on validation splits of ~150 molecules a
lead of a few thousandths is noise; for the best of m candidates the bar is 1 - (1 - confidence) / m (Bonferroni,
since 2026-12-07: ``required_lead``). With ``--cv`` (since 2026-12-06, twenty-third session) the candidates are
finetune_sweep.py settings ranked instead by their cross-validation runs (``--folds``: every training + validation
molecule validated once), the shipped model by its own setting's runs (a model shipped from quality_ablation.py
has the sweep's ``molclr`` setting, since 2026-12-06's twenty-fourth session), and the lead must hold on paired resamples of
the (seed, fold) runs; what ships is then the chosen setting's fold models (the first ``--members`` folds of the seed
whose folds validate best, leaving out a fold that is one scaffold set: its model never saw that chemotype), each
trained on the other folds, which include the rare scaffolds DeepChem's splitter puts in validation
(quality_ablation.md, twenty-third session). Then the baselines' mean test scores over their seeds and ``molssl models export``.
Prints each command before running it (``--dry-run``: only prints the choice and the command).

    python benchmarks/ship_zoo.py --ablation runs/quantile runs/rich-gpu runs/rich-chembl-amd \
        --configs rich-rdkit2d rich-rdkit2d-quantile --models lipo sider --members 2
    python benchmarks/ship_zoo.py --cv runs/cv-physchem-rich --configs rich-rdkit2d-quantile --models bace --members 2

``--incumbent-cv NAME=SCORE`` (with ``--cv``, since 2026-12-07's thirty-sixth session) compares a shipped fold
ensemble whose setting's runs are gone with the cross-validation score its card records; that comparison is unpaired,
so the candidate must beat the score by ``--cv-margin`` (0.01) instead of leading on resampled runs.
``--re-export`` (with ``--cv``, since 2026-12-06's twenty-sixth session) exports the chosen fold ensemble even when it is
the shipped one: the same runs and weights, with what the export writes beside them made anew (that session: fold
members calibrated on the scaffold split's validation molecules only, zoo_export.fold_reliability).
``--repack NAME ...`` writes shipped models again in the current file form (gzip-compressed since 2026-12-04),
their content unchanged. Until 2026-12-04 the rule compared the mean of the candidates' per-seed validation
scores over the seeds they shared, and a model whose runs were gone competed with the value its card was chosen
by (``--incumbent-valid``); benchmarks/results/model_zoo.md keeps those commands.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from molssl.chem.data.datasets import get_spec
from molssl.chem.data.splits import fold_set_sizes
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.serve import zoo
from molssl.chem.serve.loading import load_zoo_weights, run_member_files
from molssl.chem.serve.zoo_export import repack
from molssl.chem.tasks.finetune_config import FinetuneConfig
from molssl.chem.tasks.metrics import score
from molssl.core.checkpoint import load_checkpoint

CONFIGS = ("molclr-rdkit2d", "molclr-rdkit2d-quantile", "rich-rdkit2d", "rich-rdkit2d-quantile")
FEATURES_TEXT = {  # featurizer: what the card says about the atom and bond fields
    "molclr": "MolCLR atom/bond features (element, chirality; bond type, direction)",
    "rich": "rich atom/bond features (MolCLR's plus formal charge, H count, degree, hybridization, aromaticity, "
            "ring membership, isotope/radical flags; bond conjugation, ring, stereo)",
}
ENCODER_TEXT = {  # encoder (shipped name or run, as a run's config.json records it): how cards name it
    "molclr-gin-mix": "the molclr-gin-mix encoder (ChEMBL+MOSES, 4,000 steps)",
    "runs/pretrain/rich-chembl": "the rich-featurizer encoder pre-trained on ChEMBL (236k, 2,000 steps of 512; "
                                 "shipped as rich-gin-chembl)",
    "rich-gin-chembl": "the rich-gin-chembl encoder (rich featurizer, ChEMBL 236k, 2,000 steps of 512; shipped until "
                       "2026-12-06, when rich-gin-physchem replaced it; its int8 weights are in git at d1778b9^)",
    "rich-gin-physchem": "the shipped rich-gin-physchem encoder (rich featurizer, pre-trained to predict RDKit's 2D "
                         "descriptors, ChEMBL 100k, 2,000 steps of 512)",
    "runs/pretrain/physchem-rich": "the rich-featurizer encoder pre-trained to predict RDKit's 2D descriptors on ChEMBL "
                                   "(100k, 2,000 steps of 512; shipped as rich-gin-physchem)",
    "runs/pretrain/physchem-full": "a rich-featurizer encoder pre-trained to predict RDKit's 2D descriptors on the "
                                   "whole ChEMBL file (236k, 6,000 steps of 512 = 3.07M molecules seen; "
                                   "runs/pretrain/physchem-full; not shipped on its own: its frozen fingerprints are worse "
                                   "than rich-gin-physchem's on the regression sets)",
    "runs/pretrain/physchem-ecfp": "a rich-featurizer encoder pre-trained to predict RDKit's 2D descriptors and the "
                                   "2048 ECFP4 bits on ChEMBL (100k, 2,000 steps of 512; runs/pretrain/physchem-ecfp, "
                                   "not shipped on its own: fine-tuned, no better than rich-gin-physchem)",
    "runs/gpu-rich": "a rich-featurizer encoder pre-trained on a lent H200 GPU (ChEMBL + MOSES 472k, 4,500 steps of "
                     "512 = 2.30M molecules seen; runs/gpu-rich, not shipped on its own)",
    "runs/pretrain/rich-imolclr-chembl-moses": "a rich-featurizer encoder pre-trained with the iMolCLR objective on "
                                               "ChEMBL + 500k MOSES (736k molecules, 3,000 steps of 512; "
                                               "runs/pretrain/rich-imolclr-chembl-moses, not shipped on its own)",
    **{f"runs/pretrain/{run}": f"a rich-featurizer encoder pre-trained {how} (runs/pretrain/{run}, not shipped on its own; "
                               f"docs/{'graphmae' if run.startswith('graphmae') else 'attribute_masking'}.md)"
       for run, how in {
           "attrmask-33": "by attribute masking (25% of atoms) on ChEMBL (100k, 2,000 steps of 512)",
           "attrmask-full-lr1e-3": "by attribute masking (25% of atoms) on the whole ChEMBL file (236k, 6,000 steps of 512)",
           "attrmask-full-lr2e-3": "by attribute masking (25% of atoms, lr 2e-3) on the whole ChEMBL file (236k, 6,000 "
                                   "steps of 512)",
           "attrmask-m15": "by attribute masking (15% of atoms) on the whole ChEMBL file (236k, 6,000 steps of 512)",
           "attrmask-full-12k": "by attribute masking (25% of atoms) on the whole ChEMBL file (236k, 12,000 steps of 512)",
           "attrmask-mix-12k": "by attribute masking (25% of atoms) on ChEMBL + 236k MOSES (472k, 12,000 steps of 512)",
           "physchem-attrmask-33": "to predict RDKit's 2D descriptors and masked atoms' attributes at once on ChEMBL "
                                   "(100k, 2,000 steps of 512)",
           "graphmae-full": "with GraphMAE (25% of atoms) on the whole ChEMBL file (236k, 6,000 steps of 512)",
           "s2-attrmask-then-molclr": "by attribute masking (the attrmask-full-lr1e-3 run) and then 3,000 MolCLR steps on "
                                      "the whole ChEMBL file",
       }.items()},
}
MOLCLR_OBJECTIVE = ("Pre-trained with the MolCLR objective (NT-Xent, atom masking + bond deletion at 25%) under bf16 "
                    "autocast on one CPU thread; the encoder of the shipped models that start from pre-training with its "
                    "featurizer.")
ENCODER_EXPORTS = {  # shipped encoder: (run, title, training data, commands, description)
    "molclr-gin-mix": ("runs/pretrain/molclr-mix", "MolCLR GIN (5 x 300), ChEMBL + MOSES 472k, 4,000 steps of 512",
                       "236k ChEMBL SMILES (chembl_subset_union.smi.gz) + 236k random MOSES training SMILES (seed 0), "
                       "from ../shared/data/pretrain/: 471,782 lines, sha256 b9bb533c7f129b01...; 5% held out for the "
                       "validation loss",
                       ["molssl pretrain --smiles chembl_moses_mix.smi.gz --out runs/pretrain/molclr-mix --epochs 10 "
                        "--max-steps 4000 --precision auto --checkpoint-every 100 --skip-invalid --workers 1"],
                       MOLCLR_OBJECTIVE),
    # rich-gin-chembl (MolCLR objective, runs/pretrain/rich-chembl, 2026-12-03) was exported from here until it was
    # replaced by rich-gin-physchem on 2026-12-05 (model_zoo.md)
    "rich-gin-physchem": ("runs/pretrain/physchem-rich", "GIN (5 x 300) on the rich featurizer, pre-trained to predict "
                          "RDKit's 2D descriptors, ChEMBL 100k, 2,000 steps of 512",
                          "100,000 ChEMBL SMILES: a seeded random subset (Python random.Random(0) shuffle, first "
                          "100,000) of ../shared/data/pretrain/chembl_subset_union.smi.gz (235,891 molecules); 5% held "
                          "out for the validation loss",
                          ['python -c "import gzip, random; lines = [l for l in gzip.open(\\"../shared/data/pretrain/'
                           'chembl_subset_union.smi.gz\\", \\"rt\\").read().split(\\"\\\\n\\") if l.strip()]; '
                           'random.Random(0).shuffle(lines); open(\\"runs/chembl100k.smi\\", \\"w\\").write(\\"'
                           '\\\\n\\".join(lines[:100000]) + \\"\\\\n\\")"',
                           "molssl pretrain --smiles runs/chembl100k.smi --out runs/pretrain/physchem-rich --method "
                           "physchem --featurizer rich --epochs 11 --max-steps 2000 --precision auto --checkpoint-every "
                           "100 --skip-invalid --workers 1"],
                          "Pre-trained with descriptor prediction (molssl pretrain --method physchem: the 217 RDKit 2D "
                          "descriptors, median/IQR-standardized and clipped, regressed from the graph representation; "
                          "MolBERT's PhysChemPred task) under bf16 autocast on one CPU thread. The default encoder of "
                          "molssl.fingerprint() and of fine-tuning with the rich featurizer (benchmarks/results/"
                          "frozen_probe.md, quality_ablation.md)."),
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


# MolCLR's fine-tuning settings (FinetuneConfig's defaults), which every run uses unless a sweep changed them
MOLCLR_FINETUNING = {key: getattr(FinetuneConfig, key) for key in ("dropout", "lr_head", "lr_encoder", "weight_decay")}
MOLCLR_POOL = EncoderConfig.pool  # the readout, a sweep setting for random init (a pre-trained encoder brings its own)
MOLCLR_DEFAULTS = {**MOLCLR_FINETUNING, "pool": MOLCLR_POOL}
SETTING_TEXT = {"pool": "{} pooling", "dropout": "dropout {}", "lr_head": "head learning rate {:g}",
                "lr_encoder": "encoder learning rate {:g}", "weight_decay": "weight decay {:g}"}


@cache
def sweep_script():
    """benchmarks/finetune_sweep.py as a module: its settings by name (its folders are ``<out>/<setting>/seed<N>/...``)
    and its reader of cross-validation runs."""
    spec = importlib.util.spec_from_file_location("finetune_sweep", Path(__file__).with_name("finetune_sweep.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sweep_settings() -> dict[str, dict]:
    return sweep_script().SETTINGS


@dataclass
class Candidate:
    """One configuration's runs under one ablation folder: ``<root>/seed<N>/<config>/<dataset>/<init>``."""

    root: Path
    config: str  # FEATURIZER-FEATURES[-SCALING], as quality_ablation.py names its folders
    init: str  # random-init or pretrained
    runs: dict[int, Path]

    @property
    def featurizer(self) -> str:
        return self.config.split("-")[0]

    @property
    def features(self) -> str:
        return self.config.split("-")[1]

    @property
    def scaling(self) -> str:
        parts = self.config.split("-")
        return parts[2] if len(parts) > 2 else "standard"

    @cached_property
    def run_config(self) -> dict:
        return json.loads((next(iter(self.runs.values())) / "config.json").read_text())

    @property
    def encoder(self) -> Optional[str]:
        """What its pre-trained runs started from, as their config.json records it (None: random init)."""
        return self.run_config["pretrained"] if self.init == "pretrained" else None

    @property
    def tuned(self) -> dict:
        """The fine-tuning settings its runs changed from MolCLR's, as their config.json records them."""
        tuned = {key: self.run_config[key] for key, default in MOLCLR_FINETUNING.items()
                 if key in self.run_config and not math.isclose(self.run_config[key], default)}
        pool = (self.run_config.get("encoder") or {}).get("pool", MOLCLR_POOL)
        return {**tuned, "pool": pool} if self.init == "random-init" and pool != MOLCLR_POOL else tuned

    @property
    def sweep_setting(self) -> Optional[str]:
        """The finetune_sweep.py setting whose folder this is (None: a quality_ablation.py folder)."""
        setting = sweep_settings().get(self.root.name)
        if setting is None or setting != self.tuned:
            return None
        return self.root.name

    def label(self) -> str:
        """Unique among the candidates: a sweep setting's folder is named after the setting, so two sweeps (from
        two encoders, say) would share it; their output folder tells them apart."""
        root = f"{self.root.parent.name}/{self.root.name}" if self.root.name in sweep_settings() else self.root.name
        return f"{root}/{self.config}/{self.init}"


def candidates_of(roots: list[Path], configs: list[str], dataset: str) -> list[Candidate]:
    found = []
    for root in roots:
        for config in configs:
            for init in ("random-init", "pretrained"):
                runs = {int(run.parent.parent.parent.name.removeprefix("seed")): run
                        for run in sorted(root.glob(f"seed*/{config}/{dataset}/{init}")) if (run / "results.json").is_file()}
                if runs:
                    found.append(Candidate(root, config, init, runs))
    return found


def valid_mean(run: Path) -> float:
    return float(json.loads((run / "results.json").read_text())["valid_mean"])


def validation_table(metas: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ensemble as it would ship, on the validation split: its rows, the labels and, per task, the mean of its
    members' validation predictions (the calibration record every model file keeps)."""
    tasks: dict[str, dict] = {}
    for meta in metas:
        record = meta["calibration"]
        for j, task in enumerate(meta["tasks"]):
            entry = tasks.setdefault(task, {"rows": record["rows"], "y": record["y_true"][:, j], "p": []})
            if not np.array_equal(entry["rows"], record["rows"]):
                raise SystemExit(f"members of one ensemble were validated on different rows ({task})")
            entry["p"].append(record["y_pred"][:, j])
    rows = next(iter(tasks.values()))["rows"]
    y = np.stack([t["y"] for t in tasks.values()], axis=1)
    return rows, y, np.stack([np.mean(t["p"], axis=0) for t in tasks.values()], axis=1)


def ensemble_valid_score(metas: list[dict], metric: str) -> float:
    """The validation score of an ensemble as it would ship, scored with the data set's metric."""
    _, y, p = validation_table(metas)
    return float(score(metric, y, p))


def required_lead(confidence: float, challengers: int) -> float:
    """The share of resamples in which the best of ``challengers`` candidates must lead the shipped model:
    ``confidence`` for one, Bonferroni-corrected for more, ``1 - (1 - confidence) / challengers`` (since 2026-12-07's
    thirty-seventh session). The best of many candidates leads by chance more often than any one of them: the
    thirty-sixth session re-shipped ClinTox on a 98% lead of the best of 12 candidates on 148 validation molecules,
    and its test score fell from 88.2 to 87.6 (model_zoo.md); at 90% and 12 candidates the bar is 99.2%."""
    return 1 - (1 - confidence) / max(challengers, 1)


def bootstrap_lead(candidate: list[dict], shipped: list[dict], metric: str, higher: bool,
                   resamples: int = 2000, seed: int = 0) -> float:
    """The fraction of resampled validation splits (rows drawn with replacement, the same rows for both: paired) on
    which the candidate scores better than the shipped ensemble. Scaffold validation splits are small (BACE 151,
    ClinTox 148 molecules), and a lead of a few thousandths there is noise: the twenty-second session's sweeps chose
    the lowest-test setting four times out of five on such leads (quality_ablation.md)."""
    rows, y_c, p_c = validation_table(candidate)
    shipped_rows, y_s, p_s = validation_table(shipped)
    if not np.array_equal(rows, shipped_rows):
        raise SystemExit("the candidate and the shipped model were validated on different rows")
    rng = np.random.default_rng(seed)
    wins = scored = 0
    for _ in range(resamples):
        pick = rng.integers(0, len(rows), len(rows))
        try:
            ours, theirs = score(metric, y_c[pick], p_c[pick]), score(metric, y_s[pick], p_s[pick])
        except ValueError:  # a resample with one class in every task: no ROC-AUC
            continue
        scored += 1
        wins += ours > theirs if higher else ours < theirs
    return wins / scored if scored else 0.0


@dataclass
class FoldCandidate(Candidate):
    """One sweep setting's cross-validation runs (finetune_sweep.py --folds): ``runs`` holds one run per seed (for
    its settings), ``folds`` every (seed, fold) run, ``<root>/seed<N>/fold<F>/<config>/<dataset>/<init>``."""

    folds: dict[tuple[int, int], Path] = field(default_factory=dict)


def cv_candidates(cv_roots: list[Path], configs: list[str], dataset: str) -> list[FoldCandidate]:
    """Every sweep setting with cross-validation runs under ``cv_roots`` (``<root>/<setting>/...``)."""
    found = []
    for root in cv_roots:
        for config in configs:
            for init in ("random-init", "pretrained"):
                for setting, folds in sorted(sweep_script().fold_runs(root, dataset, config, init).items()):
                    if setting in sweep_settings():
                        found.append(FoldCandidate(root / setting, config, init,
                                                   {seed: run for (seed, _), run in folds.items()}, folds))
    return found


# options that say where and how often a run was made, not what it is
WHERE_OPTIONS = {"out", "seeds", "folds", "fold-acyclic", "datasets", "data-dir"}
ABLATION_OPTIONS = WHERE_OPTIONS | {"configs", "init", "encoder", "descriptor-scaling"}
SWEEP_OPTIONS = WHERE_OPTIONS | {"settings", "featurizer", "features", "init", "encoder", "descriptor-scaling"}


def _options(command: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    current = None
    for token in shlex.split(command):
        if token.startswith("--"):
            current = token[2:]
            options[current] = []
        elif current is not None:
            options[current].append(token)
    return options


def setting_of(command: str) -> Optional[tuple]:
    """What a card's command fine-tunes, read from either script: (sweep setting, featurizer, features, descriptor
    scaling, init, encoder, data dir). A quality_ablation.py command is the sweep's ``molclr`` setting (MolCLR's
    fine-tuning settings, the harness's defaults). None: neither script, several settings or configurations, or an
    option that changes something else (--epochs, say), so no cross-validation run is that setting."""
    options = _options(command)
    if "quality_ablation.py" in command:
        configs = options.get("configs", [])
        if set(options) - ABLATION_OPTIONS or len(configs) != 1 or ":" not in configs[0]:
            return None
        featurizer, features = configs[0].split(":", 1)
        encoder = (options.get("encoder") or [None])[0]
        encoder = encoder.split("=", 1)[1] if encoder and "=" in encoder else encoder  # --encoder rich=PATH
        options = {**options, "settings": ["molclr"], "featurizer": [featurizer], "features": [features],
                   "encoder": [encoder] if encoder else [],
                   "descriptor-scaling": options.get("descriptor-scaling") or ["standard"]}
    elif "finetune_sweep.py" not in command or set(options) - SWEEP_OPTIONS:
        return None
    if len(options.get("settings", [])) != 1:
        return None
    scaling = (options.get("descriptor-scaling") or ["quantile"])[0]  # finetune_sweep.py's default
    features = (options.get("features") or [""])[0]
    return (options["settings"][0], (options.get("featurizer") or [""])[0], features,
            scaling if "rdkit2d" in features else "standard",  # nothing to scale without descriptors
            (options.get("init") or [""])[0], (options.get("encoder") or [None])[0],
            (options.get("data-dir") or [None])[0])


def same_configuration(command: str, other: str) -> bool:
    """Whether two commands (finetune_sweep.py or quality_ablation.py) fine-tune the same setting, configuration and
    encoder on the same data (they may differ in --out, --seeds, --folds and --datasets): how a shipped model's
    setting is found among cross-validation runs."""
    setting = setting_of(command)
    return setting is not None and setting == setting_of(other)


def fold_members(runs: dict[tuple[int, int], Path], k: int, higher: bool,
                 one_set: Callable[[Path], bool] = lambda run: False) -> tuple[int, list[int]]:
    """(seed, folds) of a fold ensemble: the first ``k`` folds of the seed whose folds validate best on average
    (among the seeds with every fold), leaving out folds for which ``one_set`` is true (:func:`one_scaffold_set`).
    Each fold model has trained on the other folds, so any two of them together have seen every training +
    validation molecule."""
    by_seed: dict[int, dict[int, Path]] = {}
    for (seed, fold), run in runs.items():
        by_seed.setdefault(seed, {})[fold] = run
    most = max(len(folds) for folds in by_seed.values())
    complete = {seed: folds for seed, folds in sorted(by_seed.items()) if len(folds) == most}
    best = (max if higher else min)(complete, key=lambda seed: np.mean([valid_mean(r) for r in complete[seed].values()]))
    usable = [fold for fold in sorted(complete[best]) if not one_set(complete[best][fold])]
    if len(usable) < k:
        raise SystemExit(f"seed {best} has {len(usable)} folds that are not one scaffold set; {k} members asked for")
    return best, usable[:k]


def one_scaffold_set(run: Path) -> bool:
    """Whether a fold model's validation fold is a single scaffold set. ``GroupKFold`` puts a set larger than a
    fold's share alone into fold 0 (benzene's on ESOL, FreeSolv and Tox21 with spread folds): that model never
    trained on the data set's largest chemotype, so it is not made an ensemble member (twenty-seventh session)."""
    from rdkit import Chem

    from molssl.chem.data.descriptors import scaffold_key

    acyclic = json.loads((run / "config.json").read_text()).get("fold_acyclic", "together")
    keys = [scaffold_key(Chem.MolFromSmiles(smiles))[0] for smiles in member_metas([run])[0]["calibration"]["smiles"]]
    return len(fold_set_sizes(keys, acyclic)) == 1


def cv_lead(candidate: list[float], shipped: list[float], higher: bool, resamples: int = 2000, seed: int = 0) -> float:
    """The fraction of paired bootstrap resamples of the (seed, fold) runs in which the candidate's mean
    cross-validation score beats the shipped setting's."""
    differences = np.subtract(candidate, shipped) * (1 if higher else -1)
    picks = np.random.default_rng(seed).integers(0, len(differences), (resamples, len(differences)))
    return float(np.mean(differences[picks].mean(axis=1) > 0))


def best_seeds(candidate: Candidate, k: int, higher: bool) -> list[int]:
    ranked = sorted(candidate.runs, key=lambda s: valid_mean(candidate.runs[s]), reverse=higher)
    return sorted(ranked[:k])


def run_command(candidate: Candidate, dataset: str, seeds: list[int], data_dir: str, cv: Optional[Path] = None) -> str:
    """The command that makes these runs again (the card's "commands"; also how a shipped model is recognized);
    ``cv``: one of the candidate's cross-validation runs, whose folds these seeds' runs are instead."""
    if cv is not None:  # <cv root>/<setting>/seed<N>/fold<F>/<config>/<dataset>/<init>
        config = json.loads((cv / "config.json").read_text())
        acyclic = config.get("fold_acyclic", "together")
        out, seeds_and_folds = cv.parents[5], (f"{' '.join(map(str, seeds))} --folds {config['folds']}"
                                               + ("" if acyclic == "together" else f" --fold-acyclic {acyclic}"))
    else:
        out, seeds_and_folds = candidate.root.parent, " ".join(map(str, seeds))
    if candidate.sweep_setting:
        return (f"python benchmarks/finetune_sweep.py --out {out} --datasets {dataset} --seeds "
                f"{seeds_and_folds} --settings {candidate.sweep_setting} --featurizer {candidate.featurizer} "
                f"--features {candidate.features} --descriptor-scaling {candidate.scaling} --init {candidate.init}"
                + (f" --encoder {candidate.encoder}" if candidate.encoder else "") + f" --data-dir {data_dir}")
    if candidate.tuned:
        raise SystemExit(f"{candidate.label()}: its runs changed MolCLR's fine-tuning settings ({candidate.tuned}) but "
                         "the folder is not a finetune_sweep.py setting; no command would make them again")
    return (f"python benchmarks/quality_ablation.py --out {candidate.root} --datasets {dataset} --seeds "
            f"{' '.join(map(str, seeds))} --configs {candidate.featurizer}:{candidate.features} --init {candidate.init}"
            + (f" --encoder {candidate.featurizer}={candidate.encoder}" if candidate.encoder else "")
            + (f" --descriptor-scaling {candidate.scaling}" if candidate.scaling != "standard" else "")
            + f" --data-dir {data_dir}")


def member_metas(runs: list[Path]) -> list[dict]:
    return [load_checkpoint(f) for run in runs for f in run_member_files(run)]


def _loss_text(value) -> str:
    return "in the run's metrics" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablation", type=Path, nargs="+", default=[Path("runs/ablation")])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS),
                        help="FEATURIZER-FEATURES[-SCALING] folders to choose from")
    parser.add_argument("--data-dir", default="../shared/data/moleculenet")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="models to re-ship (none: encoders only)")
    parser.add_argument("--members", type=int, default=2, help="ensemble size: each candidate's best seeds by validation")
    parser.add_argument("--max-members", nargs="*", default=[], metavar="NAME=N",
                        help="another ensemble size for some models (the package must stay under 50 MB)")
    parser.add_argument("--lead-confidence", type=float, default=0.9,
                        help="replace a shipped model only if the chosen candidate beats it in this fraction of paired "
                             "bootstrap resamples of the validation rows, for the best of m candidates 1 - (1 - this) / m "
                             "(0: on the validation score alone)")
    parser.add_argument("--cv", type=Path, nargs="*", default=[],
                        help="choose among sweep settings by their cross-validation runs under these folders "
                             "(finetune_sweep.py --folds) instead of the validation split, and ship the chosen "
                             "setting's first --members fold models; the shipped model's setting needs runs there too")
    parser.add_argument("--incumbent-cv", nargs="*", default=[], metavar="NAME=SCORE",
                        help="with --cv, for a shipped fold ensemble whose setting's runs are gone: the mean "
                             "cross-validation score its card records; the best candidate replaces it only if it beats "
                             "that score by --cv-margin (unpaired, so a margin instead of --lead-confidence)")
    parser.add_argument("--cv-margin", type=float, default=0.01,
                        help="with --incumbent-cv: how much better than the recorded score a candidate must be")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--re-export", action="store_true",
                        help="with --cv: export the chosen fold ensemble even when it is the shipped one (same weights; "
                             "what the export writes beside them, e.g. calibration and card, made anew)")
    parser.add_argument("--ship-encoders", nargs="*", default=[], choices=list(ENCODER_EXPORTS),
                        help="also export these pre-trained encoders from their runs")
    parser.add_argument("--repack", nargs="*", default=[], metavar="NAME",
                        help="write these shipped models again in the current file form (gzip), content unchanged")
    args = parser.parse_args()
    if args.re_export and not args.cv:
        parser.error("--re-export exports a shipped fold ensemble again: give its cross-validation runs with --cv")
    for name in args.repack:
        before = zoo.get_card(name).size_bytes
        after = before if args.dry_run else repack(zoo.model_folder(name)).size_bytes
        print(f"{name}: {before:,} -> {after:,} bytes{' (dry run: not re-written)' if args.dry_run else ''}", flush=True)
    for name in args.ship_encoders:
        run, title, training, commands, description = ENCODER_EXPORTS[name]
        summary = json.loads((Path(run) / "summary.json").read_text()) if (Path(run) / "summary.json").is_file() else {}
        cmd = [sys.executable, "-m", "molssl", "models", "export", run, "--name", name, "--title", title,
               "--description", f"{description} Final validation loss {_loss_text(summary.get('final_val_loss'))}.",
               "--training-data", training, *[part for c in commands for part in ("--command", c)],
               "--probe", "data/demo_smiles.smi"]
        print(shlex.join(cmd[2:]), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    sizes = {key: int(value) for key, value in (item.split("=", 1) for item in args.max_members)}
    recorded = {}
    for item in args.incumbent_cv:
        name, _, value = item.partition("=")
        try:
            recorded[name] = float(value)
        except ValueError:
            parser.error(f"--incumbent-cv takes NAME=SCORE (a model and its card's cross-validation score), got {item!r}")
    for name in args.models:
        ship(name, args.ablation, args.configs, sizes.get(name, args.members), args.data_dir, args.dry_run,
             args.lead_confidence, args.cv, args.re_export, recorded.get(name), args.cv_margin)


def ship(name: str, roots: list[Path], configs: list[str], k: int, data_dir: str, dry_run: bool,
         lead_confidence: float = 0.9, cv_roots: Optional[list[Path]] = None, again: bool = False,
         incumbent_cv: Optional[float] = None, cv_margin: float = 0.01) -> None:
    """Choose ``name``'s ensemble by validation score (the shipped one competes too), or its setting by
    cross-validation score with ``cv_roots`` (the fold models of that setting then ship), and export it
    (``again``: also when that is the shipped fold ensemble). ``incumbent_cv``: the shipped setting's recorded
    cross-validation score, where its runs are gone; a candidate must beat it by ``cv_margin``."""
    dataset, title, units, labels, training = MODELS[name]
    spec = get_spec(dataset)
    higher = spec.metric == "roc_auc"
    shipped_folder = zoo.MODELS_DIR / name
    shipped_commands = zoo.read_card(shipped_folder).commands if (shipped_folder / zoo.CARD_FILE).is_file() else []
    candidates = (cv_candidates(cv_roots, configs, dataset) if cv_roots else
                  [c for c in candidates_of(roots, configs, dataset) if len(c.runs) >= k])
    unknown = {c.encoder for c in candidates if c.encoder and c.encoder not in ENCODER_TEXT}
    if unknown:
        raise SystemExit(f"{name}: no card text for the encoder(s) {', '.join(sorted(unknown))}; add to ENCODER_TEXT")
    if not candidates:
        print(f"{name}: skipped, no candidate has {'cross-validation runs' if cv_roots else f'{k} seeds'}")
        return
    if cv_roots:  # chosen by cross-validation: the fold models of the chosen setting are the members
        # which candidate is the shipped model's setting: same_configuration ignores --out, --seeds, --folds and --datasets
        commands = {c.label(): run_command(c, dataset, [0], data_dir, cv=next(iter(c.folds.values())))
                    for c in candidates}
        shipped = next((label for label, command in commands.items()
                        if any(same_configuration(command, other) for other in shipped_commands)), None)
        if shipped_commands and shipped is None and incumbent_cv is None:  # nothing to compare it with: it stays
            print(f"{name}: skipped, the shipped model's setting has no cross-validation runs under --cv "
                  f"({', '.join(map(str, cv_roots))}); run finetune_sweep.py --folds for it too, give its recorded "
                  "score with --incumbent-cv, or leave --cv out")
            return
        chosen, ranking, valid, basis = _choose_by_cv(name, candidates, shipped, higher, lead_confidence)
        if shipped_commands and shipped is None:
            lead = (valid[chosen.label()] - incumbent_cv) * (1 if higher else -1)
            print(f"{name}: {chosen.label()} {valid[chosen.label()]:.4f} against the shipped setting's recorded "
                  f"{incumbent_cv:.4f} (--cv-margin {cv_margin})", flush=True)
            if lead < cv_margin:
                print(f"{name}: keeping the shipped model")
                return
            valid["the shipped model's setting (its card's recorded score; its runs are gone)"] = incumbent_cv
            ranking.append("the shipped model's setting (its card's recorded score; its runs are gone)")
        seed, folds = fold_members(chosen.folds, k, higher, one_scaffold_set)
        runs = [chosen.folds[seed, fold] for fold in folds]
        command = run_command(chosen, dataset, [seed], data_dir, cv=runs[0])
        if command in shipped_commands:
            print(f"{name}: {'exporting again' if again else 'keeping'} the shipped model (already the fold ensemble "
                  f"of {chosen.label()})", flush=True)
            if not again:
                return
        members = (f"Ensemble of {len(runs)}: the models of folds {', '.join(map(str, folds))} of that "
                   f"cross-validation (seed {seed}, whose folds validate best), each trained on the other folds and "
                   "validated on its own. ")
        split_note = (f"; its training + validation parts in {json.loads((runs[0] / 'config.json').read_text())['folds']}"
                      " scaffold folds (scikit-learn's GroupKFold) for the members")
    else:
        chosen_seeds = {c.label(): best_seeds(c, k, higher) for c in candidates}
        candidates = [c for c in candidates  # the shipped one competes as "shipped"
                      if run_command(c, dataset, chosen_seeds[c.label()], data_dir) not in shipped_commands]
        metas = {c.label(): member_metas([c.runs[s] for s in chosen_seeds[c.label()]]) for c in candidates}
        valid = {label: ensemble_valid_score(members, spec.metric) for label, members in metas.items()}
        shipped_metas = []
        if shipped_commands:
            shipped_metas = [entry["meta"] for entry in load_zoo_weights(shipped_folder)["members"]]
            if all("calibration" in meta for meta in shipped_metas):
                valid["shipped"] = ensemble_valid_score(shipped_metas, spec.metric)
        if not valid:
            print(f"{name}: nothing to compare (the only candidate is the shipped model, whose file has no validation "
                  "record)")
            return
        ranking = sorted(valid, key=valid.get, reverse=higher)
        print(f"{name}: validation {spec.metric} of each ensemble of {k} (best seeds by validation): "
              + ", ".join(f"{label} {valid[label]:.4f}" for label in ranking), flush=True)
        if ranking[0] == "shipped":
            print(f"{name}: keeping the shipped model")
            return
        if "shipped" in valid and lead_confidence > 0:
            lead = bootstrap_lead(metas[ranking[0]], shipped_metas, spec.metric, higher)
            bar = required_lead(lead_confidence, len(valid) - 1)
            bar_text = (f"--lead-confidence {lead_confidence:.0%}, {bar:.1%} for the best of {len(valid) - 1} "
                        "candidates")
            if lead < bar:
                print(f"{name}: keeping the shipped model: {ranking[0]} leads on validation, but only in {lead:.1%} "
                      f"of paired bootstrap resamples of the validation rows ({bar_text})")
                return
            print(f"{name}: {ranking[0]} leads in {lead:.1%} of paired bootstrap resamples of the validation rows "
                  f"({bar_text})")
        basis = f"the validation score of the ensemble as shipped ({valid[ranking[0]]:.3f}"
        chosen = next(c for c in candidates if c.label() == ranking[0])
        seeds = chosen_seeds[chosen.label()]
        runs = [chosen.runs[s] for s in seeds]
        command = run_command(chosen, dataset, seeds, data_dir)
        split_note = ""
        members = (f"Ensemble of {len(runs)} (seeds {', '.join(map(str, seeds))}, the best validation scores of "
                   f"seeds {', '.join(map(str, sorted(chosen.runs)))}). " if len(runs) > 1 else
                   f"One model (seed {seeds[0]}, the best validation score of seeds "
                   f"{', '.join(map(str, sorted(chosen.runs)))}). ")
    baselines, counts = {}, []
    if (shipped_folder / zoo.CARD_FILE).is_file():  # same rows and split: the shipped card's baseline scores
        card = json.loads((shipped_folder / zoo.CARD_FILE).read_text())
        baselines = carried_baselines(card, fold_ensemble=bool(cv_roots))
        origin = _first_parenthesized(card.get("notes", ""))  # "RF-ECFP4 3, ..." or "as on the card of ..."
        first = origin.rsplit("as on the card of ", 1)[-1] if "as on the card of " in origin else f"{card.get('date')}: {origin}"
        counts = [f"as on the card of {first}"]  # the card whose runs measured them
    if not baselines:  # a new model: the baselines run beside the candidates
        for variant, label in BASELINE_TITLES.items():
            found = [json.loads((p / "results.json").read_text())["mean"]
                     for root in roots for p in sorted(root.glob(f"seed*/baselines/{dataset}/{variant}"))
                     if (p / "results.json").is_file()]
            if found:
                baselines[label] = float(np.mean(found))
                counts.append(f"{label} {len(found)}")
    encoder = f"from {ENCODER_TEXT[chosen.encoder]}" if chosen.encoder else "from random initialization"
    scaling = ("; each mapped through its training split's percentiles onto a standard normal"
               if chosen.scaling == "quantile" else "")
    others = ", ".join(f"{label} {valid[label]:.3f}" for label in ranking[1:])
    tuned = "".join(f", {SETTING_TEXT[key].format(value)} instead of MolCLR's "
                    f"{format(MOLCLR_DEFAULTS[key], 'g' if isinstance(MOLCLR_DEFAULTS[key], float) else '')}"
                    for key, value in chosen.tuned.items())
    tuned += (f" (chosen {'by cross-validation' if cv_roots else 'on validation'} by benchmarks/finetune_sweep.py)"
              if tuned else "")
    description = (f"GIN 5x300 on {FEATURES_TEXT[chosen.featurizer]} with all RDKit 2D descriptors (217{scaling}) "
                   f"concatenated before the head; fine-tuned {encoder}, up to 100 epochs with patience 10{tuned}"
                   f"{', balanced class weights' if higher else ''}. "
                   + f"Chosen by {basis}; the others{'' if cv_roots else f', each with {k} members'}: {others}). "
                   + members)
    limitations = (f"Trained on {training.split(',')[0]} only; scaffold split, so test scaffolds are new but the "
                   "chemistry is that data set's. Not tested on other assays, conditions or chemical series; "
                   "check the applicability-domain columns. Scored on one scaffold split.")
    cmd = [sys.executable, "-m", "molssl", "models", "export", *map(str, runs), "--name", name, "--title", title,
           "--description", description, "--training-data",
           f"{training}. MoleculeNet file (DeepChem copy, checksum in molssl.chem.data.datasets); DeepChem/MolCLR "
           f"scaffold split 80/10/10 (no chirality){split_note}", "--command", command, "--data-dir", data_dir,
           "--limitations", limitations, "--notes", "Baselines on the card: mean test score over their seeds ("
           + ", ".join(counts) + "); chemprop v2.3.1 with its defaults (50 epochs); RF: 500 trees. "
           "All numbers: benchmarks/results/quality_ablation.md."]
    for label in labels:
        cmd += ["--label", label]
    if units:
        cmd += ["--units", units]
    for label, value in baselines.items():
        cmd += ["--baseline", f"{label}={value}"]  # results.json holds ROC-AUC as a fraction
    print(shlex.join(cmd[2:]) if not dry_run else f"{name}: would export {', '.join(map(str, runs))}", flush=True)
    if not dry_run:
        checked = previous_external_check(name)
        subprocess.run(cmd, check=True)
        if checked:
            print(f"{name}: the previous card's external check ({checked}) scored other weights and is not carried "
                  f"over; run benchmarks/external_check.py --dataset {dataset} ... --card again", flush=True)


def carried_baselines(card: dict, fold_ensemble: bool) -> dict[str, float]:
    """The shipped card's baselines for its successor (same rows and split); forests trained on training + validation
    (benchmarks/pooled_baselines.py) only when the successor is a fold ensemble too, the one model they are fair for."""
    pooled = zoo.POOLED_BASELINE.format("")
    return {label: value for label, value in card.get("baselines", {}).items()
            if fold_ensemble or not label.endswith(pooled)}


def _choose_by_cv(name: str, candidates: list[FoldCandidate], shipped: Optional[str], higher: bool,
                  lead_confidence: float):
    """(chosen, ranking, scores, card text): the best mean cross-validation score over the (seed, fold) runs every
    candidate has, unless its lead over the shipped model's setting does not hold on resampled runs (then that one)."""
    shared = sorted(set.intersection(*(set(c.folds) for c in candidates)))
    if not shared:
        raise SystemExit(f"{name}: the candidates' cross-validation runs share no (seed, fold)")
    named = {c.label(): [valid_mean(c.folds[run]) for run in shared] for c in candidates}
    valid = {label: float(np.mean(values)) for label, values in named.items()}
    ranking = sorted(valid, key=valid.get, reverse=higher)
    print(f"{name}: mean cross-validation score over {len(shared)} (seed, fold) runs: "
          + ", ".join(f"{label}{' (shipped)' if label == shipped else ''} {valid[label]:.4f}" for label in ranking),
          flush=True)
    chosen = ranking[0]
    if shipped is not None and chosen != shipped and lead_confidence > 0:
        lead = cv_lead(named[chosen], named[shipped], higher)
        bar = required_lead(lead_confidence, len(candidates) - 1)
        print(f"{name}: {chosen} leads the shipped model's setting in {lead:.1%} of paired bootstrap resamples of the "
              f"cross-validation runs (--lead-confidence {lead_confidence:.0%}, {bar:.1%} for the best of "
              f"{len(candidates) - 1} candidates)", flush=True)
        if lead < bar:
            chosen = shipped
    folds = len({fold for _, fold in shared})
    basis = (f"{folds}-fold scaffold cross-validation of the training + validation molecules (mean validation score "
             f"{valid[chosen]:.3f} over {len(shared)} (seed, fold) runs")
    chosen_candidate = next(c for c in candidates if c.label() == chosen)
    return chosen_candidate, [chosen] + [label for label in ranking if label != chosen], valid, basis


def _first_parenthesized(text: str) -> str:
    """What the first parentheses of ``text`` hold, nested ones included ("a (b (c) d) e" -> "b (c) d")."""
    start, depth = text.find("("), 0
    for i in range(max(start, 0), len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if start >= 0 and depth == 0:
            return text[start + 1:i]
    return text[start + 1:]


def previous_external_check(name: str) -> str:
    """The set named by the shipped card's "Checked outside" sentence (benchmarks/external_check.py), or ""."""
    from molssl.chem.serve import zoo
    from molssl.errors import MolsslError

    try:
        limitations = zoo.read_card(zoo.model_folder(name)).limitations
    except MolsslError:  # not shipped yet, or an unreadable card: nothing to carry over either way
        return ""
    marker = limitations.find(zoo.EXTERNAL_CHECK)
    return limitations[marker:].split(" (", 1)[0].removeprefix("Checked ") if marker >= 0 else ""


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
