"""Small ELF files built from the format (System V gABI), for build-info layouts no installed tool makes.

`elf_with_data` writes an ELF64 little-endian executable with one writable PT_LOAD segment holding
`data` at `DATA_ADDRESS`, and optionally named sections (with a section-name table), which is
where Go's linker puts the build info and cargo-auditable its `.dep-v0` section.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

DATA_OFFSET = 0x1000
DATA_ADDRESS = 0x500000
_PT_LOAD = 1
_PF_READ_WRITE = 6
_SHT_PROGBITS = 1
_SHT_STRTAB = 3
_EM_X86_64 = 62
_GO_MODULE_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
_GO_MODULE_END = bytes.fromhex("f932433186182072008242104116d8f2")


def elf_with_data(data: bytes, sections: Mapping[str, bytes] | None = None) -> bytes:
    """An ELF64 LE file: header, one RW PT_LOAD at DATA_OFFSET/DATA_ADDRESS, then named sections."""
    body = bytearray(DATA_OFFSET)
    body += data
    section_records: list[tuple[int, int, int, int, int]] = []  # name offset, type, address, offset, size
    names = bytearray(b"\0")
    for name, content in (sections or {}).items():
        name_offset = len(names)
        names += name.encode() + b"\0"
        offset = len(body)
        body += content
        section_records.append((name_offset, _SHT_PROGBITS, 0, offset, len(content)))
    shstrtab_name = len(names)
    names += b".shstrtab\0"
    names_offset = len(body)
    body += names
    section_records.append((shstrtab_name, _SHT_STRTAB, 0, names_offset, len(names)))
    while len(body) % 8:
        body.append(0)
    section_header_offset = len(body)
    body += bytes(64)  # the null section
    for name_offset, kind, address, offset, size in section_records:
        body += struct.pack("<IIQQQQIIQQ", name_offset, kind, 0, address, offset, size, 0, 0, 1, 0)
    section_count = len(section_records) + 1
    program_header = struct.pack("<IIQQQQQQ", _PT_LOAD, _PF_READ_WRITE, DATA_OFFSET, DATA_ADDRESS, DATA_ADDRESS,
                                 len(data), len(data), 0x1000)
    header = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
              + struct.pack("<HHIQQQIHHHHHH", 2, _EM_X86_64, 1, DATA_ADDRESS, 64, section_header_offset, 0,
                            64, 56, 1, 64, section_count, section_count - 1))
    body[0:64] = header
    body[64:64 + 56] = program_header
    return bytes(body)


def go_module_text(lines: list[str]) -> bytes:
    """The module text as the Go linker frames it: 16-byte sentinels around newline-ended lines."""
    return _GO_MODULE_START + ("\n".join(lines) + "\n").encode() + _GO_MODULE_END


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def go_inline_build_info(go_version: str, module_text: bytes) -> bytes:
    """Go 1.18+ layout: the 32-byte header (flag 2 = inline), then varint-prefixed version and modules."""
    header = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    return (header + _uvarint(len(go_version)) + go_version.encode() + _uvarint(len(module_text))
            + module_text)


def go_pointer_build_info(go_version: str, module_text: bytes) -> bytes:
    """Go 1.13-1.17 layout: the header holds pointers to two Go string headers (data address, length)."""
    version_header_at = DATA_ADDRESS + 32
    module_header_at = DATA_ADDRESS + 48
    version_data_at = DATA_ADDRESS + 64
    module_data_at = version_data_at + len(go_version)
    header = b"\xff Go buildinf:" + bytes([8, 0]) + struct.pack("<QQ", version_header_at, module_header_at)
    string_headers = struct.pack("<QQQQ", version_data_at, len(go_version), module_data_at, len(module_text))
    return header + string_headers + go_version.encode() + module_text
