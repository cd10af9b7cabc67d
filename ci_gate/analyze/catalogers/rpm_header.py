"""RPM header blobs, the records every rpm database backend stores, parsed in pure Python.

A header blob as the database keeps it (without the 8-byte magic an .rpm file puts before it):

    il  uint32 BE   number of index entries
    dl  uint32 BE   length of the data store
    il x { tag int32, type uint32, offset int32, count uint32 }   (big-endian, 16 bytes each)
    dl bytes of data store

Each entry's value lives at `offset` in the data store: strings NUL-terminated, string arrays as
`count` NUL-terminated strings, integers big-endian. See rpm's lib/header.c and the RPM file-format
chapter of the LSB (`Package File Format`, "Header Structure").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Tags (rpmtag.h).
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SUMMARY = 1004
TAG_SIZE = 1009
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_PROVIDENAME = 1047
TAG_REQUIRENAME = 1049
TAG_LONGSIZE = 5009
TAG_MODULARITYLABEL = 5096

# Types (rpmtag.h rpmTagType_e).
TYPE_NULL = 0
TYPE_CHAR = 1
TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

MAX_HEADER_BYTES = 256 * 1024 * 1024
"""rpm's own limit on one header (hdrblob's headerMaxbytes)."""
MAX_INDEX_ENTRIES = 0xFFFF * 4
_ENTRY = struct.Struct(">iIiI")
_INTEGER_FORMATS = {TYPE_INT8: ">b", TYPE_INT16: ">h", TYPE_INT32: ">i", TYPE_INT64: ">q", TYPE_CHAR: ">B"}


class HeaderError(ValueError):
    """The blob is not a readable RPM header."""


@dataclass(frozen=True)
class RpmHeader:
    """The fields of one installed package's header that a package inventory needs."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str = ""
    source_rpm: str = ""
    """The source package file, e.g. `bash-5.1.8-9.el9.src.rpm`; empty when the header has none."""
    license: str = ""
    vendor: str = ""
    summary: str = ""
    size: int | None = None
    modularity_label: str = ""
    provides: tuple[str, ...] = field(default=())
    requires: tuple[str, ...] = field(default=())


def _strings(store: bytes, offset: int, count: int) -> list[str]:
    values = []
    position = offset
    for _ in range(count):
        end = store.find(b"\x00", position)
        if end < 0:
            raise HeaderError("a string runs past the end of the data store")
        values.append(store[position:end].decode("utf-8", errors="replace"))
        position = end + 1
    return values


def parse_header(blob: bytes) -> RpmHeader:
    """The package described by one header blob; HeaderError when it cannot be read."""
    if len(blob) < 8:
        raise HeaderError(f"{len(blob)} bytes is too short for a header")
    index_length, data_length = struct.unpack_from(">II", blob, 0)
    if not 0 < index_length <= MAX_INDEX_ENTRIES:
        raise HeaderError(f"implausible index entry count {index_length}")
    data_start = 8 + 16 * index_length
    if data_start + data_length > min(len(blob), MAX_HEADER_BYTES) or data_length > MAX_HEADER_BYTES:
        raise HeaderError(
            f"the header claims {index_length} entries and {data_length} data bytes, more than its "
            f"{len(blob)} bytes"
        )
    store = blob[data_start : data_start + data_length]
    values: dict[int, list[str] | list[int]] = {}
    for number in range(index_length):
        tag, kind, offset, count = _ENTRY.unpack_from(blob, 8 + 16 * number)
        # Each tag once: a hostile index repeating one tag must not make the work quadratic.
        if tag not in _WANTED or tag in values or offset < 0 or offset >= data_length or count == 0:
            continue
        if kind in (TYPE_STRING, TYPE_I18NSTRING):
            values[tag] = _strings(store, offset, 1)
        elif kind == TYPE_STRING_ARRAY:
            values[tag] = _strings(store, offset, min(count, data_length))
        elif kind in _INTEGER_FORMATS:
            item = struct.Struct(_INTEGER_FORMATS[kind])
            if offset + item.size * count > data_length:
                raise HeaderError(f"tag {tag} runs past the end of the data store")
            values[tag] = [item.unpack_from(store, offset + item.size * i)[0] for i in range(count)]

    def text(tag: int) -> str:
        found = values.get(tag)
        return str(found[0]) if found and isinstance(found[0], str) else ""

    def integer(tag: int) -> int | None:
        found = values.get(tag)
        return found[0] if found and isinstance(found[0], int) else None

    name = text(TAG_NAME)
    if not name:
        raise HeaderError("the header has no package name")
    source_rpm = text(TAG_SOURCERPM)
    size = integer(TAG_LONGSIZE)
    return RpmHeader(
        name=name,
        version=text(TAG_VERSION),
        release=text(TAG_RELEASE),
        epoch=integer(TAG_EPOCH),
        arch=text(TAG_ARCH),
        source_rpm="" if source_rpm == "(none)" else source_rpm,
        license=text(TAG_LICENSE),
        vendor=text(TAG_VENDOR),
        summary=text(TAG_SUMMARY),
        size=size if size is not None else integer(TAG_SIZE),
        modularity_label=text(TAG_MODULARITYLABEL),
        provides=tuple(str(value) for value in values.get(TAG_PROVIDENAME, [])),
        requires=tuple(str(value) for value in values.get(TAG_REQUIRENAME, [])),
    )


_WANTED = frozenset(
    {
        TAG_NAME,
        TAG_VERSION,
        TAG_RELEASE,
        TAG_EPOCH,
        TAG_SUMMARY,
        TAG_SIZE,
        TAG_VENDOR,
        TAG_LICENSE,
        TAG_ARCH,
        TAG_SOURCERPM,
        TAG_PROVIDENAME,
        TAG_REQUIRENAME,
        TAG_LONGSIZE,
        TAG_MODULARITYLABEL,
    }
)


def build_header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """A header blob from (tag, type, encoded value, count) entries — used to make test databases
    and kept beside the parser so the two describe one format."""
    store = bytearray()
    index = bytearray()
    for tag, kind, value, count in entries:
        if kind == TYPE_INT32:
            while len(store) % 4:
                store.append(0)
        index += _ENTRY.pack(tag, kind, len(store), count)
        store += value
    return struct.pack(">II", len(entries), len(store)) + bytes(index) + bytes(store)
