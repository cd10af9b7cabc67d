"""`python -m ci_gate.cli`: the same entry point as the `ci-gate` console script."""

from ci_gate.cli import main

main()
