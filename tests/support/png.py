"""A minimal PNG reader for screenshot checks (8-bit RGB/RGBA, not interlaced: what Chromium writes).

The browser tests look at pixels (is the page blank, is the verdict banner the verdict's colour)
without an imaging library: zlib and the five PNG row filters are all it takes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]
    """Unfiltered rows, `channels` bytes per pixel."""

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        offset = x * self.channels
        red, green, blue = self.rows[y][offset : offset + 3]
        return red, green, blue

    def colours(self, box: tuple[int, int, int, int] | None = None, step: int = 3) -> dict[tuple[int, int, int], int]:
        """How often each colour occurs in `box` (left, top, right, bottom), sampling every `step` pixels."""
        left, top, right, bottom = box or (0, 0, self.width, self.height)
        counts: dict[tuple[int, int, int], int] = {}
        for y in range(max(top, 0), min(bottom, self.height), step):
            for x in range(max(left, 0), min(right, self.width), step):
                colour = self.pixel(x, y)
                counts[colour] = counts.get(colour, 0) + 1
        return counts


def read_png(data: bytes) -> Image:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    position = len(SIGNATURE)
    compressed = bytearray()
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                estimate = left + up - up_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
                line[i] = (line[i] + (left, up, up_left)[distances.index(min(distances))]) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)
