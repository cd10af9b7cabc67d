"""RubyGems versions (Gem::Version in lib/rubygems/version.rb).

A version is cut into number and letter segments; a `-` introduces a pre-release (`1.0-rc1` is
`1.0.pre.rc1`); trailing zeros of the release and pre-release parts are ignored; a letter
segment (a pre-release) sorts before any number.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ci_gate.vulns.versions.generic import compare_segments

_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?\s*$")
_SEGMENT = re.compile(r"[0-9]+|[a-z]+", re.IGNORECASE)


def is_valid(text: str) -> bool:
    return _PATTERN.match(text) is not None


@lru_cache(maxsize=65536)
def canonical_segments(text: str) -> tuple[int | str, ...]:
    """Gem::Version#canonical_segments: trailing zeros dropped from the numeric and the letter part."""
    if not is_valid(text):
        raise ValueError(f"not a RubyGems version: {text!r}")
    version = text.strip().replace("-", ".pre.") or "0"
    segments: list[int | str] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(version)]
    string_start = next((i for i, s in enumerate(segments) if isinstance(s, str)), len(segments))
    result: list[int | str] = []
    for part in (segments[:string_start], segments[string_start:]):
        trimmed = list(part)
        while trimmed and trimmed[-1] == 0:
            trimmed.pop()
        result.extend(trimmed)
    return tuple(result)


def compare(left: str, right: str) -> int:
    """Gem::Version#<=>: -1, 0 or 1."""
    a, b = canonical_segments(left), canonical_segments(right)
    return 0 if a == b else compare_segments(a, b)
