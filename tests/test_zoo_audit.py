"""benchmarks/zoo_audit.py: the card check of every model in a table, in each precision asked for."""
from benchmark_helpers import benchmark_script


def test_the_audit_table_gives_the_card_and_each_precisions_score(shared_data, capsys):
    audit = benchmark_script("zoo_audit")
    result = audit.main(["--data-dir", str(shared_data / "moleculenet"), "--models", "esol", "--precision", "fp32"])
    row = result["models"]["esol"]
    assert row["test_molecules"] == 113 and abs(row["fp32"]["score"] - row["card"]) < 1e-3
    assert "coverage" in row["card_reliability"] and "| esol | rmse | 113 |" in capsys.readouterr().out
