"""benchmarks/layers_by_environment.py: the three ways timed in rotating rounds, on a real (small) batch."""
import json
import sys

from benchmark_helpers import benchmark_script

import molssl.chem.nn.encoders as encoders


def test_compare_rotates_the_ways_and_reports_medians():
    bench = benchmark_script("layers_by_environment")
    seen = []

    def work():
        seen.append((encoders._BY_ENVIRONMENT, encoders._BY_KIND))

    result = bench.compare(work, rounds=2, repeats=1)
    environments, kinds, atoms = (True, True), (False, True), (True, False)
    # each way: a warm-up call and one timed; round 0 in WAYS order, round 1 rotated by one
    assert seen == [environments] * 2 + [kinds] * 2 + [atoms] * 2 + [kinds] * 2 + [atoms] * 2 + [environments] * 2
    assert set(result) == {"environments_ms", "kinds_ms", "atoms_ms", "kinds_over_environments",
                           "atoms_over_environments", "rounds_won_by_environments"}


def test_main_times_both_featurizers_on_a_small_batch(smiles_file, monkeypatch, capsys):
    bench = benchmark_script("layers_by_environment")
    monkeypatch.setattr(sys, "argv", ["layers_by_environment.py", "--smiles", str(smiles_file), "--batch-size", "6",
                                      "--rounds", "2", "--repeats", "1"])
    bench.main()
    results = json.loads(capsys.readouterr().out)
    for featurizer in ("molclr", "rich"):
        counts = results[f"{featurizer}_environments_per_layer"]
        assert len(counts) == 6 and counts == sorted(counts) and 0 < counts[0] and counts[-1] <= results[f"{featurizer}_atoms"]
        assert results[f"{featurizer}_encoder"]["atoms_over_environments"] > 0
