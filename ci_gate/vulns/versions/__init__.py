"""Version comparison, one module per scheme, each following its reference implementation.

`comparator(scheme)` gives a `compare(left, right) -> -1|0|1` function; `scheme_for_ecosystem`
(from `ci_gate.ecosystems`) says which scheme an OSV ecosystem's `ECOSYSTEM` ranges use. Every
comparator raises ValueError for a version it cannot read; callers treat that as "cannot decide", never as a match.
"""

from __future__ import annotations

from collections.abc import Callable

from ci_gate.ecosystems import scheme_for_ecosystem
from ci_gate.vulns.versions import apk, dpkg, generic, go, maven, pep440, rpm, rubygems, semver

__all__ = ["COMPARATORS", "Comparator", "comparator", "scheme_for_ecosystem"]

Comparator = Callable[[str, str], int]

COMPARATORS: dict[str, Comparator] = {
    "dpkg": dpkg.compare,
    "apk": apk.compare,
    "rpm": rpm.compare,
    "pep440": pep440.compare,
    "semver": semver.compare,
    "maven": maven.compare,
    "go": go.compare,
    "rubygems": rubygems.compare,
    "generic": generic.compare,
}

def comparator(scheme: str) -> Comparator:
    """The compare function for a scheme name (see COMPARATORS); KeyError for an unknown one."""
    return COMPARATORS[scheme]
