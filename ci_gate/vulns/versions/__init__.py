"""Version comparison, one module per scheme, each following its reference implementation.

`comparator(scheme)` gives a `compare(left, right) -> -1|0|1` function; `scheme_for_ecosystem`
(from `ci_gate.ecosystems`) says which scheme an OSV ecosystem's `ECOSYSTEM` ranges use. Every
comparator raises ValueError for a version it cannot read; callers treat that as "cannot decide", never as a match.

A scheme's module is imported the first time its comparator is asked for: a gate on a Debian image
needs dpkg only, not `packaging`'s PEP 440 parser or the Maven and Go rules (start-up, docs/architecture.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import cast

from ci_gate.ecosystems import scheme_for_ecosystem

__all__ = ["COMPARATORS", "SCHEMES", "Comparator", "comparator", "scheme_for_ecosystem"]

Comparator = Callable[[str, str], int]

SCHEMES = ("dpkg", "apk", "rpm", "pep440", "semver", "maven", "go", "rubygems", "generic")
"""The scheme names; each one's comparator is `compare` in the submodule of the same name."""


@cache
def comparator(scheme: str) -> Comparator:
    """The compare function for a scheme name (one of SCHEMES); KeyError for an unknown one."""
    if scheme not in SCHEMES:
        raise KeyError(scheme)
    return cast(Comparator, importlib.import_module(f"{__name__}.{scheme}").compare)


def __getattr__(name: str) -> dict[str, Comparator]:
    """`COMPARATORS`, scheme name -> compare function, built (every scheme imported) only when asked for."""
    if name == "COMPARATORS":
        return {scheme: comparator(scheme) for scheme in SCHEMES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
