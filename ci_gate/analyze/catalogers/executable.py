"""Just enough ELF to find a named section or map a virtual address to file bytes, on untrusted input.

Go binaries keep their build info in `.go.buildinfo` (or the first writable segment) and cargo-auditable
binaries their dependency list in `.dep-v0`. Every offset read from the file is checked against the
bytes we hold, so a truncated or hostile header gives a clear `EvidenceError`, never a crash.
"""

from __future__ import annotations

import abc
import struct
from dataclasses import dataclass

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.streaming import EvidenceError, ExecutableCataloger, is_executable
from ci_gate.model import Package

ELF_MAGIC = b"\x7fELF"
_PT_LOAD = 1
_PF_WRITE = 2
_MAX_HEADERS = 4096
"""More section or program headers than this is not a real program."""

_MACHINES = {3: "386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64",
             183: "aarch64", 243: "riscv", 258: "loongarch"}
"""e_machine values named as Go's debug/elf prints them without `EM_`, lower case (syft's architecture
for binaries whose build info has no GOARCH setting)."""


def is_elf_executable(evidence: Evidence) -> bool:
    """An executable file that starts as an ELF binary does: where Go and Rust programs are looked for."""
    return is_executable(evidence) and evidence.content.startswith(ELF_MAGIC)


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    """From the section-name table, e.g. `.go.buildinfo`."""
    address: int
    """Virtual address when loaded."""
    offset: int
    """Offset of its bytes in the file."""
    size: int
    kind: int
    """sh_type: 8 (SHT_NOBITS) has no bytes in the file."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header: what the loader maps where."""

    kind: int
    """p_type: 1 (PT_LOAD) is loaded."""
    flags: int
    """p_flags: 1 execute, 2 write, 4 read."""
    offset: int
    """Offset of its bytes in the file."""
    address: int
    """Virtual address it is loaded at."""
    file_size: int
    """Bytes taken from the file."""


@dataclass(frozen=True, slots=True)
class ElfFile:
    """The headers of one ELF file, over the bytes we were given (possibly a prefix of the file)."""

    data: bytes
    """The bytes held: the whole file, or the start of it."""
    bits: int
    """32 or 64."""
    big_endian: bool
    machine: int
    """e_machine, e.g. 62 for x86-64."""
    sections: tuple[Section, ...]
    segments: tuple[Segment, ...]
    sections_missing: bool = False
    """True when the section headers lie past the bytes held (a truncated file, or a prefix read)."""

    @property
    def architecture(self) -> str:
        return _MACHINES.get(self.machine, str(self.machine))

    def section(self, name: str) -> Section | None:
        return next((section for section in self.sections if section.name == name), None)

    def section_bytes(self, section: Section, limit: int | None = None) -> bytes:
        """A section's bytes (at most `limit`); EvidenceError when the file we hold ends before them."""
        size = section.size if limit is None else min(section.size, limit)
        return self.read_at(section.offset, size, f"section {section.name}")

    def read_at(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0:
            raise EvidenceError(f"{what} has a negative offset or size; the ELF headers are damaged")
        if offset + size > len(self.data):
            raise EvidenceError(f"{what} lies past the end of the bytes read ({offset + size:,} > "
                                f"{len(self.data):,}); the binary is truncated or too large")
        return self.data[offset:offset + size]

    def read_address(self, address: int, size: int, what: str) -> bytes:
        """Bytes at a virtual address, through the loadable segments (as the loader maps them)."""
        for segment in self.segments:
            if segment.kind == _PT_LOAD and segment.address <= address < segment.address + segment.file_size:
                available = segment.address + segment.file_size - address
                return self.read_at(segment.offset + address - segment.address, min(size, available), what)
        raise EvidenceError(f"{what} points to address {address:#x}, outside every loadable segment")

    def writable_data(self) -> tuple[int, int] | None:
        """Offset and size of the first writable loadable segment (where old Go linkers put build info)."""
        for segment in self.segments:
            if segment.kind == _PT_LOAD and segment.flags & _PF_WRITE:
                return segment.offset, segment.file_size
        return None


def parse_elf(data: bytes) -> ElfFile:
    """The ELF headers of `data`; EvidenceError when they are missing, truncated or inconsistent."""
    if not data.startswith(ELF_MAGIC):
        raise EvidenceError("not an ELF file")
    if len(data) < 52:
        raise EvidenceError("ELF header truncated")
    bits = {1: 32, 2: 64}.get(data[4])
    if bits is None:
        raise EvidenceError(f"unknown ELF class {data[4]}")
    big_endian = data[5] == 2
    order = ">" if big_endian else "<"
    if bits == 64:
        if len(data) < 64:
            raise EvidenceError("ELF header truncated")
        (machine,) = struct.unpack_from(order + "H", data, 18)
        program_offset, section_offset = struct.unpack_from(order + "QQ", data, 32)
        program_size, program_count, section_size, section_count, names_index = struct.unpack_from(
            order + "HHHHH", data, 54)
    else:
        (machine,) = struct.unpack_from(order + "H", data, 18)
        program_offset, section_offset = struct.unpack_from(order + "II", data, 28)
        program_size, program_count, section_size, section_count, names_index = struct.unpack_from(
            order + "HHHHH", data, 42)
    if program_count > _MAX_HEADERS or section_count > _MAX_HEADERS:
        raise EvidenceError("implausible number of ELF headers")
    segments = _segments(data, bits, order, program_offset, program_size, program_count)
    sections = _sections(data, bits, order, section_offset, section_size, section_count, names_index)
    if sections is None:
        return ElfFile(data, bits, big_endian, machine, (), segments, sections_missing=True)
    return ElfFile(data, bits, big_endian, machine, sections, segments)


def _segments(data: bytes, bits: int, order: str, offset: int, entry_size: int,
              count: int) -> tuple[Segment, ...]:
    minimum = 56 if bits == 64 else 32
    if count == 0:
        return ()
    if entry_size < minimum or offset + entry_size * count > len(data):
        raise EvidenceError("ELF program headers lie past the bytes read; the binary is truncated")
    segments: list[Segment] = []
    for index in range(count):
        start = offset + index * entry_size
        if bits == 64:
            kind, flags, file_offset, address, _, file_size = struct.unpack_from(
                order + "IIQQQQ", data, start)
        else:
            kind, file_offset, address, _, file_size, _, flags = struct.unpack_from(
                order + "IIIIIII", data, start)
        segments.append(Segment(kind, flags, file_offset, address, file_size))
    return tuple(segments)


def _sections(data: bytes, bits: int, order: str, offset: int, entry_size: int, count: int,
              names_index: int) -> tuple[Section, ...] | None:
    minimum = 64 if bits == 64 else 40
    if count == 0 or offset == 0:
        return ()
    if entry_size < minimum or offset + entry_size * count > len(data):
        # Section headers sit at the end of the file: a truncated file, or a prefix read, lacks them.
        return None
    raw: list[tuple[int, int, int, int, int]] = []
    for index in range(count):
        start = offset + index * entry_size
        if bits == 64:
            name, kind, _, address, file_offset, size = struct.unpack_from(order + "IIQQQQ", data, start)
        else:
            name, kind, _, address, file_offset, size = struct.unpack_from(order + "IIIIII", data, start)
        raw.append((name, kind, address, file_offset, size))
    names = b""
    if 0 < names_index < count:
        _, _, _, names_offset, names_size = raw[names_index]
        names = data[names_offset:names_offset + min(names_size, 1024 * 1024)]
    sections: list[Section] = []
    for name_offset, kind, address, file_offset, size in raw:
        end = names.find(b"\0", name_offset) if name_offset < len(names) else -1
        name = names[name_offset:end].decode("ascii", errors="replace") if end >= 0 else ""
        sections.append(Section(name, address, file_offset, size, kind))
    return tuple(sections)


class ElfProgramCataloger(ExecutableCataloger):
    """A cataloger of ELF programs that hold `marker` (Go's build info, cargo-auditable's section): every
    executable of the image reaches `parse`, so the cheap tests come first, and only a program that
    holds the marker has its ELF headers read."""

    marker: bytes
    """Bytes every program of this kind holds."""

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        if not is_elf_executable(evidence):
            return []
        if self.marker not in evidence.content:
            self.check_unmarked(evidence)
            return []
        return self.parse_program(parse_elf(evidence.content), evidence, context)

    def check_unmarked(self, evidence: Evidence) -> None:
        """An ELF program without the marker is not one of ours, unless the marker may lie beyond the
        bytes read: then raise EvidenceError saying so."""

    @abc.abstractmethod
    def parse_program(self, elf: ElfFile, evidence: Evidence, context: CatalogContext) -> list[Package]:
        """The packages of a program that holds the marker."""
