"""Plain helpers of the safety tests (the fixtures are in conftest.py): the CLI outcome, the error-policy check,
a small corpus, tiny model settings.

``refused(outcome, *fragments)`` asserts the CLI's error policy (exit code 2, no traceback, exactly one ``error:``
line, the last one on stderr) and that the line names each fragment (a file, a flag, a key).
"""
from __future__ import annotations

from dataclasses import dataclass

SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "C1CCCCC1", "CCN(CC)CC",
          "O=C(O)c1ccccc1O", "CN1CCC[C@H]1c1cccnc1", "c1ccncc1", "CCOC(=O)C", "CC(C)O", "Clc1ccccc1"]
TINY_ENCODER = ["--num-layers", "2", "--emb-dim", "8", "--feat-dim", "8"]
TINY_PRETRAIN = [*TINY_ENCODER, "--batch-size", "4", "--workers", "1", "--precision", "fp32", "--device", "cpu",
                 "--valid-fraction", "0.2"]
TINY_FINETUNE = [*TINY_ENCODER, "--pretrained", "none", "--epochs", "1", "--batch-size", "8", "--threads", "1",
                 "--device", "cpu"]


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def error(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""

    def describe(self) -> str:
        return f"exit {self.exit_code}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}\n{self.exception!r}"


def refused(outcome: Outcome, *fragments: str) -> str:
    """The outcome follows the error policy and its error line names every fragment; returns the line."""
    assert outcome.exit_code == 2, outcome.describe()
    assert "Traceback" not in outcome.stderr and outcome.exception is None, outcome.describe()
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and outcome.error == errors[0], outcome.describe()
    for fragment in fragments:
        assert str(fragment) in outcome.error, outcome.describe()
    return outcome.error
