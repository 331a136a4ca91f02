"""The main of a results script: --report reads only, otherwise the cells run first; the table ends with its machine."""
import argparse
import sys

import pytest

from molssl.chem.tasks.reports import run_then_report
from molssl.core.precision import cpu_description


@pytest.mark.parametrize("argv, runs", [(["--out", "x"], 1), (["--out", "x", "--report"], 0)])
def test_cells_run_unless_only_the_report_is_asked_for(monkeypatch, capsys, argv, runs):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    calls = []
    monkeypatch.setattr(sys, "argv", ["script", *argv])
    run_then_report(parser, calls.append, lambda args: f"| table of {args.out} |")
    assert len(calls) == runs
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "| table of x |" and printed[-1].startswith(f"CPU: {cpu_description()[0]}; 20")
