"""Match an image's packages against the store.

Distro packages are looked up in their distro release's ecosystem (`Debian:12`, `Alpine:v3.19`,
`Ubuntu:22.04:LTS`, `Red Hat:enterprise_linux:9::...`, `Rocky Linux:9`, ...). Debian, Ubuntu and
apk-based (Alpine, Wolfi, Chainguard) records name SOURCE packages (the OSV schema's rule for
these ecosystems), so a dpkg or apk package is looked up by its source name only (Debian's
`Source:`, the apk origin; the binary name when the package is its own source), as osv-scanner
and trivy do: a record that names `zlib1g` is about a source package called `zlib1g`, not about
the binary `zlib1g` built from `zlib`. RPM records name binary packages: an rpm is looked up by its
name and by its source RPM's name. Language packages are looked up in their ecosystem by its normalised
name (PEP 503 for PyPI, `@scope/name` for npm, `group:artifact` for Maven, module path for Go).

A version is affected under OSV's rules (ossf/osv-schema "Evaluation"): listed in `versions[]`, or
inside a range — events sorted by version, `introduced` opens, `fixed` closes (v >= fixed is safe),
`last_affected` closes after it, `limit` bounds the range. `GIT` ranges are ignored (they need the
repository). Withdrawn records never match. A match's fix is available when its range has a
`fixed` event above the installed version.

What cannot be checked (no distro release, an ecosystem ci-gate cannot map, a version its scheme
cannot read) is returned as `skipped`, so reports are honest about coverage.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ci_gate.model import Analysis, Distro, Package
from ci_gate.vulns.records import AffectedPackage, Range, VulnerabilityRecord, normalize_name
from ci_gate.vulns.store import StoreStatus, VulnerabilityStore
from ci_gate.vulns.versions import comparator, scheme_for_ecosystem

OS_PACKAGE_TYPES = frozenset({"deb", "apk", "rpm"})
"""syft's package types that belong to the operating system (Anchore's `os` package_type)."""
SOURCE_NAMED_TYPES = frozenset({"deb", "apk"})
"""Package types whose distro records (Debian, Ubuntu, Alpine, Wolfi, Chainguard) name source packages."""

_LANGUAGE_ECOSYSTEMS = {
    "python": "PyPI", "npm": "npm", "java-archive": "Maven", "jenkins-plugin": "Maven", "go-module": "Go",
    "gem": "RubyGems", "php-composer": "Packagist", "dotnet": "NuGet", "rust-crate": "crates.io",
}
_PURL_ECOSYSTEMS = {
    "pypi": "PyPI", "npm": "npm", "maven": "Maven", "golang": "Go", "gem": "RubyGems",
    "composer": "Packagist", "nuget": "NuGet", "cargo": "crates.io",
}
_RPM_FAMILIES = {
    "rhel": ("Red Hat",), "centos": ("Red Hat",), "rocky": ("Rocky Linux",), "almalinux": ("AlmaLinux",),
    "sles": ("SUSE",), "sle_micro": ("SUSE",), "opensuse-leap": ("openSUSE",), "opensuse-tumbleweed": ("openSUSE",),
    "photon": ("Photon OS",), "azurelinux": ("Azure Linux",), "mariner": ("Azure Linux", "CBL-Mariner"),
    "openeuler": ("openEuler",), "mageia": ("Mageia",),
}


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
        return self.package.type in OS_PACKAGE_TYPES

    @property
    def cvss_score(self) -> float | None:
        """The score reports show: v3 when present, else v4."""
        return self.cvss_v3_base_score if self.cvss_v3_base_score is not None else self.cvss_v4_base_score


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


# --- which ecosystem and names a package is looked up under ------------------------------------


@dataclass(frozen=True, slots=True)
class LookupKey:
    """Where to look a package up: ecosystems, names (with how each matches) and the version."""

    ecosystems: tuple[str, ...]
    names: tuple[tuple[str, str], ...]
    """(normalised name, matched_by)."""
    version: str
    scheme: str


def _major(version_id: str) -> str:
    return version_id.split(".", 1)[0]


def _distro_ecosystems(distro: Distro, package_type: str, available: Sequence[str]) -> tuple[str, ...] | str:
    """The store ecosystems of this distro release, or a reason string when there are none."""
    distro_id = distro.id.lower()
    version = distro.version_id
    if package_type == "deb":
        if distro_id == "debian":
            if not version:
                return f"Debian {distro.version_codename or 'testing/sid'} has no numbered release in OSV"
            return (f"Debian:{_major(version)}",)
        if distro_id == "ubuntu":
            wanted = [e for e in available if e == f"Ubuntu:{version}" or e.startswith(f"Ubuntu:{version}:")]
            return tuple(wanted) or (f"Ubuntu:{version}",)
    if package_type == "apk":
        if distro_id == "alpine":
            branch = re.match(r"^(\d+)\.(\d+)", version)
            if not branch:
                return f"Alpine {version or 'edge'} has no release branch in OSV (only v<major>.<minor>)"
            return (f"Alpine:v{branch.group(1)}.{branch.group(2)}",)
        if distro_id == "wolfi":
            return ("Wolfi",)
        if distro_id == "chainguard":
            return ("Chainguard",)
    if package_type == "rpm" and distro_id in _RPM_FAMILIES:
        major = _major(version)
        wanted = []
        for family in _RPM_FAMILIES[distro_id]:
            for ecosystem in available:
                if not ecosystem.startswith(family + ":"):
                    continue
                release = ecosystem[len(family) + 1:]
                # Red Hat:enterprise_linux:9::appstream, Rocky Linux:9, SUSE:Linux Enterprise Server 15 SP5
                if re.search(rf"(^|[^0-9.]){re.escape(major)}([^0-9]|$)", release):
                    if family in ("SUSE", "openSUSE") and version and version not in release.replace(" SP", "."):
                        continue
                    wanted.append(ecosystem)
        return tuple(wanted) or f"no {', '.join(_RPM_FAMILIES[distro_id])} {version} data in the store"
    return f"no vulnerability data source for {package_type} packages of {distro.id} {version}".strip()


def _purl_parts(purl: str) -> tuple[str, str, str, str] | None:
    """(type, namespace, name, version) of a package URL, or None."""
    if not purl.startswith("pkg:"):
        return None
    body = purl[4:].split("#", 1)[0].split("?", 1)[0]
    body, _, version = body.partition("@")
    parts = body.split("/")
    if len(parts) < 2:
        return None
    kind, name = parts[0].lower(), unquote(parts[-1])
    namespace = "/".join(unquote(p) for p in parts[1:-1])
    return kind, namespace, name, unquote(version)


def language_key(package: Package) -> LookupKey | str:
    """The ecosystem, name and version of a language package, or why it has none."""
    parts = _purl_parts(package.purl)
    ecosystem = _PURL_ECOSYSTEMS.get(parts[0], "") if parts else ""
    name = package.name
    if parts and ecosystem:
        _, namespace, purl_name, _ = parts
        if ecosystem == "Maven":
            name = f"{namespace}:{purl_name}" if namespace else purl_name
        elif ecosystem in ("Go", "Packagist") or (ecosystem == "npm" and namespace):
            name = f"{namespace}/{purl_name}" if namespace else purl_name
        else:
            name = purl_name
    if not ecosystem:
        ecosystem = _LANGUAGE_ECOSYSTEMS.get(package.type, "")
    if not ecosystem:
        return f"no vulnerability ecosystem for package type {package.type!r}"
    if ecosystem == "Maven" and ":" not in name:
        return "Maven package without a group id (no pom.properties and no purl namespace)"
    if not package.version:
        return "no version"
    version = package.version
    if ecosystem == "Go" and name == "stdlib":
        # syft reports the Go toolchain as `stdlib` at `go1.21.3`; OSV's Go records say `1.21.3`.
        version = version.removeprefix("go")
    return LookupKey((ecosystem,), ((normalize_name(ecosystem, name), "exact-direct-match"),), version,
                     scheme_for_ecosystem(ecosystem))


def distro_key(package: Package, distro: Distro | None, available: Sequence[str]) -> LookupKey | str:
    """The release ecosystems, binary and source names and version of an OS package, or why not."""
    if distro is None or not distro.id:
        return "the image's distribution is unknown (no /etc/os-release)"
    ecosystems = _distro_ecosystems(distro, package.type, available)
    if isinstance(ecosystems, str):
        return ecosystems
    metadata = package.metadata or {}
    version = package.version
    if package.type == "deb":
        source = str(metadata.get("source") or "")
        # Debian advisories name the source package and its version (binNMUs add +bN to binaries).
        source_version = str(metadata.get("source_version") or "") or version
    elif package.type == "apk":
        source = str(metadata.get("origin") or metadata.get("source") or "")
        source_version = version
    else:
        source = str(metadata.get("source") or "")
        if not source and metadata.get("source_rpm"):
            source = _source_rpm_name(str(metadata["source_rpm"]))
        epoch = metadata.get("epoch")
        if epoch not in (None, "") and ":" not in version:
            version = f"{epoch}:{version}"
        source_version = version
    if not version:
        return "no version"
    family = ecosystems[0]
    binary = normalize_name(family, package.name)
    source_name = normalize_name(family, source) if source else ""
    if package.type in SOURCE_NAMED_TYPES:
        # Only the source name: dpkg omits `Source:` when it equals the package name.
        if source_name and source_name != binary:
            return LookupKey(ecosystems, ((source_name, "exact-indirect-match"),), source_version,
                             scheme_for_ecosystem(family))
        return LookupKey(ecosystems, ((binary, "exact-direct-match"),), source_version,
                         scheme_for_ecosystem(family))
    names = [(binary, "exact-direct-match")]
    if source_name and source_name != binary:
        names.append((source_name, "exact-indirect-match"))
    # The source name is looked up with the source version; both are usually the same.
    key_version = version if source_version == version else source_version
    return LookupKey(ecosystems, tuple(names), key_version, scheme_for_ecosystem(family))


def _source_rpm_name(source_rpm: str) -> str:
    """`openssl-3.0.7-24.el9.src.rpm` → `openssl`."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""


# --- OSV affected semantics --------------------------------------------------------------------


class CannotCompare(ValueError):
    """A version the scheme cannot read: the affected entry is undecided, not matched."""


def _sort_key(compare: Callable[[str, str], int]) -> Callable[[tuple[str, str]], Any]:
    def order(a: tuple[str, str], b: tuple[str, str]) -> int:
        if a[1] == b[1]:
            return 0
        if a[1] == "0" and a[0] == "introduced":
            return -1
        if b[1] == "0" and b[0] == "introduced":
            return 1
        return compare(a[1], b[1])

    return functools.cmp_to_key(order)


def range_contains(version: str, range_: Range, compare: Callable[[str, str], int]) -> tuple[bool, tuple[str, ...]]:
    """Whether `version` is inside the range, and the range's fixed versions above it.

    Raises CannotCompare when a version cannot be read by the scheme."""
    try:
        events_in = range_.events
        if len(events_in) <= 2 and events_in and events_in[0][0] == "introduced" and (
            len(events_in) == 1 or events_in[1][0] in ("fixed", "last_affected")
        ):
            # The common shape, [introduced] or [introduced, fixed|last_affected]: no sorting needed.
            introduced = events_in[0][1]
            if introduced != "0" and compare(version, introduced) < 0:
                return False, ()
            if len(events_in) == 2:
                kind, bound = events_in[1]
                order = compare(version, bound)
                if (kind == "fixed" and order >= 0) or (kind == "last_affected" and order > 0):
                    return False, ()
                return True, (bound,) if kind == "fixed" else ()
            return True, ()
        limits = [v for kind, v in range_.events if kind == "limit" and v != "*"]
        if limits and not any(compare(version, limit) < 0 for limit in limits):
            return False, ()
        events = sorted((e for e in range_.events if e[0] != "limit"), key=_sort_key(compare))
        vulnerable = False
        for kind, event_version in events:
            if kind == "introduced":
                if event_version == "0" or compare(version, event_version) >= 0:
                    vulnerable = True
            elif kind == "fixed":
                if compare(version, event_version) >= 0:
                    vulnerable = False
            elif kind == "last_affected" and compare(version, event_version) > 0:
                vulnerable = False
        if not vulnerable:
            return False, ()
        fixed = tuple(v for kind, v in range_.events if kind == "fixed" and compare(version, v) < 0)
        return True, fixed
    except ValueError as error:
        raise CannotCompare(str(error)) from None


def is_affected(version: str, affected: AffectedPackage, scheme: str) -> tuple[bool, tuple[str, ...]]:
    """OSV's evaluation for one affected entry: (affected?, fixed versions that would cure it)."""
    compare = comparator(scheme)
    listed = version in affected.versions
    undecided: CannotCompare | None = None
    for range_ in affected.ranges:
        if range_.type == "GIT":
            continue
        range_compare = compare
        if range_.type == "SEMVER" and scheme not in ("go", "semver"):
            range_compare = comparator("semver")
        try:
            inside, fixed = range_contains(version, range_, range_compare)
        except CannotCompare as error:
            undecided = error
            continue
        if inside:
            return True, fixed
    if listed:
        return True, affected.fixed_versions
    if undecided is not None and not affected.versions:
        raise undecided
    return False, ()


# --- putting it together -----------------------------------------------------------------------


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


def match_packages(analysis: Analysis, store: VulnerabilityStore, vex: object | None = None) -> MatchResult:
    """Every vulnerability of every package of the image; VEX statements suppress matches.

    `vex` is a `ci_gate.vulns.vex.VexDocumentSet` (or anything with `find(match)`)."""
    available = store.ecosystems()
    pending: list[_Pending] = []
    skipped: list[SkippedPackage] = []
    for package in analysis.packages:
        if package.type in OS_PACKAGE_TYPES:
            key = distro_key(package, analysis.distro, available)
        else:
            key = language_key(package)
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
        statement = vex.find(match) if vex is not None else None  # type: ignore[attr-defined]
        if statement is not None:
            suppressed.append(_with_statement(match, statement))
        else:
            matches.append(match)
    matches = _borrow_scores(store, matches)
    suppressed = _borrow_scores(store, suppressed)
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "negligible": 4, "unknown": 5}
    matches.sort(key=lambda m: (order.get(m.severity, 6), m.vulnerability_id, m.package.name, m.package.version))
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
