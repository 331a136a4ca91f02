"""The fine-tuning suite: every data set of a suite with a pre-trained encoder, random init and the baselines.

For each data set, each variant is a :func:`molssl.chem.tasks.finetune.run_finetune` run in
``OUT/<dataset>/<variant>`` on the same molecules, protocol and splits: ``pretrained`` (the given
encoder), ``random-init`` (the same architecture from random weights), ``rf-ecfp`` and
``rf-rdkit2d`` (random forests), ``delaney`` (ESOL's equation, solubility sets only) and ``chemprop``
(chemprop v2 with its defaults, when the ``bench`` extra is installed; otherwise the column is
skipped with a note). A variant whose ``results.json`` exists with the same settings is not rerun;
one left half-done by an interruption continues from its last finished seed and epoch (HIV or MUV runs take
hours), unless its settings changed, in which case it is started again.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from molssl.chem.data.datasets import get_spec
from molssl.chem.nn.encoders import EncoderConfig
from molssl.chem.serve.loading import resolve_encoder_state
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.chem.tasks.finetune_config import RUNTIME_SETTINGS, with_added_fields
from molssl.chem.tasks.reports import VARIANT_TITLES, benchmark_table, format_score
from molssl.core.rundir import config_differences
from molssl.errors import MolsslError

# MolCLR's 13 MoleculeNet benchmarks (paper Tables 1 and 2), small sets first.
SUITES: dict[str, tuple[str, ...]] = {
    "molclr": ("bbbp", "bace", "clintox", "sider", "tox21", "hiv", "muv",
               "freesolv", "esol", "lipo", "qm7", "qm8", "qm9"),
    "small": ("bbbp", "bace", "clintox", "esol", "freesolv", "lipo"),
}
VARIANTS = tuple(VARIANT_TITLES)
DEFAULT_VARIANTS = ("pretrained", "random-init", "rf-ecfp", "chemprop")
SOLUBILITY_SETS = ("esol",)  # Delaney's equation predicts aqueous solubility only
AUTO_PER_TARGET_MAX = 2  # --protocol auto: per-target models up to this many targets (ClinTox), multitask above


@dataclass
class BenchmarkConfig:
    """A suite run; the fine-tuning settings are shared by every data set and variant."""

    out: str
    suite: str = "molclr"
    pretrained: Optional[str] = None
    datasets: Optional[Sequence[str]] = None
    variants: Sequence[str] = DEFAULT_VARIANTS
    seeds: Sequence[int] = (0, 1, 2)
    epochs: int = 100
    batch_size: int = 32
    max_train_molecules: Optional[int] = None
    protocol: Optional[str] = None
    split: str = "scaffold"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    features: str = "none"
    descriptor_scaling: str = "standard"
    patience: Optional[int] = None
    probe_epochs: int = 0
    class_weight: str = "none"
    precision: str = "auto"
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    device: str = "auto"
    threads: Optional[int] = None
    progress: bool = True  # a line per epoch of each model, and featurization progress on big sets
    notes: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.protocol not in (None, "auto", "molclr-per-target", "multitask"):
            raise MolsslError(f"unknown protocol {self.protocol!r}; choose from molclr-per-target, multitask, auto")
        if self.suite not in SUITES:
            raise MolsslError(f"unknown suite {self.suite!r}; choose from {', '.join(SUITES)}")
        self.datasets = [get_spec(d).name for d in self.datasets] if self.datasets else list(SUITES[self.suite])
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise MolsslError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        if self.pretrained is None:
            self.variants = [v for v in self.variants if v != "pretrained"]
        if "chemprop" in self.variants:
            from molssl.chem.tasks.chemprop_baseline import chemprop_available

            if not chemprop_available():
                self.variants = [v for v in self.variants if v != "chemprop"]
                self.notes.append("chemprop column skipped: the bench extra is not installed "
                                  "(pip install 'molssl[bench]')")
        self.variants = list(self.variants)
        self.seeds = [int(s) for s in self.seeds]

    def budget(self) -> str:
        """One line stating what was run (printed with every table)."""
        cap = self.max_train_molecules or "all"
        scaling = f" ({self.descriptor_scaling} descriptor scaling)" if self.descriptor_scaling != "standard" else ""
        patience = f", patience {self.patience}" if self.patience else ""
        patience += f", head-only probe first (up to {self.probe_epochs} epochs)" if self.probe_epochs else ""
        return (f"budget: {self.epochs} epochs{patience}, batch {self.batch_size}, seeds {list(self.seeds)}, "
                f"max train molecules {cap}, protocol {self.protocol or 'molclr-per-target'}, {self.split} split, "
                f"features {self.features}{scaling}, class weight {self.class_weight}, precision {self.precision}")


def variant_config(config: BenchmarkConfig, dataset: str, variant: str, encoder: EncoderConfig) -> FinetuneConfig:
    """The :class:`FinetuneConfig` of one data set and variant."""
    gnn = variant in ("pretrained", "random-init")
    protocol = config.protocol
    if protocol == "auto":  # MolCLR's per-target models, but one multitask model for sets of many targets
        protocol = "multitask" if get_spec(dataset).n_tasks > AUTO_PER_TARGET_MAX else "molclr-per-target"
    return FinetuneConfig(
        out=str(Path(config.out) / dataset / variant), dataset=dataset,
        method="finetune" if gnn else variant,
        pretrained=config.pretrained if variant == "pretrained" else None, protocol=protocol,
        split=config.split, seeds=list(config.seeds), epochs=config.epochs, batch_size=config.batch_size,
        encoder=replace(encoder), features=config.features if gnn else "none", patience=config.patience,
        descriptor_scaling=config.descriptor_scaling if gnn else "standard",
        probe_epochs=config.probe_epochs if gnn else 0,
        class_weight=config.class_weight, precision=config.precision,
        max_train_molecules=config.max_train_molecules, data_dir=config.data_dir,
        cache_dir=config.cache_dir, device=config.device, threads=config.threads, progress=config.progress,
    )


def run_variant(config: FinetuneConfig, log: Callable[[str], None]) -> tuple[dict, bool]:
    """(results, reused): finished results with the same settings are reused, half-done runs continued."""
    out = Path(config.out)
    done = out / "results.json"
    if done.is_file():
        results = json.loads(done.read_text())
        if not _changed(results.get("config") or {}, config):
            return results, True
        raise MolsslError(f"{out} holds results made with other settings; use another --out or delete it")
    if out.exists():
        try:
            saved = json.loads((out / "config.json").read_text())
        except (OSError, ValueError):
            saved = None  # interrupted before its settings were written: nothing to continue
        if saved is not None and not _changed(saved, config):
            log(f"continuing the interrupted run in {out}")
            return run_finetune(replace(config, resume=True), log=log), False
        shutil.rmtree(out)  # interrupted with other settings: start it again
    return run_finetune(config, log=log), False


def _changed(saved: dict, config: FinetuneConfig) -> list[str]:
    """The settings that differ between a saved run and ``config``, leaving out how it is carried out."""
    current = config.to_dict()
    saved = {key: value for key, value in with_added_fields(saved).items() if key in current}
    return config_differences(saved, current, RUNTIME_SETTINGS)


def run_benchmark(config: BenchmarkConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Run the suite; returns one row per data set and writes ``benchmark.json`` and ``benchmark.md``."""
    encoder = resolve_encoder_state(config.pretrained)[0] if config.pretrained else config.encoder
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log(config.budget())
    rows = []
    for number, dataset in enumerate(config.datasets, start=1):
        spec = get_spec(dataset)
        row = {"dataset": spec.name, "title": spec.title, "metric": spec.metric, "molclr_paper": spec.molclr,
               "molclr_rerun": spec.molclr_rerun}
        for variant in config.variants:
            if variant == "delaney" and spec.name not in SOLUBILITY_SETS:
                continue
            started = time.perf_counter()
            log(f"[{number}/{len(config.datasets)}] {spec.title}: {variant} ...")
            results, reused = run_variant(variant_config(config, spec.name, variant, encoder), log)
            row[variant] = {"mean": results["mean"], "std": results["std"],
                            "seeds": [s["test"] for s in results["seeds"]], "seconds": results["seconds"]}
            how = "already done, reused" if reused else f"{time.perf_counter() - started:.0f} s"
            log(f"[{number}/{len(config.datasets)}] {spec.title}: {variant} test "
                f"{format_score(spec.metric, results['mean'], results['std'])} ({how})")
        rows.append(row)
        _write(out, config, rows)
    return rows


def _write(out: Path, config: BenchmarkConfig, rows: list[dict]) -> None:
    (out / "benchmark.json").write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=1))
    (out / "benchmark.md").write_text(benchmark_table(rows, config.budget(), config.variants, config.notes))
