"""The ``molssl`` command line: one module per verb, one group per sibling modality, one error policy."""
from __future__ import annotations


def main() -> None:
    """Console entry point (``molssl``, ``python -m molssl``, ``torchrun -m molssl``)."""
    from molssl.cli.main import main as run

    run()
