"""The fine-tuning suite: every data set of a suite with a pre-trained encoder and the baselines.

For each data set three runs of :func:`molssl.chem.tasks.finetune.run_finetune` go into
``OUT/<dataset>/<variant>``: ``pretrained`` (the given encoder), ``random-init`` (the same
architecture from random initialisation) and ``rf-ecfp`` (random forest on ECFP4), all on the
same molecules, protocol and splits. A variant whose ``results.json`` exists with the same
settings is not rerun (resumable); one left half-done by an interruption is started again.
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
from molssl.chem.tasks.finetune import FinetuneConfig, format_score, load_encoder_file, run_finetune
from molssl.errors import MolsslError

# MolCLR's 13 MoleculeNet benchmarks (paper Tables 1 and 2), small sets first.
SUITES: dict[str, tuple[str, ...]] = {
    "molclr": ("bbbp", "bace", "clintox", "sider", "tox21", "hiv", "muv",
               "freesolv", "esol", "lipo", "qm7", "qm8", "qm9"),
    "small": ("bbbp", "bace", "clintox", "esol", "freesolv", "lipo"),
}
VARIANTS = ("pretrained", "random-init", "rf-ecfp")


@dataclass
class BenchmarkConfig:
    """A suite run; the fine-tuning settings are shared by every data set and variant."""

    out: str
    suite: str = "molclr"
    pretrained: Optional[str] = None
    datasets: Optional[Sequence[str]] = None
    variants: Sequence[str] = VARIANTS
    seeds: Sequence[int] = (0, 1, 2)
    epochs: int = 100
    batch_size: int = 32
    max_train_molecules: Optional[int] = None
    protocol: Optional[str] = None
    split: str = "scaffold"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    device: str = "auto"
    threads: Optional[int] = None

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise MolsslError(f"unknown suite {self.suite!r}; choose from {', '.join(SUITES)}")
        self.datasets = [get_spec(d).name for d in self.datasets] if self.datasets else list(SUITES[self.suite])
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise MolsslError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        if self.pretrained is None:
            self.variants = [v for v in self.variants if v != "pretrained"]
        self.variants = list(self.variants)
        self.seeds = [int(s) for s in self.seeds]

    def budget(self) -> str:
        """One line stating what was run (printed with every table)."""
        cap = self.max_train_molecules or "all"
        return (f"budget: {self.epochs} epochs, batch {self.batch_size}, seeds {list(self.seeds)}, "
                f"max train molecules {cap}, protocol {self.protocol or 'molclr-per-target'}, {self.split} split")


def variant_config(config: BenchmarkConfig, dataset: str, variant: str, encoder: EncoderConfig) -> FinetuneConfig:
    """The :class:`FinetuneConfig` of one data set and variant."""
    return FinetuneConfig(
        out=str(Path(config.out) / dataset / variant), dataset=dataset,
        method="rf-ecfp" if variant == "rf-ecfp" else "finetune",
        pretrained=config.pretrained if variant == "pretrained" else None, protocol=config.protocol,
        split=config.split, seeds=list(config.seeds), epochs=config.epochs, batch_size=config.batch_size,
        encoder=replace(encoder), max_train_molecules=config.max_train_molecules, data_dir=config.data_dir,
        cache_dir=config.cache_dir, device=config.device, threads=config.threads, progress=False,
    )


def run_variant(config: FinetuneConfig, log: Callable[[str], None]) -> tuple[dict, bool]:
    """(results, reused): finished results with identical settings are reused, half-done runs restarted."""
    out = Path(config.out)
    done = out / "results.json"
    if done.is_file():
        results = json.loads(done.read_text())
        if results.get("config") == json.loads(json.dumps(config.to_dict())):
            return results, True
        raise MolsslError(f"{out} holds results made with other settings; use another --out or delete it")
    if out.exists():
        shutil.rmtree(out)  # an interrupted run of this variant: start it again
    return run_finetune(config, log=log), False


def run_benchmark(config: BenchmarkConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Run the suite; returns one row per data set and writes ``benchmark.json`` and ``benchmark.md``."""
    encoder = load_encoder_file(config.pretrained)[0] if config.pretrained else config.encoder
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log(config.budget())
    rows = []
    for number, dataset in enumerate(config.datasets, start=1):
        spec = get_spec(dataset)
        row = {"dataset": spec.name, "title": spec.title, "metric": spec.metric, "molclr_paper": spec.molclr}
        for variant in config.variants:
            started = time.perf_counter()
            log(f"[{number}/{len(config.datasets)}] {spec.title}: {variant} ...")
            results, reused = run_variant(variant_config(config, spec.name, variant, encoder), log)
            row[variant] = {"mean": results["mean"], "std": results["std"],
                            "seeds": [s["test"] for s in results["seeds"]]}
            how = "already done, reused" if reused else f"{time.perf_counter() - started:.0f} s"
            log(f"[{number}/{len(config.datasets)}] {spec.title}: {variant} test "
                f"{format_score(spec.metric, results['mean'], results['std'])} ({how})")
        rows.append(row)
        _write(out, config, rows)
    return rows


def benchmark_table(rows: list[dict], budget: str) -> str:
    """Markdown table: data set, metric, ours, MolCLR paper, no pre-training, RF-ECFP."""
    lines = ["| data set | metric | ours (pre-trained) | MolCLR paper | no pre-training | RF-ECFP4 |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        metric = row["metric"]
        cells = [format_score(metric, row[v]["mean"], row[v]["std"]) if v in row else "-" for v in VARIANTS]
        paper = f"{row['molclr_paper']:.1f}" if row["molclr_paper"] is not None else "-"
        unit = "ROC-AUC %" if metric == "roc_auc" else metric.upper()
        lines.append(f"| {row['title']} | {unit} | {cells[0]} | {paper} | {cells[1]} | {cells[2]} |")
    classification = [row for row in rows if row["metric"] == "roc_auc"]
    if len(classification) > 1:
        means = [classification_mean(classification, v) for v in VARIANTS]
        cells = [format_score("roc_auc", m) for m in means]
        papers = [row["molclr_paper"] for row in classification]
        paper = f"{sum(papers) / len(papers):.1f}" if None not in papers else "-"
        lines.append(f"| mean of {len(classification)} classification sets | ROC-AUC % | {cells[0]} | {paper} | "
                     f"{cells[1]} | {cells[2]} |")
    return "\n".join(lines + ["", budget, "Scores are test means ± std (ddof=1) over seeds; "
                              "MolCLR paper: MolCLR-GIN, Table 1 of Wang et al. 2022 (ROC-AUC only).", ""])


def classification_mean(rows: list[dict], variant: str) -> Optional[float]:
    """Mean test ROC-AUC of ``variant`` over the classification rows, or None if one lacks it."""
    values = [row[variant]["mean"] for row in rows if row["metric"] == "roc_auc" and variant in row]
    complete = len(values) == sum(row["metric"] == "roc_auc" for row in rows)
    return sum(values) / len(values) if values and complete else None


def _write(out: Path, config: BenchmarkConfig, rows: list[dict]) -> None:
    (out / "benchmark.json").write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=1))
    (out / "benchmark.md").write_text(benchmark_table(rows, config.budget()))
