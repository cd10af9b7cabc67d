"""ci-gate: a container-image policy gate for CI."""

from ci_gate.dataclass_cache import install as _install_dataclass_cache

__version__ = "0.1.0"

_install_dataclass_cache()  # before any ci_gate dataclass is created: their methods come compiled
