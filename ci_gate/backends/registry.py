"""The backends by name (`--backend`). Each is imported when it is chosen: the anchore client is not
loaded for a local run, nor the analyzer for an Anchore one. A new backend is one module that
implements `ci_gate.backends.interface.Backend` and one line in `BACKENDS`."""

from __future__ import annotations

from collections.abc import Callable

from ci_gate.backends.interface import Backend
from ci_gate.errors import UsageError


def _local() -> Backend:
    from ci_gate.backends.local import LocalBackend

    return LocalBackend()


def _anchore() -> Backend:
    from ci_gate.backends.anchore import AnchoreBackend

    return AnchoreBackend()


BACKENDS: dict[str, Callable[[], Backend]] = {
    "local": _local,
    "anchore": _anchore,
}
"""`--backend` name -> a function that makes the backend."""


def backend_named(name: str) -> Backend:
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; use {' or '.join(BACKENDS)}")
    return BACKENDS[name]()
