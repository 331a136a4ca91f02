"""Give a shipped fold-ensemble classifier compact random forests beside its GNN members, and measure its card anew
(:mod:`molssl.chem.serve.zoo_forests`). Only for a model whose cross-validation met the consensus rule
(benchmarks/fold_consensus.py; quality_ablation.md, twenty-eighth section: SIDER).

    OMP_NUM_THREADS=1 python benchmarks/zoo_forests.py sider --data-dir ../shared/data/moleculenet
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from molssl.chem.serve.zoo_forests import add_forests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="a shipped classifier made of cross-validation fold members")
    parser.add_argument("--data-dir", default="../shared/data/moleculenet")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--leaves", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models-dir", type=Path, default=None, help="a zoo folder other than the package's")
    args = parser.parse_args()
    command = "python benchmarks/zoo_forests.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    card = add_forests(args.name, args.data_dir, trees=args.trees, leaves=args.leaves, seed=args.seed,
                       command=command, models_dir=args.models_dir)  # a refusal: one sentence, exit 2 (run_script)
    print(f"{card.name}: test {card.metric} {card.test_score:.4f} (members {', '.join(f'{s:.4f}' for s in card.member_test_scores)}); "
          f"{card.size_bytes / 1e6:.2f} MB")
    print(card.notes)


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
