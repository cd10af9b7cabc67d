"""Debian package versions (deb-version(7)): `[epoch:]upstream[-revision]`.

The comparison follows dpkg's `verrevcmp` in lib/dpkg/version.c: epochs numerically, then the
upstream version, then the revision, each by alternating non-digit runs (letters before other
characters, `~` before everything, even the end of the string) and digit runs compared as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ci_gate.vulns.versions.epoch import split_epoch


@dataclass(frozen=True, slots=True)
class DebianVersion:
    """A parsed Debian version."""

    epoch: int
    """The number before the first colon, 0 when there is none."""
    upstream: str
    """The upstream part (between the epoch and the last hyphen)."""
    revision: str
    """The Debian revision after the last hyphen, empty when there is none."""


@lru_cache(maxsize=65536)
def parse(text: str) -> DebianVersion:
    """Split a version into epoch, upstream and revision; ValueError when it is not one."""
    version = text.strip()
    if not version or any(character.isspace() for character in version):
        raise ValueError(f"not a Debian version: {text!r}")
    epoch, version = split_epoch(version, text, "Debian version")
    upstream, separator, revision = version.rpartition("-")
    if not separator:
        upstream, revision = version, ""
    if not upstream or (separator and not revision):
        raise ValueError(f"not a Debian version: {text!r}")
    return DebianVersion(epoch, upstream, revision)


def _order(character: str) -> int:
    """dpkg's character weight: `~` lowest, digits/end 0, letters by code, other symbols after letters."""
    if not character or character.isdigit():
        return 0
    if character.isascii() and character.isalpha():
        return ord(character)
    if character == "~":
        return -1
    return ord(character) + 256


def _compare_part(left: str, right: str) -> int:
    i = j = 0
    while i < len(left) or j < len(right):
        first_difference = 0
        while (i < len(left) and not left[i].isdigit()) or (j < len(right) and not right[j].isdigit()):
            left_weight = _order(left[i] if i < len(left) else "")
            right_weight = _order(right[j] if j < len(right) else "")
            if left_weight != right_weight:
                return left_weight - right_weight
            i += 1
            j += 1
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while i < len(left) and left[i].isdigit() and j < len(right) and right[j].isdigit():
            if not first_difference:
                first_difference = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < len(left) and left[i].isdigit():
            return 1
        if j < len(right) and right[j].isdigit():
            return -1
        if first_difference:
            return first_difference
    return 0


def _sign(number: int) -> int:
    return (number > 0) - (number < 0)


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is older than, the same as, or newer than `right`."""
    a, b = parse(left), parse(right)
    if a.epoch != b.epoch:
        return _sign(a.epoch - b.epoch)
    return _sign(_compare_part(a.upstream, b.upstream)) or _sign(_compare_part(a.revision, b.revision))
