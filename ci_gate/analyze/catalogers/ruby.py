"""Installed Ruby gems: `specifications/*.gemspec`, the Ruby files RubyGems writes for each gem.

A gemspec is Ruby code, never run here. Like syft's ruby-installed-gemspec-cataloger we read the
assignment lines RubyGems generates (`s.name = "rack".freeze`, `s.version = "2.2.4"`,
`s.licenses = ["MIT".freeze]`, ...), after dropping `.freeze` and turning `\\uXXXX` escapes into text.
"""

from __future__ import annotations

import re

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.streaming import EvidenceError, StreamingCataloger, location_of
from ci_gate.model import Package

_SCALAR_FIELDS = ("name", "version", "homepage")
_LIST_FIELDS = ("files", "authors", "licenses")
_SCALAR_PATTERNS = {field: re.compile(rf".*\.{field}\s*=\s*[\"'](?P<value>.*)[\"'] *")
                    for field in _SCALAR_FIELDS}
_LIST_PATTERNS = {field: re.compile(rf".*\.{field}\s*=\s*\[(?P<value>.*)] *") for field in _LIST_FIELDS}
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-F]{4})")


def _render_escapes(text: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


def _split_list(text: str) -> list[str]:
    return [item.strip().strip("\"' ") for item in text.split(",") if item.strip().strip("\"' ")]


def parse_gemspec(text: str) -> dict[str, str | list[str]]:
    """The fields RubyGems writes as simple assignments; the first matching field wins on each line."""
    fields: dict[str, str | list[str]] = {}
    for raw_line in text.splitlines():
        line = _render_escapes(raw_line.strip().replace(".freeze", ""))
        if not line:
            continue
        for field, pattern in _SCALAR_PATTERNS.items():
            match = pattern.search(line)
            if match and match.group("value"):
                fields[field] = match.group("value")
                break
        else:
            for field, pattern in _LIST_PATTERNS.items():
                match = pattern.search(line)
                if match and match.group("value"):
                    fields[field] = _split_list(match.group("value"))
                    break
    return fields


class GemSpecCataloger(StreamingCataloger):
    name = "ruby-installed-gemspec-cataloger"
    patterns = ("*/specifications/*.gemspec",)
    max_bytes = 4 * 1024 * 1024

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        if evidence.truncated:
            raise EvidenceError(f"larger than {self.max_bytes:,} bytes; not a generated gemspec")
        fields = parse_gemspec(evidence.content.decode("utf-8", errors="replace"))
        name, version = fields.get("name"), fields.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            return []
        licenses = fields.get("licenses", [])
        metadata: dict[str, object] = {"name": name, "version": version}
        for field in ("homepage", "authors", "files"):
            if field in fields:
                metadata[field] = fields[field]
        return [self.package(name, version, "gem", location_of(evidence, context), metadata,
                             tuple(licenses) if isinstance(licenses, list) else (licenses,))]
