"""Rust crates compiled into binaries built with `cargo auditable`.

cargo-auditable stores the dependency tree as zlib-compressed JSON in the ELF section `.dep-v0`:
`{"packages": [{"name", "version", "source", "kind", "dependencies": [indices], "root"}]}`, where
`kind` is `runtime` (the default) or `build`. Like syft's cargo-auditable-binary-cataloger we report
the runtime crates, the root crate (the program itself) included, and leave build-time ones out.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from ci_gate.analyze.catalogers.executable import ElfFile, ElfProgramCataloger
from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.streaming import EvidenceError, location_of
from ci_gate.model import Package

SECTION_NAME = ".dep-v0"
_MAX_COMPRESSED = 8 * 1024 * 1024
_MAX_JSON = 32 * 1024 * 1024
"""A dependency list inflating past this is a zip bomb, not a real program's crates."""


def inflate_bounded(compressed: bytes, limit: int = _MAX_JSON) -> bytes:
    """zlib-decompress at most `limit` bytes; EvidenceError beyond it or on corrupt data."""
    inflater = zlib.decompressobj()
    try:
        output = inflater.decompress(compressed, limit + 1)
    except zlib.error as error:
        raise EvidenceError(f"{SECTION_NAME} is not valid zlib data ({error})") from None
    if len(output) > limit or inflater.unconsumed_tail:
        raise EvidenceError(f"{SECTION_NAME} inflates past {limit:,} bytes; refusing a decompression bomb")
    if not inflater.eof:
        raise EvidenceError(f"{SECTION_NAME} ends before its zlib stream does; the binary is truncated")
    return output


class CargoAuditableBinaryCataloger(ElfProgramCataloger):
    name = "cargo-auditable-binary-cataloger"
    marker = SECTION_NAME.encode()
    """The section name sits in the section-name table of every auditable binary."""

    def parse_program(self, elf: ElfFile, evidence: Evidence, context: CatalogContext) -> list[Package]:
        if elf.sections_missing:
            raise EvidenceError("the ELF section headers lie past the bytes read (truncated or larger than "
                                f"{self.max_bytes:,} bytes); the {SECTION_NAME} section cannot be found")
        section = elf.section(SECTION_NAME)
        if section is None:
            return []
        if section.size > _MAX_COMPRESSED:
            raise EvidenceError(f"{SECTION_NAME} is {section.size:,} bytes; larger than any real "
                                "dependency list")
        document = self._document(inflate_bounded(elf.section_bytes(section)))
        location = location_of(evidence, context)
        packages: list[Package] = []
        for entry in document:
            name, version = entry.get("name"), entry.get("version")
            if not isinstance(name, str) or not name or not isinstance(version, str):
                continue
            if entry.get("kind", "runtime") != "runtime":
                continue
            metadata = {"name": name, "version": version, "source": str(entry.get("source", "")),
                        "root": bool(entry.get("root", False))}
            packages.append(self.package(name, version, "rust-crate", location, metadata))
        return packages

    @staticmethod
    def _document(raw: bytes) -> list[dict[str, Any]]:
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise EvidenceError(f"{SECTION_NAME} does not hold JSON ({error})") from None
        packages = document.get("packages") if isinstance(document, dict) else None
        if not isinstance(packages, list):
            raise EvidenceError(f"{SECTION_NAME} JSON has no `packages` list")
        return [entry for entry in packages if isinstance(entry, dict)]
