"""Python package versions (PEP 440), through `packaging`, the PyPA's own implementation."""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion, Version


@lru_cache(maxsize=65536)
def parse(text: str) -> Version:
    """The PEP 440 version; ValueError when `text` is not one."""
    try:
        return Version(text)
    except InvalidVersion as error:
        raise ValueError(f"not a PEP 440 version: {text!r}") from error


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is older than, the same as, or newer than `right`."""
    a, b = parse(left), parse(right)
    return (a > b) - (a < b)
