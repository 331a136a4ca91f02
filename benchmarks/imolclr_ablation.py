"""iMolCLR ablation: MolCLR vs +weighted NT-Xent vs +fragment contrast vs both, same budget and seed.

Usage: python benchmarks/imolclr_ablation.py --smiles FILE --out DIR [--molecules 4096] [--batch 256]
       [--epochs 1] [--seed 0] [--finetune-epochs 3] [--finetune-max-train N] [--finetune-seeds 0]
       [--data-dir DIR] [--threads 1] [--skip-finetune] [--variants molclr weighted fragments both]

Each variant pre-trains with ``molssl.chem.tasks.pretrain.pretrain`` on the first ``--molecules`` SMILES
(same store, seed, batches and steps), then is fine-tuned on eight MoleculeNet sets with the
benchmark harness (``molssl.chem.tasks.benchmark.run_benchmark``, multi-task protocol, scaffold split).
Prints one markdown table (pre-training losses and time, then test scores) and writes it to
``OUT/ablation.md``. Finished runs are reused, so an interrupted ablation can be started again.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import torch

from molssl.chem.tasks.pretrain import PretrainConfig, pretrain

VARIANTS = {  # --variants key: (table name, --method, method options)
    "molclr": ("MolCLR", "molclr", {}),
    "weighted": ("+weighted", "imolclr", {"lambda1": 0.5, "lambda2": 0.0}),
    "fragments": ("+fragments", "imolclr", {"lambda1": 0.0, "lambda2": 0.5}),
    "both": ("iMolCLR (both)", "imolclr", {"lambda1": 0.5, "lambda2": 0.5}),
}
DATASETS = ("bbbp", "bace", "clintox", "tox21", "sider", "esol", "freesolv", "lipo")


def _head(path: Path, n: int, out: Path) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        lines = [line.split(",")[0].strip() for line, _ in zip(handle, range(n + 1))]
    lines = [s for s in lines if s and s.lower() != "smiles"][:n]
    out.mkdir(parents=True, exist_ok=True)
    target = out / "corpus.smi"
    partial = out / f"corpus.smi.{os.getpid()}"  # parallel processes each write, then rename atomically
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, target)
    return target


def _pretrain(key: str, method: str, options: dict, corpus: Path, args, out: Path) -> dict:
    run = out / "pretrain" / key
    if (run / "summary.json").is_file():
        return json.loads((run / "summary.json").read_text())
    config = PretrainConfig(smiles=str(corpus), out=str(run), method=method, method_options=options,
                            epochs=args.epochs, batch_size=args.batch, seed=args.seed, workers=1,
                            cache_dir=str(out / "cache"), progress=False, log_every=5, precision=args.precision)
    return pretrain(config, log=print)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--molecules", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--finetune-max-train", type=int, default=None, help="cap each training split (default: all)")
    parser.add_argument("--finetune-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", default="fp32", help="pre-training and fine-tuning precision (the recorded "
                                                              "table used fp32)")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="run a subset (e.g. two processes with two variants each); the table lists "
                             "every variant whose pre-training has finished")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = _head(args.smiles, args.molecules, args.out)

    summaries = {}
    for key in args.variants:
        name, method, options = VARIANTS[key]
        started = time.perf_counter()
        summaries[name] = _pretrain(key, method, options, corpus, args, args.out)
        print(f"pre-trained {name}: {summaries[name]['steps']} steps, loss {summaries[name]['final_loss']:.4f} "
              f"({time.perf_counter() - started:.0f} s)")
    for key, (name, _, _) in VARIANTS.items():
        done = args.out / "pretrain" / key / "summary.json"
        if name not in summaries and done.is_file():
            summaries[name] = json.loads(done.read_text())
    summaries = {name: summaries[name] for name, _, _ in VARIANTS.values() if name in summaries}

    lines = ["| variant | pre-training steps | final train loss | final valid loss | molecules/s |",
             "|---|---|---|---|---|"]
    for name, s in summaries.items():
        val = f"{s['final_val_loss']:.4f}" if s["final_val_loss"] is not None else "-"
        lines.append(f"| {name} | {s['steps']} | {s['final_loss']:.4f} | {val} | {s['molecules_per_s']:.1f} |")
    lines.append("")
    lines.append("Losses are not comparable across variants (different objectives); they show each run trained.")

    if not args.skip_finetune:
        from molssl.chem.tasks.benchmark import BenchmarkConfig, run_benchmark
        from molssl.chem.tasks.reports import classification_mean, format_score

        scores: dict[str, dict] = {}
        for name, summary in summaries.items():
            config = BenchmarkConfig(out=str(Path(summary["encoder"]).parent / "finetune"), pretrained=summary["encoder"],
                                     datasets=DATASETS, variants=["pretrained"], seeds=args.finetune_seeds,
                                     epochs=args.finetune_epochs, max_train_molecules=args.finetune_max_train,
                                     protocol="multitask", data_dir=args.data_dir, cache_dir=str(args.out / "cache"),
                                     threads=args.threads, precision=args.precision)
            scores[name] = {row["dataset"]: row for row in run_benchmark(config, log=print)}
            budget = config.budget()
        first = next(iter(scores.values()))
        lines += ["", "| data set | metric | " + " | ".join(scores) + " |", "|---|---|" + "---|" * len(scores)]
        for dataset, row in first.items():
            cells = [format_score(row["metric"], scores[n][dataset]["pretrained"]["mean"],
                                  scores[n][dataset]["pretrained"]["std"]) for n in scores]
            lines.append(f"| {row['title']} | {row['metric']} | " + " | ".join(cells) + " |")
        means = [format_score("roc_auc", classification_mean(list(scores[n].values()), "pretrained")) for n in scores]
        lines.append("| mean of the classification sets | roc_auc | " + " | ".join(means) + " |")
        lines += ["", f"Fine-tuning {budget}."]
    table = "\n".join(lines) + "\n"
    (args.out / "ablation.md").write_text(table)
    print(table)


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
