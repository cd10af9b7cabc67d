"""RPM versions: `[epoch:]version[-release]`, compared with rpmvercmp (rpmio/rpmvercmp.c).

Each part is cut into alternating digit and letter segments (other characters only separate);
digits compare as numbers and beat letters; `~` sorts before anything, even the end, and `^`
sorts after the end but before any further segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ci_gate.vulns.versions.epoch import split_epoch


@dataclass(frozen=True, slots=True)
class RpmVersion:
    """A parsed epoch:version-release."""

    epoch: int
    """0 when the version names none (what rpm assumes for a direct comparison)."""
    version: str
    release: str
    """Empty when the text has no release."""


@lru_cache(maxsize=65536)
def parse(text: str) -> RpmVersion:
    """Split `[epoch:]version[-release]`; ValueError for an empty or malformed text."""
    value = text.strip()
    if not value:
        raise ValueError("empty RPM version")
    epoch, value = split_epoch(value, text, "RPM")
    version, _, release = value.rpartition("-")
    if not version:
        version, release = value, ""
    return RpmVersion(epoch, version, release)


def _is_alnum(character: str) -> bool:
    return character.isascii() and character.isalnum()


def vercmp(left: str, right: str) -> int:
    """rpmvercmp on one part (a version or a release): -1, 0 or 1."""
    if left == right:
        return 0
    one, two = left, right
    i = j = 0
    while i < len(one) or j < len(two):
        while i < len(one) and not _is_alnum(one[i]) and one[i] not in "~^":
            i += 1
        while j < len(two) and not _is_alnum(two[j]) and two[j] not in "~^":
            j += 1
        one_tilde = i < len(one) and one[i] == "~"
        two_tilde = j < len(two) and two[j] == "~"
        if one_tilde or two_tilde:
            if not one_tilde:
                return 1
            if not two_tilde:
                return -1
            i += 1
            j += 1
            continue
        one_caret = i < len(one) and one[i] == "^"
        two_caret = j < len(two) and two[j] == "^"
        if one_caret or two_caret:
            if i >= len(one):
                return -1
            if j >= len(two):
                return 1
            if not one_caret:
                return 1
            if not two_caret:
                return -1
            i += 1
            j += 1
            continue
        if i >= len(one) or j >= len(two):
            break
        numeric = one[i].isdigit()
        kind = str.isdigit if numeric else str.isalpha
        start_one, start_two = i, j
        while i < len(one) and one[i].isascii() and kind(one[i]):
            i += 1
        while j < len(two) and two[j].isascii() and kind(two[j]):
            j += 1
        segment_one, segment_two = one[start_one:i], two[start_two:j]
        if not segment_two:
            # A number is newer than letters; letters older than a number.
            return 1 if numeric else -1
        if numeric:
            segment_one, segment_two = segment_one.lstrip("0"), segment_two.lstrip("0")
            if len(segment_one) != len(segment_two):
                return 1 if len(segment_one) > len(segment_two) else -1
        if segment_one != segment_two:
            return 1 if segment_one > segment_two else -1
    if i >= len(one) and j >= len(two):
        return 0
    return -1 if i >= len(one) else 1


def compare(left: str, right: str) -> int:
    """Compare two `[epoch:]version[-release]` texts: epoch, then version, then release."""
    a, b = parse(left), parse(right)
    if a.epoch != b.epoch:
        return 1 if a.epoch > b.epoch else -1
    result = vercmp(a.version, b.version)
    if result or not a.release or not b.release:
        # A missing release matches any release, as rpm does for `>= 1.0`-style constraints.
        return result
    return vercmp(a.release, b.release)
