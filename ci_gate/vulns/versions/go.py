"""Go module versions, as golang.org/x/mod/semver compares them.

Go requires the `v` prefix; OSV's Go records omit it, so a bare `1.2.3` is read as `v1.2.3`.
`v1` and `v1.2` are shorthands for `v1.0.0` and `v1.2.0` (not allowed with a pre-release or
build suffix). Pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`, `v1.2.4-0.2019...-abc`)
are pre-releases and order correctly by their timestamp. `+incompatible` is build metadata.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ci_gate.vulns.versions.semver import compare_prerelease

_GO_SEMVER = re.compile(
    r"^v(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?)?"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

_Parsed = tuple[tuple[int, int, int], tuple[int | str, ...]]


@lru_cache(maxsize=65536)
def parse(text: str) -> _Parsed | None:
    """(major, minor, patch) and pre-release identifiers, or None for an invalid version."""
    version = text if text.startswith("v") else "v" + text
    match = _GO_SEMVER.match(version)
    if not match:
        return None
    major, minor, patch, prerelease, build = match.groups()
    if (minor is None or patch is None) and (prerelease is not None or build is not None):
        return None
    identifiers: tuple[int | str, ...] = ()
    if prerelease:
        identifiers = tuple(int(part) if part.isdigit() else part for part in prerelease.split("."))
    return (int(major), int(minor or 0), int(patch or 0)), identifiers


def is_valid(text: str) -> bool:
    return parse(text) is not None


def compare(left: str, right: str) -> int:
    """-1, 0 or 1; an invalid version is older than every valid one and equal to other invalid ones."""
    a, b = parse(left), parse(right)
    if a is None or b is None:
        return (a is not None) - (b is not None)
    if a[0] != b[0]:
        return 1 if a[0] > b[0] else -1
    return compare_prerelease(a[1], b[1])
