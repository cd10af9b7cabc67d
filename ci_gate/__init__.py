"""ci-gate: a container-image policy gate for CI."""

__version__ = "0.1.0"
