"""A fallback ordering for ecosystems without a dedicated scheme (NuGet, Packagist, Hex, Pub, ...).

Numbers compare numerically, letters lexically, a letter run (a pre-release tag) before a
number, missing parts as zero. It is used only for ranges; explicit `versions[]` lists in OSV
records stay exact matches whatever the scheme.
"""

from __future__ import annotations

import re
from functools import lru_cache

_PART = re.compile(r"\d+|[a-zA-Z]+")


@lru_cache(maxsize=65536)
def _parts(text: str) -> tuple[int | str, ...]:
    version = text.strip().lstrip("vV")
    version = version.split("+", 1)[0]
    parts: list[int | str] = [int(p) if p.isdigit() else p.lower() for p in _PART.findall(version)]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def compare(left: str, right: str) -> int:
    return compare_segments(_parts(left), _parts(right))


def compare_segments(a: tuple[int | str, ...], b: tuple[int | str, ...]) -> int:
    """Segment by segment: numbers numerically, strings lexically, a string before a number,
    missing segments as 0 (the RubyGems rule, which the fallback shares)."""
    for index in range(max(len(a), len(b))):
        x: int | str = a[index] if index < len(a) else 0
        y: int | str = b[index] if index < len(b) else 0
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, int):
            return -1
        if isinstance(x, int) and isinstance(y, str):
            return 1
        return 1 if x > y else -1  # type: ignore[operator]
    return 0
