"""The vulnerability data of one image: the store opened, the image matched once, VEX applied.

`make_provider` is what the local backend and `ci-gate serve` call to build the evaluation's
`vulnerabilities` (a `VulnerabilityMatchProvider`); the vulnerabilities gate only reads it. Without a
store the provider still exists and says why, so the gate's `vulnerability_data_unavailable` and
`stale_feed_data` rules decide, as the policy says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_gate.ecosystems import is_os_package
from ci_gate.model import Analysis
from ci_gate.vulns.store import KnownExploitedCatalog, StoreStatus, VulnerabilityStore, locate, parse_time
from ci_gate.vulns.vex import load_vex, vex_paths

if TYPE_CHECKING:
    from ci_gate.vulns.matching import MatchResult, SkippedPackage, VulnerabilityMatch


@dataclass
class VulnerabilityData:
    """The vulnerabilities of one image, or why there are none (implements VulnerabilityMatchProvider)."""

    result: MatchResult | None = None
    """None when no store could be used."""
    unavailable_reason: str = ""
    """Why there is no data: no store, an unreadable store. Empty when the store was used."""
    uncovered_distro: str = ""
    """Set when the store has no data for the image's distro release (e.g. `debian:12`)."""
    store_path: str = ""
    known_exploited: KnownExploitedCatalog | None = None
    """CISA's KEV catalog from the store; None when none was imported."""
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def matches(self) -> Sequence[VulnerabilityMatch]:
        return self.result.matches if self.result else ()

    def suppressed(self) -> Sequence[VulnerabilityMatch]:
        return self.result.suppressed if self.result else ()

    def skipped(self) -> Sequence[SkippedPackage]:
        return self.result.skipped if self.result else ()

    def status(self) -> StoreStatus | None:
        return self.result.store_status if self.result else None

    def notes(self) -> list[str]:
        """Plain sentences for the report: missing data, unchecked packages, VEX suppressions."""
        notes = []
        if self.unavailable_reason:
            notes.append(f"vulnerabilities were not checked: {self.unavailable_reason}")
        elif self.uncovered_distro:
            notes.append(f"the vulnerability store has no data for {self.uncovered_distro}: its OS packages "
                         "were not checked")
        skipped = self.skipped()
        if skipped:
            examples = ", ".join(f"{s.package.name} ({s.reason})" for s in skipped[:3])
            notes.append(f"{len(skipped)} package(s) could not be checked for vulnerabilities, e.g. {examples}")
        for match in self.suppressed():
            statement = match.suppressed_by
            if statement is not None:
                why = statement.justification or statement.impact_statement or "no justification given"
                notes.append(f"{match.vulnerability_id} in {match.package.name} {match.package.version} "
                             f"suppressed by VEX ({statement.status}: {why})")
        return notes

    def last_synced(self) -> datetime | None:
        status = self.status()
        if status is None or not status.updated_at:
            return None
        return parse_time(status.updated_at)


def distro_label(analysis: Analysis) -> str:
    distro = analysis.distro
    return f"{distro.id}:{distro.version_id}" if distro and distro.id else "unknown"


def make_provider(analysis: Analysis, vuln_db: Path | None, vex: Sequence[Path | str] | None = None
                  ) -> VulnerabilityData:
    """Match the image against the store once.

    Only the default store location may be absent: then the provider says why and the
    vulnerability_data_unavailable rule decides, as the policy says. A store the user named
    (--vuln-db, $CI_GATE_VULN_DB) that is missing or unreadable, any file that is not a store, and a
    store of another schema fail closed (VulnerabilityDataError, exit 2): silently gating without the
    data that was asked for would be a pass the gate did not earn. A VEX file that cannot be read is
    an error for the same reason: silently ignoring it would un-suppress."""
    path, origin = locate(vuln_db)
    paths = vex_paths(vex)
    vex_documents = load_vex(paths) if paths else None
    if origin == "default" and not path.exists() and not path.is_symlink():
        return VulnerabilityData(unavailable_reason=f"no vulnerability store at {path} (run `ci-gate db import` or "
                                 "`ci-gate db update`)", store_path=str(path))
    from ci_gate.vulns.matching import match_packages  # start-up: only when there is a store to match against

    with VulnerabilityStore(vuln_db) as store:
        result = match_packages(analysis, store, vex_documents)
        ecosystems = store.ecosystems()
        known_exploited = store.known_exploited()
    data = VulnerabilityData(result=result, store_path=str(path), known_exploited=known_exploited)
    os_packages = [p for p in analysis.packages if is_os_package(p.type)]
    if os_packages:
        skipped_os = [s for s in result.skipped if is_os_package(s.package.type)]
        if len(skipped_os) == len(os_packages) or not _distro_in_store(analysis, ecosystems):
            data.uncovered_distro = distro_label(analysis)
    return data


def _distro_in_store(analysis: Analysis, ecosystems: Sequence[str]) -> bool:
    from ci_gate.vulns.lookup import distro_key  # start-up: see make_provider

    for package in analysis.packages:
        if is_os_package(package.type):
            key = distro_key(package, analysis.distro, ecosystems)
            return not isinstance(key, str) and any(e in ecosystems for e in key.ecosystems)
    return True
