"""Compression of held evidence (see `PackedEvidence`): fast, and never a bomb of its own.

The bytes compressed here were read from the image by us, and are inflated back to exactly that
length, so inflating them cannot exceed what was read."""

from __future__ import annotations

import zlib
from typing import Any

_codec: Any
try:
    from isal import isal_zlib  # ISA-L: several times faster than zlib at level 1, same format

    _codec = isal_zlib
    _LEVEL = 1
except ImportError:  # pragma: no cover - isal has wheels for every platform we support
    _codec = zlib
    _LEVEL = 1


def deflate(data: bytes) -> bytes:
    return bytes(_codec.compress(data, _LEVEL))


def inflate(packed: bytes, length: int) -> bytes:
    """The `length` bytes `deflate` packed (the size given up front: one allocation, no regrowing)."""
    return bytes(_codec.decompress(packed, 15, max(length, 1)))
