"""Match an image's packages against the store.

Each package gets a lookup key (`vulns.lookup`: ecosystems, names, version), the store is queried
once per ecosystem, and every hit is decided by OSV's range rules (`vulns.ranges`). Withdrawn
records never match. A match's fix is available when its range has a `fixed` event above the
installed version.

What cannot be checked (no distro release, an ecosystem ci-gate cannot map, a version its scheme
cannot read) is returned as `skipped`, so reports are honest about coverage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ci_gate.ecosystems import is_os_package
from ci_gate.model import SEVERITY_ORDER, Analysis, Package
from ci_gate.vulns.lookup import LookupKey, distro_key, language_key
from ci_gate.vulns.ranges import CannotCompare, is_affected
from ci_gate.vulns.records import AffectedPackage, VulnerabilityRecord
from ci_gate.vulns.store import StoreStatus, VulnerabilityStore


@dataclass(frozen=True, slots=True)
class VexStatement:
    """A VEX statement that suppressed a match (see `ci_gate.vulns.vex`)."""

    vulnerability: str
    status: str
    """not_affected or fixed (the statuses that suppress)."""
    justification: str = ""
    impact_statement: str = ""
    source: str = ""
    """The VEX document it came from."""


@dataclass(frozen=True, slots=True)
class VulnerabilityMatch:
    """One vulnerability found in one package of the image."""

    package: Package
    vulnerability_id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str
    """Anchore's label: unknown, negligible, low, medium, high, critical."""
    cvss_v3_base_score: float | None
    """The best CVSS v3.x base score of the record (-1 in Anchore terms when None)."""
    cvss_v3_exploitability_score: float | None
    cvss_v3_impact_score: float | None
    vendor_cvss_v3_base_score: float | None
    """The affected package's own (vendor) CVSS v3 score, when the advisory gives one."""
    vendor_cvss_v3_exploitability_score: float | None
    vendor_cvss_v3_impact_score: float | None
    cvss_v4_base_score: float | None
    fixed_versions: tuple[str, ...]
    fix_available: bool
    matched_by: str
    """exact-direct-match (the package's own name) or exact-indirect-match (its source package)."""
    ecosystem: str
    """The ecosystem key it matched in, e.g. `Debian:12`."""
    matched_name: str
    """The name that matched (binary or source)."""
    url: str
    published: str
    modified: str
    vendor_severity: str = ""
    scores_from: str = ""
    """When the matched record has no CVSS of its own: the record (same CVE) its scores were taken from."""
    suppressed_by: VexStatement | None = None

    @property
    def is_os(self) -> bool:
        return is_os_package(self.package.type)

    @property
    def cvss_score(self) -> float | None:
        """The score reports show: v3 when present, else v4."""
        return self.cvss_v3_base_score if self.cvss_v3_base_score is not None else self.cvss_v4_base_score


class VexLookup(Protocol):
    """What matching needs of VEX documents (`ci_gate.vulns.vex.VexDocumentSet`, which imports this module)."""

    def find(self, match: VulnerabilityMatch) -> VexStatement | None: ...


@dataclass(frozen=True, slots=True)
class SkippedPackage:
    """A package that could not be checked, and why."""

    package: Package
    reason: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The outcome of matching one image."""

    matches: tuple[VulnerabilityMatch, ...]
    """Matches that apply (VEX did not suppress them)."""
    suppressed: tuple[VulnerabilityMatch, ...] = ()
    """Matches a VEX statement marked not_affected or fixed; `suppressed_by` says which."""
    skipped: tuple[SkippedPackage, ...] = ()
    store_status: StoreStatus | None = None


def _best_v3(severities: Iterable[object]) -> object | None:
    best = None
    for severity in severities:
        version = getattr(severity, "version", "")
        score = getattr(severity, "base_score", None)
        if version in ("3.0", "3.1") and score is not None and (best is None or score > best.base_score):  # type: ignore[attr-defined]
            best = severity
    return best


def _build_match(package: Package, record: VulnerabilityRecord, affected: AffectedPackage, key: LookupKey,
                 matched_name: str, matched_by: str, fixed: tuple[str, ...]) -> VulnerabilityMatch:
    nvd = record.best_cvss(("3.1", "3.0"))
    vendor = _best_v3(affected.severities)
    v4 = record.best_cvss(("4.0",))
    severity = affected.severity or record.severity
    return VulnerabilityMatch(
        package=package,
        vulnerability_id=record.id,
        aliases=record.aliases,
        summary=record.summary,
        severity=severity,
        cvss_v3_base_score=nvd.base_score if nvd else None,
        cvss_v3_exploitability_score=nvd.exploitability_score if nvd else None,
        cvss_v3_impact_score=nvd.impact_score if nvd else None,
        vendor_cvss_v3_base_score=getattr(vendor, "base_score", None),
        vendor_cvss_v3_exploitability_score=getattr(vendor, "exploitability_score", None),
        vendor_cvss_v3_impact_score=getattr(vendor, "impact_score", None),
        cvss_v4_base_score=v4.base_score if v4 else None,
        fixed_versions=fixed,
        fix_available=bool(fixed),
        matched_by=matched_by,
        ecosystem=affected.ecosystem,
        matched_name=matched_name,
        url=record.url,
        published=record.published,
        modified=record.modified,
        vendor_severity=affected.severity or record.vendor_severity,
    )


@dataclass
class _Pending:
    package: Package
    key: LookupKey
    hits: list[tuple[str, AffectedPackage, str, str]] = field(default_factory=list)
    """(vulnerability id, affected entry, matched name, matched_by)."""


def match_packages(analysis: Analysis, store: VulnerabilityStore, vex: VexLookup | None = None) -> MatchResult:
    """Every vulnerability of every package of the image; VEX statements suppress matches.

    `vex` is a `ci_gate.vulns.vex.VexDocumentSet` (or anything with `find(match)`)."""
    available = store.ecosystems()
    pending: list[_Pending] = []
    skipped: list[SkippedPackage] = []
    for package in analysis.packages:
        key = distro_key(package, analysis.distro, available) if is_os_package(package.type) \
            else language_key(package)
        if isinstance(key, str):
            skipped.append(SkippedPackage(package, key))
        else:
            pending.append(_Pending(package, key))

    # One indexed query per (ecosystem, batch of names).
    wanted: dict[str, set[str]] = {}
    for item in pending:
        for ecosystem in item.key.ecosystems:
            wanted.setdefault(ecosystem, set()).update(name for name, _ in item.key.names)
    found: dict[tuple[str, str], list[tuple[str, AffectedPackage]]] = {}
    for ecosystem, names in wanted.items():
        for vuln_id, affected in store.affected(ecosystem, names):
            found.setdefault((ecosystem, affected.normalized_name), []).append((vuln_id, affected))

    for item in pending:
        for ecosystem in item.key.ecosystems:
            for name, matched_by in item.key.names:
                for vuln_id, affected in found.get((ecosystem, name), ()):
                    item.hits.append((vuln_id, affected, name, matched_by))

    # Decide each hit from its affected entry first; only records that matched are read.
    decided: list[tuple[_Pending, str, AffectedPackage, str, str, tuple[str, ...]]] = []
    for item in pending:
        undecided: list[str] = []
        for vuln_id, affected, name, matched_by in item.hits:
            try:
                hit, fixed = is_affected(item.key.version, affected, item.key.scheme)
            except CannotCompare as error:
                undecided.append(f"{vuln_id}: {error}")
                continue
            if hit:
                decided.append((item, vuln_id, affected, name, matched_by, fixed))
        if undecided:
            skipped.append(SkippedPackage(item.package, f"version {item.key.version!r} cannot be compared "
                                          f"({item.key.scheme}): {undecided[0]}"))
    records = store.records({vuln_id for _, vuln_id, _, _, _, _ in decided})

    matches: list[VulnerabilityMatch] = []
    suppressed: list[VulnerabilityMatch] = []
    seen: set[tuple[int, str]] = set()
    for item, vuln_id, affected, name, matched_by, fixed in decided:
        record = records.get(vuln_id)
        if record is None or record.withdrawn or (id(item), vuln_id) in seen:
            continue
        seen.add((id(item), vuln_id))
        match = _build_match(item.package, record, affected, item.key, name, matched_by, fixed)
        statement = vex.find(match) if vex is not None else None
        if statement is not None:
            suppressed.append(_with_statement(match, statement))
        else:
            matches.append(match)
    matches = _borrow_scores(store, matches)
    suppressed = _borrow_scores(store, suppressed)
    order = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}
    matches.sort(key=lambda m: (order.get(m.severity, len(order)), m.vulnerability_id, m.package.name,
                                m.package.version))
    return MatchResult(tuple(matches), tuple(suppressed), tuple(skipped), store.status(full=False))


def _borrow_scores(store: VulnerabilityStore, matches: list[VulnerabilityMatch]) -> list[VulnerabilityMatch]:
    """Give matches whose advisory has no CVSS (Debian's, for one) the scores of a record for the same CVE.

    Anchore scores distro vulnerabilities with NVD's CVSS; OSV distro records often carry none, but
    GHSA, Ubuntu or Alpine records for the same CVE do. The severity label stays the vendor's; only
    an `unknown` one is rated from the borrowed score."""
    import dataclasses

    from ci_gate.vulns.cvss import severity_for_score

    needy = [m for m in matches if m.cvss_v3_base_score is None and m.cvss_v4_base_score is None]
    needy_ids = {id(m) for m in needy}
    if not needy:
        return matches
    cves = {i.upper() for m in needy for i in (m.vulnerability_id, *m.aliases) if i.upper().startswith("CVE-")}
    related = store.related(cves)
    other_ids = {vuln_id for ids in related.values() for vuln_id in ids}
    others = store.records(other_ids)
    result = []
    for match in matches:
        if id(match) not in needy_ids:
            result.append(match)
            continue
        donors = [others[vuln_id] for i in (match.vulnerability_id, *match.aliases)
                  for vuln_id in related.get(i.upper(), ()) if vuln_id != match.vulnerability_id and vuln_id in others]
        best: tuple[float, VulnerabilityRecord, object] | None = None
        for donor in donors:
            cvss = donor.best_cvss(("3.1", "3.0")) or donor.best_cvss(("4.0",))
            if cvss is not None and cvss.base_score is not None and (best is None or cvss.base_score > best[0]):
                best = (cvss.base_score, donor, cvss)
        if best is None:
            result.append(match)
            continue
        donor = best[1]
        v3 = donor.best_cvss(("3.1", "3.0"))
        v4 = donor.best_cvss(("4.0",))
        severity = match.severity
        if severity == "unknown":
            scored = v3 or v4
            severity = severity_for_score(scored.base_score or 0.0, scored.version) if scored else severity
        result.append(dataclasses.replace(
            match,
            severity=severity,
            cvss_v3_base_score=v3.base_score if v3 else None,
            cvss_v3_exploitability_score=v3.exploitability_score if v3 else None,
            cvss_v3_impact_score=v3.impact_score if v3 else None,
            cvss_v4_base_score=v4.base_score if v4 else None,
            scores_from=donor.id,
        ))
    return result


def _with_statement(match: VulnerabilityMatch, statement: VexStatement) -> VulnerabilityMatch:
    import dataclasses

    return dataclasses.replace(match, suppressed_by=statement)
