"""The epoch prefix that Debian and RPM versions share: `[epoch:]rest`."""

from __future__ import annotations


def split_epoch(version: str, text: str, scheme: str) -> tuple[int, str]:
    """`version` as (epoch, rest), the epoch 0 when there is none; ValueError naming `scheme` and the
    original `text` when the part before the first colon is not a number."""
    head, colon, rest = version.partition(":")
    if not colon:
        return 0, version
    if not head.isdigit():
        raise ValueError(f"{scheme} epoch is not a number: {text!r}")
    return int(head), rest
