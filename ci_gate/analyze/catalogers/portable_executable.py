"""Just enough of the PE/COFF format to read a DLL's or EXE's version resource (`VS_VERSIONINFO`).

Path: DOS header (`MZ`, e_lfanew at 0x3C) → `PE\\0\\0` and the COFF header → the optional header's
data directory 2 (resources) → the section table to map that RVA to file bytes → the three-level
resource tree (type 16 = RT_VERSION, then name, then language) → the version block, whose
`StringFileInfo` tables hold UTF-16 key/value strings (ProductName, FileVersion, ...). Every offset
is checked against the bytes held; a damaged file gives an `EvidenceError`.
"""

from __future__ import annotations

import struct

from ci_gate.analyze.catalogers.streaming import EvidenceError

_RT_VERSION = 16
_MAX_RESOURCE_ENTRIES = 4096
_MAX_BLOCKS = 10_000


class _Image:
    def __init__(self, data: bytes) -> None:
        if not data.startswith(b"MZ") or len(data) < 0x40:
            raise EvidenceError("not a PE file")
        (header_offset,) = struct.unpack_from("<I", data, 0x3C)
        if header_offset + 24 > len(data) or data[header_offset:header_offset + 4] != b"PE\0\0":
            raise EvidenceError("no PE signature where the DOS header points")
        section_count, optional_size = struct.unpack_from("<H12xH", data, header_offset + 6)
        optional = header_offset + 24
        if optional + optional_size > len(data) or optional_size < 2:
            raise EvidenceError("PE optional header truncated")
        (magic,) = struct.unpack_from("<H", data, optional)
        directories = {0x10B: 96, 0x20B: 112}.get(magic)
        if directories is None:
            raise EvidenceError(f"unknown PE optional header magic {magic:#x}")
        (directory_count,) = struct.unpack_from("<I", data, optional + directories - 4)
        self.resource_rva = self.resource_size = 0
        if directory_count > 2 and directories + 24 <= optional_size:
            self.resource_rva, self.resource_size = struct.unpack_from("<II", data, optional + directories + 16)
        self.sections: list[tuple[int, int, int, int]] = []  # address, virtual size, raw size, raw offset
        table = optional + optional_size
        if table + 40 * section_count > len(data):
            raise EvidenceError("PE section table truncated")
        for index in range(section_count):
            virtual_size, address, raw_size, raw_offset = struct.unpack_from("<IIII", data, table + 40 * index + 8)
            self.sections.append((address, virtual_size, raw_size, raw_offset))
        self.data = data

    def offset_of(self, rva: int) -> int:
        for address, virtual_size, raw_size, raw_offset in self.sections:
            if address <= rva < address + max(virtual_size, raw_size):
                return rva - address + raw_offset
        raise EvidenceError(f"PE address {rva:#x} lies in no section")

    def read(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise EvidenceError(f"PE {what} lies past the end of the bytes read; the file is truncated")
        return self.data[offset:offset + size]


def _directory_entries(image: _Image, base: int, offset: int) -> list[tuple[int, int]]:
    """(id or name offset, data offset with the subdirectory bit) of one resource directory."""
    header = image.read(base + offset, 16, "resource directory")
    named, numbered = struct.unpack_from("<HH", header, 12)
    count = named + numbered
    if count > _MAX_RESOURCE_ENTRIES:
        raise EvidenceError("implausible number of PE resource entries")
    raw = image.read(base + offset + 16, 8 * count, "resource entries")
    return [struct.unpack_from("<II", raw, 8 * index) for index in range(count)]


def _version_blocks(image: _Image) -> list[bytes]:
    """The raw VS_VERSIONINFO resources (usually one)."""
    if not image.resource_rva:
        return []
    base = image.offset_of(image.resource_rva)
    blocks: list[bytes] = []
    for type_id, type_offset in _directory_entries(image, base, 0):
        if type_id != _RT_VERSION or not type_offset & 0x80000000:
            continue
        for _, name_offset in _directory_entries(image, base, type_offset & 0x7FFFFFFF):
            language_entries = ([(0, name_offset)] if not name_offset & 0x80000000
                                else _directory_entries(image, base, name_offset & 0x7FFFFFFF))
            for _, leaf_offset in language_entries:
                if leaf_offset & 0x80000000:
                    continue  # deeper than the three levels the format has
                data_rva, size = struct.unpack_from("<II", image.read(base + leaf_offset, 16, "resource data entry"))
                blocks.append(image.read(image.offset_of(data_rva), size, "version resource"))
    return blocks


def _key_at(block: bytes, offset: int, end: int) -> tuple[str, int]:
    """A NUL-terminated UTF-16LE key starting at `offset`, and the 32-bit aligned offset after it."""
    position = offset
    while position + 1 < end and block[position:position + 2] != b"\0\0":
        position += 2
    key = block[offset:position].decode("utf-16-le", errors="replace")
    return key, (position + 2 + 3) & ~3


def _strings(block: bytes) -> dict[str, str]:
    """Every String of every StringTable of the VS_VERSIONINFO `block`."""
    found: dict[str, str] = {}
    budget = [_MAX_BLOCKS]

    def walk(offset: int, limit: int, depth: int) -> None:
        while offset + 6 <= limit and budget[0] > 0:
            budget[0] -= 1
            length, value_length, value_type = struct.unpack_from("<HHH", block, offset)
            if length < 6:
                return
            end = min(offset + length, limit)
            key, value_offset = _key_at(block, offset + 6, end)
            if depth == 0:  # VS_VERSIONINFO: skip the fixed file info, read the children
                children = (value_offset + value_length + 3) & ~3
                walk(children, end, 1)
            elif depth == 1:  # StringFileInfo (its tables) or VarFileInfo (ignored)
                if key == "StringFileInfo":
                    walk(value_offset, end, 2)
            elif depth == 2:  # a StringTable, keyed by language and code page
                walk(value_offset, end, 3)
            else:  # a String: value_length counts UTF-16 characters when the value is text
                size = value_length * 2 if value_type == 1 else value_length
                raw = block[value_offset:min(value_offset + size, end)]
                found.setdefault(key, raw.decode("utf-16-le", errors="replace").split("\0", 1)[0])
            offset = (offset + length + 3) & ~3

    walk(0, len(block), 0)
    return found


def version_strings(data: bytes) -> dict[str, str]:
    """The version resource's strings (ProductName, FileVersion, ...) of a PE file; {} if it has none."""
    image = _Image(data)
    found: dict[str, str] = {}
    for block in _version_blocks(image):
        for key, value in _strings(block).items():
            found.setdefault(key, value)
    return found
