"""``python -m molssl`` (and ``torchrun -m molssl``) runs the command line."""
from molssl.cli import main

main()
