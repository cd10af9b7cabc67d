"""The vulnerability records the store keeps, and how an OSV document becomes one.

These frozen dataclasses cross the boundary between the store, the importers, matching and the
vulnerabilities gate. `from_osv` is the one place that reads OSV's schema
(ossf/osv-schema docs/schema.md); it raises `InvalidRecord` for documents the store cannot use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from ci_gate.json_fields import optional_list
from ci_gate.vulns.cvss import SEVERITIES, CvssScore, score_vector, severity_for_score


class InvalidRecord(ValueError):
    """An OSV document that is not a usable vulnerability record (skipped and counted on import)."""


@dataclass(frozen=True, slots=True)
class Severity:
    """One severity statement of a record or of one affected package."""

    type: str
    """OSV's type: CVSS_V2, CVSS_V3, CVSS_V4, Ubuntu, or a vendor label type."""
    score: str
    """The vector (CVSS) or label (Ubuntu priority, vendor severity) as published."""
    base_score: float | None = None
    """The CVSS base score computed from the vector; None for labels and unreadable vectors."""
    exploitability_score: float | None = None
    impact_score: float | None = None
    version: str = ""
    """CVSS version of the vector (2.0, 3.0, 3.1, 4.0), empty for labels."""


@dataclass(frozen=True, slots=True)
class Range:
    """One OSV range: a type and its events, in the order published."""

    type: str
    """SEMVER, ECOSYSTEM or GIT."""
    events: tuple[tuple[str, str], ...]
    """(kind, version) pairs: kind is introduced, fixed, last_affected or limit."""


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """One `affected[]` entry: which package of which ecosystem, and which of its versions."""

    ecosystem: str
    """As published, e.g. `Debian:12`, `Alpine:v3.19`, `PyPI`."""
    name: str
    """The package name as published (for distros: the source package)."""
    normalized_name: str
    """The lookup key: see `normalize_name`."""
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    """Explicitly listed affected versions."""
    severity: str = ""
    """The vendor's severity for this package (ecosystem_specific severity/urgency), lower-case."""
    severities: tuple[Severity, ...] = ()
    """Per-package CVSS statements (`affected[].severity`), the vendor's scores."""

    @property
    def fixed_versions(self) -> tuple[str, ...]:
        """Every `fixed` event, in order, without duplicates."""
        seen: dict[str, None] = {}
        for range_ in self.ranges:
            for kind, version in range_.events:
                if kind == "fixed":
                    seen.setdefault(version, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class VulnerabilityRecord:
    """One vulnerability as the store keeps it."""

    id: str
    modified: str
    """RFC 3339 UTC, normalised (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) so text order is time order."""
    published: str = ""
    withdrawn: str = ""
    """Set when the advisory was withdrawn; such records never match."""
    aliases: tuple[str, ...] = ()
    summary: str = ""
    severities: tuple[Severity, ...] = ()
    vendor_severity: str = ""
    """The publisher's label (database_specific.severity, Ubuntu priority), lower-case, Anchore's scale."""
    references: tuple[str, ...] = ()
    affected: tuple[AffectedPackage, ...] = ()
    source: str = ""
    """Where the record was imported from (a file, folder or URL)."""
    imported_at: str = ""

    @property
    def url(self) -> str:
        """A link for reports: the first ADVISORY/WEB reference, else OSV's page."""
        return self.references[0] if self.references else f"https://osv.dev/vulnerability/{self.id}"

    def best_cvss(self, versions: tuple[str, ...] = ("3.1", "3.0")) -> Severity | None:
        """The highest-scoring statement among the given CVSS versions."""
        candidates = [s for s in self.severities if s.version in versions and s.base_score is not None]
        return max(candidates, key=lambda s: s.base_score or 0.0) if candidates else None

    @property
    def severity(self) -> str:
        """Anchore's severity label: the vendor's when published, else rated from the best CVSS."""
        if self.vendor_severity in SEVERITIES:
            return self.vendor_severity
        for versions in (("3.1", "3.0"), ("4.0",), ("2.0",)):
            best = self.best_cvss(versions)
            if best is not None and best.base_score is not None:
                return severity_for_score(best.base_score, best.version)
        return "unknown"


# --- names ---------------------------------------------------------------------------------------


def ecosystem_family(ecosystem: str) -> str:
    """`Debian:12` → `debian`; `PyPI` → `pypi`."""
    return ecosystem.split(":", 1)[0].strip().lower()


_PEP503 = re.compile(r"[-_.]+")


def normalize_name(ecosystem: str, name: str) -> str:
    """The lookup key of a package name in its ecosystem.

    PyPI: PEP 503 (lower case, runs of `-_.` become `-`). Go: module paths are case-sensitive and
    kept. Everything else compares case-insensitively (npm `@scope/name`, Maven `group:artifact`,
    distro source packages, gems, crates).
    """
    family = ecosystem_family(ecosystem)
    stripped = name.strip()
    if family == "pypi":
        return _PEP503.sub("-", stripped).lower()
    if family == "go":
        return stripped
    return stripped.lower()


# --- from OSV ----------------------------------------------------------------------------------

_VENDOR_LABELS = {
    "unknown": "unknown", "unimportant": "negligible", "negligible": "negligible", "not yet assigned": "unknown",
    "untriaged": "unknown", "low": "low", "moderate": "medium", "medium": "medium", "important": "high",
    "high": "high", "critical": "critical",
}


def vendor_label(value: Any) -> str:
    """Map a vendor's label (GHSA MODERATE, Debian urgency, Ubuntu priority, Red Hat Important) to Anchore's."""
    if not isinstance(value, str):
        return ""
    text = value.strip().lower().rstrip("*")
    return _VENDOR_LABELS.get(text, "")


_FAST_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$")


def normalize_time(value: Any, field: str, required: bool = False) -> str:
    """RFC 3339 → `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC; InvalidRecord when unreadable."""
    if value in (None, ""):
        if required:
            raise InvalidRecord(f"missing {field}")
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"{field} is not a string")
    fast = _FAST_TIME.match(value)
    if fast:
        # The common shape of OSV times, `2024-01-02T03:04:05[.123]Z`, without datetime parsing.
        return f"{fast.group(1)}.{(fast.group(2) or '')[:6].ljust(6, '0')}Z"
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRecord(f"{field} is not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=16384)
def _score(vector: str) -> CvssScore | None:
    try:
        return score_vector(vector)
    except ValueError:
        return None


def _severities(items: Any) -> tuple[Severity, ...]:
    if not isinstance(items, list):
        return ()
    result = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind, score = str(item.get("type", "")), item.get("score")
        if not isinstance(score, str):
            continue
        cvss = _score(score) if kind.startswith("CVSS") else None
        if cvss is not None:
            result.append(Severity(kind, score, cvss.base_score, cvss.exploitability_score, cvss.impact_score,
                                   cvss.version))
        else:
            result.append(Severity(kind, score))
    return tuple(result)


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRecord(f"{field} is not a list of strings")
    return tuple(value)


_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def _ranges(value: Any) -> tuple[Range, ...]:
    ranges = []
    for item in optional_list(value, "affected ranges", InvalidRecord):
        if not isinstance(item, Mapping) or not isinstance(item.get("events"), list):
            raise InvalidRecord("a range has no events list")
        events = []
        for event in item["events"]:
            if not isinstance(event, Mapping) or len(event) != 1:
                raise InvalidRecord("a range event must have exactly one key")
            ((kind, version),) = event.items()
            if kind not in _EVENT_KINDS or not isinstance(version, str):
                raise InvalidRecord(f"unknown range event {kind!r}")
            events.append((kind, version))
        ranges.append(Range(str(item.get("type", "ECOSYSTEM")).upper(), tuple(events)))
    return tuple(ranges)


def _affected(value: Any) -> tuple[AffectedPackage, ...]:
    result = []
    for item in optional_list(value, "affected", InvalidRecord):
        if not isinstance(item, Mapping):
            raise InvalidRecord("an affected entry is not an object")
        package = item.get("package")
        if not isinstance(package, Mapping):
            continue  # OSV allows affected entries without a package (e.g. GIT-only); nothing to match
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str) or not ecosystem or not name:
            raise InvalidRecord("an affected package lacks its ecosystem or name")
        specific = item.get("ecosystem_specific")
        label = ""
        if isinstance(specific, Mapping):
            label = vendor_label(specific.get("severity")) or vendor_label(specific.get("urgency"))
        database = item.get("database_specific")
        if not label and isinstance(database, Mapping):
            label = vendor_label(database.get("severity"))
        result.append(AffectedPackage(
            ecosystem=ecosystem,
            name=name,
            normalized_name=normalize_name(ecosystem, name),
            ranges=_ranges(item.get("ranges")),
            versions=_strings(item.get("versions"), "affected versions"),
            severity=label,
            severities=_severities(item.get("severity")),
        ))
    return tuple(result)


def _references(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    pairs = [(item.get("url"), item.get("type")) for item in value if isinstance(item, Mapping)]
    advisory = [url for url, kind in pairs if isinstance(url, str) and kind == "ADVISORY"]
    others = [url for url, _ in pairs if isinstance(url, str) and url not in advisory]
    return tuple(advisory + others)


def from_osv(document: Any, source: str = "", imported_at: str = "") -> VulnerabilityRecord:
    """Build a record from one OSV JSON document; InvalidRecord when it is not usable."""
    if not isinstance(document, Mapping):
        raise InvalidRecord("the document is not a JSON object")
    identifier = document.get("id")
    if not isinstance(identifier, str) or not identifier.strip():
        raise InvalidRecord("missing id")
    summary = document.get("summary") or ""
    if not summary and isinstance(document.get("details"), str):
        summary = document["details"].strip().split("\n", 1)[0]
    vendor = ""
    database = document.get("database_specific")
    if isinstance(database, Mapping):
        vendor = vendor_label(database.get("severity"))
    severities = _severities(document.get("severity"))
    if not vendor:
        vendor = next((vendor_label(s.score) for s in severities if s.type.lower() == "ubuntu"), "")
    return VulnerabilityRecord(
        id=identifier.strip(),
        modified=normalize_time(document.get("modified"), "modified", required=True),
        published=normalize_time(document.get("published"), "published"),
        withdrawn=normalize_time(document.get("withdrawn"), "withdrawn"),
        aliases=_strings(document.get("aliases"), "aliases"),
        summary=str(summary)[:500],
        severities=severities,
        vendor_severity=vendor,
        references=_references(document.get("references")),
        affected=_affected(document.get("affected")),
        source=source,
        imported_at=imported_at,
    )
