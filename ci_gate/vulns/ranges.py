"""OSV's rule for whether a version is affected (ossf/osv-schema "Evaluation").

A version is affected when it is listed in `versions[]`, or inside a range — events sorted by
version, `introduced` opens, `fixed` closes (v >= fixed is safe), `last_affected` closes after it,
`limit` bounds the range. `GIT` ranges are ignored (they need the repository). A version the
scheme cannot read raises CannotCompare: undecided, never a match and never a silent miss.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ci_gate.vulns.records import AffectedPackage, Range
from ci_gate.vulns.versions import comparator


class CannotCompare(ValueError):
    """A version the scheme cannot read: the affected entry is undecided, not matched."""


def _sort_key(compare: Callable[[str, str], int]) -> Callable[[tuple[str, str]], Any]:
    def order(a: tuple[str, str], b: tuple[str, str]) -> int:
        if a[1] == b[1]:
            return 0
        if a[1] == "0" and a[0] == "introduced":
            return -1
        if b[1] == "0" and b[0] == "introduced":
            return 1
        return compare(a[1], b[1])

    return functools.cmp_to_key(order)


def range_contains(version: str, range_: Range, compare: Callable[[str, str], int]) -> tuple[bool, tuple[str, ...]]:
    """Whether `version` is inside the range, and the range's fixed versions above it.

    Raises CannotCompare when a version cannot be read by the scheme."""
    try:
        events_in = range_.events
        if len(events_in) <= 2 and events_in and events_in[0][0] == "introduced" and (
            len(events_in) == 1 or events_in[1][0] in ("fixed", "last_affected")
        ):
            # The common shape, [introduced] or [introduced, fixed|last_affected]: no sorting needed.
            introduced = events_in[0][1]
            if introduced != "0" and compare(version, introduced) < 0:
                return False, ()
            if len(events_in) == 2:
                kind, bound = events_in[1]
                order = compare(version, bound)
                if (kind == "fixed" and order >= 0) or (kind == "last_affected" and order > 0):
                    return False, ()
                return True, (bound,) if kind == "fixed" else ()
            return True, ()
        limits = [v for kind, v in range_.events if kind == "limit" and v != "*"]
        if limits and not any(compare(version, limit) < 0 for limit in limits):
            return False, ()
        events = sorted((e for e in range_.events if e[0] != "limit"), key=_sort_key(compare))
        vulnerable = False
        for kind, event_version in events:
            if kind == "introduced":
                if event_version == "0" or compare(version, event_version) >= 0:
                    vulnerable = True
            elif kind == "fixed":
                if compare(version, event_version) >= 0:
                    vulnerable = False
            elif kind == "last_affected" and compare(version, event_version) > 0:
                vulnerable = False
        if not vulnerable:
            return False, ()
        fixed = tuple(v for kind, v in range_.events if kind == "fixed" and compare(version, v) < 0)
        return True, fixed
    except ValueError as error:
        raise CannotCompare(str(error)) from None


def is_affected(version: str, affected: AffectedPackage, scheme: str) -> tuple[bool, tuple[str, ...]]:
    """OSV's evaluation for one affected entry: (affected?, fixed versions that would cure it)."""
    compare = comparator(scheme)
    listed = version in affected.versions
    undecided: CannotCompare | None = None
    for range_ in affected.ranges:
        if range_.type == "GIT":
            continue
        range_compare = compare
        if range_.type == "SEMVER" and scheme not in ("go", "semver"):
            range_compare = comparator("semver")
        try:
            inside, fixed = range_contains(version, range_, range_compare)
        except CannotCompare as error:
            undecided = error
            continue
        if inside:
            return True, fixed
    if listed:
        return True, affected.fixed_versions
    if undecided is not None and not affected.versions:
        raise undecided
    return False, ()
