"""Semantic Versioning 2.0.0 precedence, parsed as node-semver does in loose mode (npm, crates.io).

Loose mode accepts a leading `v` or `=` with spaces (`= v1.2.3`); build metadata is ignored for
precedence; pre-release identifiers compare numerically when numeric, lexically otherwise, and
numeric identifiers sort before alphanumeric ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_LOOSE = re.compile(
    r"^[v=\s]*(\d+)\.(\d+)\.(\d+)"
    r"(?:-?((?:\d+|\d*[a-zA-Z-][a-zA-Z0-9-]*)(?:\.(?:\d+|\d*[a-zA-Z-][a-zA-Z0-9-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\s*$"
)


@dataclass(frozen=True, slots=True)
class SemanticVersion:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    """Dot-separated pre-release identifiers, numbers as int; empty for a release."""
    build: str = ""
    """Build metadata, kept for display and ignored for precedence."""


@lru_cache(maxsize=65536)
def parse(text: str) -> SemanticVersion:
    """Parse a (loose) semantic version; ValueError when `text` is not one."""
    match = _LOOSE.match(text.strip())
    if not match:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch, prerelease, build = match.groups()
    identifiers: tuple[int | str, ...] = ()
    if prerelease:
        identifiers = tuple(int(part) if part.isdigit() else part for part in prerelease.split("."))
    return SemanticVersion(int(major), int(minor), int(patch), identifiers, build or "")


def compare_prerelease(left: tuple[int | str, ...], right: tuple[int | str, ...]) -> int:
    """SemVer §11 pre-release precedence; an empty tuple (a release) is the highest."""
    if not left or not right:
        return (not left) - (not right)
    for a, b in zip(left, right, strict=False):
        if a == b:
            continue
        if isinstance(a, int) and isinstance(b, int):
            return 1 if a > b else -1
        if isinstance(a, int):
            return -1
        if isinstance(b, int):
            return 1
        return 1 if a > b else -1
    return (len(left) > len(right)) - (len(left) < len(right))


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is older than, the same as, or newer than `right`."""
    a, b = parse(left), parse(right)
    core_a, core_b = (a.major, a.minor, a.patch), (b.major, b.minor, b.patch)
    if core_a != core_b:
        return 1 if core_a > core_b else -1
    return compare_prerelease(a.prerelease, b.prerelease)
