"""benchmarks/first_product_by_kind.py: both ways timed in alternating rounds, on a real (small) batch."""
import json
import sys

from benchmark_helpers import benchmark_script

import molssl.chem.nn.encoders as encoders


def test_compare_alternates_the_ways_and_reports_medians():
    bench = benchmark_script("first_product_by_kind")
    seen = []

    def work():
        seen.append(encoders._BY_KIND)  # False inside per_atom_first_product()

    result = bench.compare(work, rounds=2, repeats=2)
    # round 0: kinds (warm-up + 2), then atoms; round 1: atoms, then kinds
    assert seen == [True] * 3 + [False] * 3 + [False] * 3 + [True] * 3
    assert set(result) == {"kinds_ms", "atoms_ms", "atoms_over_kinds", "rounds_won_by_kinds"}
    assert 0 <= result["rounds_won_by_kinds"] <= 2


def test_main_times_both_featurizers_on_a_small_batch(smiles_file, monkeypatch, capsys):
    bench = benchmark_script("first_product_by_kind")
    monkeypatch.setattr(sys, "argv", ["first_product_by_kind.py", "--smiles", str(smiles_file), "--batch-size", "6",
                                      "--rounds", "2", "--repeats", "1"])
    bench.main()
    results = json.loads(capsys.readouterr().out)
    for featurizer in ("molclr", "rich"):
        assert 0 < results[f"{featurizer}_kinds"] < results[f"{featurizer}_atoms"]
        assert results[f"{featurizer}_encoder"]["atoms_over_kinds"] > 0
