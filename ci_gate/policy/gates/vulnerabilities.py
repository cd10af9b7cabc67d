"""vulnerabilities: CVE checks against the offline store (anchore-engine's gate, same triggers and ids).

Triggers (anchore-engine's policy/gates/vulnerabilities.py; docs/policy.md): `package` with every
anchore-engine parameter plus Enterprise's
`known_exploited_vulnerability` (CISA KEV, from the catalog `ci-gate db import` stored; without one
the rule reports an `evaluation_error` finding instead of passing) and ci-gate's `package_origin`
(base or app layers); `stale_feed_data`; `vulnerability_data_unavailable`;
`denylist` (v1 name `blacklist`). Trigger ids follow anchore-engine so allowlists written
for Anchore carry over: `package` fires with `<vulnerability id>+<package name>` for OS packages
and `<vulnerability id>+<jar/gem file name | npm directory | name-version>` for the others; the
other triggers use the md5 of gate, trigger and message. Messages are anchore-engine's.

Vulnerability ids are reported as Anchore reports them: CVE ids for distro packages (one finding
per CVE an advisory covers), GHSA ids for language packages when the record has one, else the
OSV id.

Data comes from `ci_gate.vulns.provider.make_provider`, which the local backend calls: it opens the
store (`--vuln-db`, `$CI_GATE_VULN_DB` or the default path) and matches the image once. Without a
store the provider still exists and says why, so `vulnerability_data_unavailable` and
`stale_feed_data` decide, as the policy says.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ci_gate.ecosystems import anchore_type_of
from ci_gate.model import ORIGINS, SEVERITIES, VulnerabilityDetail
from ci_gate.policy.gates.interface import (
    EVALUATION_ERROR_ID,
    Fired,
    GateSpec,
    ParameterSpec,
    TriggerInput,
    TriggerSpec,
)
from ci_gate.vulns.provider import VulnerabilityData, distro_label
from ci_gate.vulns.store import KnownExploitedCatalog, parse_time

if TYPE_CHECKING:  # start-up: the matcher is imported when there is a store to match against (vulns.provider)
    from ci_gate.vulns.matching import VulnerabilityMatch

COMPARISONS = {
    "=": lambda x, y: x == y,
    "!=": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    ">": lambda x, y: x > y,
    "<=": lambda x, y: x <= y,
    ">=": lambda x, y: x >= y,
}

def _data(call: TriggerInput) -> VulnerabilityData:
    provider = call.context.vulnerabilities
    if isinstance(provider, VulnerabilityData):
        return provider
    if provider is None:
        return VulnerabilityData(unavailable_reason="no vulnerability data was supplied")
    # Another provider (e.g. a test double or a future backend): wrap its matches.
    from ci_gate.vulns.matching import MatchResult

    return VulnerabilityData(result=MatchResult(tuple(provider.matches())))


# --- reporting helpers -------------------------------------------------------------------------


def reported_ids(match: VulnerabilityMatch) -> tuple[str, ...]:
    """The ids Anchore would report: CVEs for distro advisories, the GHSA for language packages."""
    ids = (match.vulnerability_id, *match.aliases)
    cves = tuple(dict.fromkeys(i for i in ids if i.upper().startswith("CVE-")))
    if match.is_os:
        return cves or (match.vulnerability_id,)
    ghsa = next((i for i in ids if i.upper().startswith("GHSA-")), "")
    return (ghsa or match.vulnerability_id,)


def _location(match: VulnerabilityMatch) -> str:
    return match.package.locations[0].path if match.package.locations else ""


def instance_name(match: VulnerabilityMatch) -> str:
    """The `+<x>` part of the trigger id, exactly as anchore-engine builds it."""
    package = match.package
    if match.is_os:
        return package.name
    anchore_type = anchore_type_of(package.type)
    location = _location(match)
    name = ""
    if anchore_type in ("java", "gem"):
        name = posixpath.basename(location) if location else ""
    elif anchore_type == "npm" and location:
        parts = location.split("/")
        name = parts[-2] if len(parts) >= 2 else ""
    return name or f"{package.name}-{package.version}"


def _number(value: float | None) -> float:
    return -1.0 if value is None else value


# --- triggers ----------------------------------------------------------------------------------


def is_known_exploited(match: VulnerabilityMatch, reported_id: str, catalog: KnownExploitedCatalog) -> bool:
    """Whether CISA lists the vulnerability a finding reports: its CVE id, else any CVE alias."""
    if reported_id.upper().startswith("CVE-"):
        return catalog.lists(reported_id)
    return any(catalog.lists(i) for i in (match.vulnerability_id, *match.aliases) if i.upper().startswith("CVE-"))


def _package(call: TriggerInput) -> Iterator[Fired]:
    data = _data(call)
    params = call.params
    now = call.context.now
    kev_wanted = params.get("known_exploited_vulnerability")
    if kev_wanted is not None and data.known_exploited is None:
        # Fail closed: the rule asks about CISA KEV and there is nothing to ask.
        yield Fired(
            message="Could not evaluate trigger vulnerabilities/package: known_exploited_vulnerability needs "
            "the CISA KEV catalog, which the vulnerability store does not have (import "
            "known_exploited_vulnerabilities.json with `ci-gate db import`)",
            instance_id=EVALUATION_ERROR_ID,
        )
        return
    package_type = params["package_type"]
    severity_index = SEVERITIES.index(params.get("severity", "unknown").lower())
    severity_compare = COMPARISONS[params.get("severity_comparison", ">")]
    fix_available = params.get("fix_available")
    created_limit = now - timedelta(days=params["max_days_since_creation"]) \
        if "max_days_since_creation" in params else None
    fix_limit = now - timedelta(days=params["max_days_since_fix"]) if "max_days_since_fix" in params else None
    exclude = re.compile(params["package_path_exclude"]) if params.get("package_path_exclude") else None
    origin = params.get("package_origin", "all")
    score_checks = [
        (name, COMPARISONS[params.get(f"{name}_comparison", ">=")], params[name])
        for name in ("cvss_v3_base_score", "cvss_v3_exploitability_score", "cvss_v3_impact_score",
                     "vendor_cvss_v3_base_score", "vendor_cvss_v3_exploitability_score",
                     "vendor_cvss_v3_impact_score")
        if name in params
    ]
    for match in data.matches():
        package_class = "os" if match.is_os else "non-os"
        if package_type != "all" and package_type != package_class:
            continue
        if origin != "all" and match.package.origin != origin:
            continue
        severity = match.severity.lower() if match.severity.lower() in SEVERITIES else "unknown"
        if not severity_compare(SEVERITIES.index(severity), severity_index):
            continue
        location = _location(match)
        if exclude is not None and not match.is_os and location and exclude.match(location):
            continue
        details: dict[str, Any] = {}
        created = _time(match.published) or _time(match.modified)
        if created_limit is not None:
            if created is not None and created > created_limit:
                continue
            if created is not None:
                details["max_days_since_creation"] = created.date()
        if fix_available and fix_limit is not None and match.fix_available:
            # OSV has no "fix first observed" time; the advisory's publication is when the fix was known.
            fixed_at = created
            if fixed_at is not None and fixed_at > fix_limit:
                continue
            if fixed_at is not None:
                details["max_days_since_fix"] = fixed_at.date()
        failed = False
        for name, compare, threshold in score_checks:
            value = _number(getattr(match, name))
            if not compare(value, threshold):
                failed = True
                break
            details[name] = value
        if failed:
            continue
        if fix_available is not None and fix_available != match.fix_available:
            continue
        kev_filter = None
        if kev_wanted is not None and data.known_exploited is not None:
            catalog = data.known_exploited

            def kev_filter(reported: str, match: VulnerabilityMatch = match, catalog: KnownExploitedCatalog = catalog
                           ) -> bool:
                return is_known_exploited(match, reported, catalog) == kev_wanted

        yield from _package_fires(match, package_class, details, kev_filter)


def _package_fires(match: VulnerabilityMatch, package_class: str, details: Mapping[str, Any],
                   kev_filter: Callable[[str], bool] | None = None) -> Iterator[Fired]:
    package = match.package
    anchore_type = anchore_type_of(package.type)
    shown_name = package.name if match.is_os else (_location(match) or f"{package.name}-{package.version}")
    fix_message = f"(fixed in: {', '.join(match.fixed_versions)})" if match.fixed_versions else ""

    def group(names: Sequence[str]) -> str:
        parts = [f"{name}={details[name]}" for name in names if details.get(name)]
        return f"({' '.join(parts)})" if parts else ""

    score_message = group(("cvss_v3_base_score", "cvss_v3_exploitability_score", "cvss_v3_impact_score"))
    time_message = group(("max_days_since_creation", "max_days_since_fix"))
    vendor_message = group(("vendor_cvss_v3_base_score", "vendor_cvss_v3_exploitability_score",
                            "vendor_cvss_v3_impact_score"))
    location = match.package.locations[0] if match.package.locations else None
    for vulnerability_id in reported_ids(match):
        if kev_filter is not None and not kev_filter(vulnerability_id):
            continue
        link = match.url if vulnerability_id == match.vulnerability_id else _link_for(vulnerability_id, match)
        message = (f"{match.severity.upper()} Vulnerability found in {package_class} package type ({anchore_type}) - "
                   f"{shown_name} {fix_message}{score_message}{time_message}{vendor_message}"
                   f"({vulnerability_id} - {link})")
        yield Fired(
            message=message,
            instance_id=f"{vulnerability_id}+{instance_name(match)}",
            path=location.path if location else "",
            layer_index=location.layer_index if location else None,
            vulnerability=VulnerabilityDetail(
                id=vulnerability_id,
                severity=match.severity,
                cvss_score=match.cvss_score,
                fixed_versions=match.fixed_versions,
                package_name=package.name,
                package_version=package.version,
                package_type=package.type,
                package_path=location.path if location else "",
                url=link,
                summary=match.summary,
            ),
        )


def _link_for(vulnerability_id: str, match: VulnerabilityMatch) -> str:
    if vulnerability_id.upper().startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{vulnerability_id}"
    return match.url


def _time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _stale(call: TriggerInput) -> Iterator[Fired]:
    """Fires only on data that exists and is old (no data at all is vulnerability_data_unavailable's case).

    The message adds the real age to anchore-engine's text; the trigger id stays the md5 of
    anchore-engine's text, so an allowlist item keeps matching as the age grows."""
    data = _data(call)
    days = call.params["max_days_since_sync"]
    synced = data.last_synced()
    if synced is None or synced >= call.context.now - timedelta(days=days):
        return
    anchore_message = f"The vulnerability feed for this image distro is older than MAXAGE ({days}) days"
    age_days = (call.context.now - synced).total_seconds() / 86400
    yield Fired(message=f"{anchore_message} (last updated {synced:%Y-%m-%d %H:%M} UTC, {age_days:.0f} days ago)",
                instance_id=hashlib.md5(f"vulnerabilitiesstale_feed_data{anchore_message}".encode(),
                                        usedforsecurity=False).hexdigest())


def _unavailable(call: TriggerInput) -> Iterator[Fired]:
    data = _data(call)
    analysis = call.context.analysis
    if data.unavailable_reason or data.uncovered_distro:
        namespace = distro_label(analysis)
        yield Fired(message=f"Distro-specific feed data not found for distro namespace: {namespace}. "
                    "Cannot perform CVE scan OS/distro packages")


def _denylist(call: TriggerInput) -> Iterator[Fired]:
    data = _data(call)
    wanted = call.params["vulnerability_ids"]
    present: set[str] = set()
    for match in data.matches():
        present.update(i.upper() for i in (match.vulnerability_id, *match.aliases))
    found = [vid for vid in wanted if vid.upper() in present]
    if found:
        yield Fired(message=f"Blacklisted vulnerabilities detected: {found}")


def _comparison(name: str, what: str) -> ParameterSpec:
    return ParameterSpec(f"{name}_comparison", "EnumString", f"The type of comparison to perform for {what} "
                         "evaluation.", allowed_values=tuple(COMPARISONS), example=">", default=">=")


def _score(name: str, what: str) -> ParameterSpec:
    return ParameterSpec(name, "FloatString", f"{what} to compare against.", example="5.0")


def _cross_check(raw: Mapping[str, str]) -> list[str]:
    if "max_days_since_fix" in raw and raw.get("fix_available", "").strip().lower() != "true":
        return ["max_days_since_fix is only evaluated with fix_available=true (as in anchore-engine); set "
                "fix_available to 'true' or drop max_days_since_fix"]
    return []


GATE = GateSpec(
    name="vulnerabilities",
    description="CVE/Vulnerability checks.",
    triggers=(
        TriggerSpec(
            name="package",
            description="Triggers if a found vulnerability in an image meets the comparison criteria.",
            evaluate=_package,
            cross_check=_cross_check,
            parameters=(
                ParameterSpec("package_type", "EnumString", "Only trigger for specific package type.", required=True,
                              allowed_values=("all", "os", "non-os"), example="all"),
                ParameterSpec("severity_comparison", "EnumString", "The type of comparison to perform for severity "
                              "evaluation.", allowed_values=tuple(COMPARISONS), example=">", default=">"),
                ParameterSpec("severity", "EnumString", "Severity to compare against.", allowed_values=SEVERITIES,
                              example="high", default="unknown"),
                _comparison("cvss_v3_base_score", "CVSS v3 base score"),
                _score("cvss_v3_base_score", "CVSS v3 base score"),
                _comparison("cvss_v3_exploitability_score", "CVSS v3 exploitability sub score"),
                _score("cvss_v3_exploitability_score", "CVSS v3 exploitability sub score"),
                _comparison("cvss_v3_impact_score", "CVSS v3 impact sub score"),
                _score("cvss_v3_impact_score", "CVSS v3 impact sub score"),
                ParameterSpec("fix_available", "BooleanString", "If present, the fix availability for the "
                              "vulnerability record must match the value of this parameter.", example="true"),
                ParameterSpec("vendor_only", "BooleanString", "If True, an available fix for this CVE must not be "
                              "explicitly marked as wont be addressed by the vendor (OSV records carry no such "
                              "mark, so it never excludes a match here).", example="true", default="true"),
                ParameterSpec("max_days_since_creation", "IntegerString", "If provided, this CVE must be older than "
                              "the days provided to trigger.", example="7"),
                ParameterSpec("max_days_since_fix", "IntegerString", "If provided (only evaluated when fix_available "
                              "option is also set to true), the fix first observed time must be older than days "
                              "provided, to trigger.", example="30"),
                _comparison("vendor_cvss_v3_base_score", "vendor specified CVSS v3 base score"),
                _score("vendor_cvss_v3_base_score", "Vendor CVSS v3 base score"),
                _comparison("vendor_cvss_v3_exploitability_score", "vendor specified CVSS v3 exploitability sub score"),
                _score("vendor_cvss_v3_exploitability_score", "Vendor CVSS v3 exploitability sub score"),
                _comparison("vendor_cvss_v3_impact_score", "vendor specified CVSS v3 impact sub score"),
                _score("vendor_cvss_v3_impact_score", "Vendor CVSS v3 impact sub score"),
                ParameterSpec("known_exploited_vulnerability", "BooleanString", "If true, only vulnerabilities "
                              "CISA's Known Exploited Vulnerabilities catalog lists (by CVE id or alias); if false, "
                              "only those it does not list. Needs the catalog (`ci-gate db import "
                              "known_exploited_vulnerabilities.json`); without it the rule reports an evaluation "
                              "error.", example="true"),
                ParameterSpec("package_path_exclude", "string", "The regex to evaluate against the package path to "
                              "exclude vulnerabilities", example=r".*test\.jar*", is_regex=True),
                ParameterSpec("package_origin", "EnumString", "ci-gate extension: only packages installed by the "
                              "base image's layers (base) or by the application's layers (app). Default all.",
                              allowed_values=("all", *ORIGINS), example="app", default="all"),
            ),
        ),
        TriggerSpec(
            name="stale_feed_data",
            description="Triggers if the CVE data for the image's distro is older than the window specified by the "
            "parameter MAXAGE (unit is number of days).",
            evaluate=_stale,
            parameters=(
                ParameterSpec("max_days_since_sync", "IntegerString", "Fire the trigger if the last sync was more than "
                              "this number of days ago.", required=True, example="10"),
            ),
        ),
        TriggerSpec(
            name="vulnerability_data_unavailable",
            description="Triggers if vulnerability data is unavailable for the image's distro packages such as rpms "
            "or dpkg. Non-OS packages like npms and java are not considered in this evaluation",
            evaluate=_unavailable,
        ),
        TriggerSpec(
            name="denylist",
            aliases=("blacklist",),
            description="Triggers if any of a list of specified vulnerabilities has been detected in the image.",
            evaluate=_denylist,
            parameters=(
                ParameterSpec("vulnerability_ids", "CommaDelimitedStringList", "List of vulnerability IDs, will cause "
                              "the trigger to fire if any are detected.", required=True, example="CVE-2019-1234"),
                ParameterSpec("vendor_only", "BooleanString", "If set to True, discard matches against this "
                              "vulnerability if vendor has marked as will not fix in the vulnerability record.",
                              example="true", default="true"),
            ),
        ),
    ),
)
