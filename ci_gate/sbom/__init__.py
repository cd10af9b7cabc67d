"""SBOMs out (CycloneDX JSON, SPDX 2.3 JSON) and in (syft JSON, CycloneDX, SPDX as an image source)."""

from __future__ import annotations


def unique_name(base: str, used: set[str]) -> str:
    """`base`, else `base-2`, `base-3`, ...: the first one not in `used`, which it joins (SPDX ids, bom-refs)."""
    name = base
    number = 1
    while name in used:
        number += 1
        name = f"{base}-{number}"
    used.add(name)
    return name
