"""Package variants: a package as matching sees it (type, name, version, purl, the metadata matching
reads, the distribution), so a package shared by many images is matched once (`ci_gate.rematch`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci_gate.ecosystems import OS_PACKAGE_TYPES
from ci_gate.model import Analysis, Distro, ImageIdentity, Package, from_dict
from ci_gate.vulns.matching import VexLookup, VulnerabilityMatch, distro_key, language_key, match_packages
from ci_gate.vulns.store import VulnerabilityStore

_MATCHING_METADATA = ("source", "source_version", "origin", "epoch", "source_rpm")
"""The package metadata that matching reads (`ci_gate.vulns.matching.distro_key`)."""


def variant_body(package: Mapping[str, Any], distro: Mapping[str, Any] | None) -> str:
    """The canonical text of what matching reads of a package (and its distribution, for OS packages)."""
    metadata = package.get("metadata") or {}
    kept = {k: metadata[k] for k in _MATCHING_METADATA if isinstance(metadata, Mapping) and metadata.get(k)}
    body = {"type": package.get("type") or "", "name": package.get("name") or "",
            "version": package.get("version") or "", "purl": package.get("purl") or "", "metadata": kept,
            "distro": dict(distro) if distro and package.get("type") in OS_PACKAGE_TYPES else None}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _package_of(body: Mapping[str, Any]) -> Package:
    return Package(name=body["name"], version=body["version"], type=body["type"], purl=body["purl"],
                   metadata=body["metadata"])


def _distro_of(body: Mapping[str, Any]) -> Distro | None:
    return from_dict(Distro, body["distro"]) if body.get("distro") else None


def lookup_keys(body: Mapping[str, Any], available: Sequence[str]) -> set[tuple[str, str]]:
    """The (ecosystem, normalised name) keys matching looks a variant up under; none when it cannot be checked."""
    package = _package_of(body)
    key = distro_key(package, _distro_of(body), available) if package.type in OS_PACKAGE_TYPES \
        else language_key(package)
    if isinstance(key, str):
        return set()
    return {(ecosystem, name) for ecosystem in key.ecosystems for name, _ in key.names}


def package_location(package: Mapping[str, Any]) -> str:
    locations = package.get("locations") or []
    if locations and isinstance(locations[0], Mapping) and locations[0].get("path"):
        return str(locations[0]["path"])
    return "pkgdb"


_IDENTITY = ImageIdentity(reference="ci-gate-rematch", scheme="sbom", manifest_digest=None, config_digest=None)


@dataclass
class VariantMatches:
    """One variant's matches: those that apply, and those a VEX statement suppresses."""

    applying: list[VulnerabilityMatch] = field(default_factory=list)
    suppressed: list[VulnerabilityMatch] = field(default_factory=list)


def match_variants(store: VulnerabilityStore, bodies: Mapping[int, str], vex: VexLookup | None = None
                   ) -> dict[int, VariantMatches]:
    """Match each variant once: one `match_packages` call per distribution, the same rules (and VEX
    documents) as a gate. VEX statements name vulnerabilities and packages, never one image, so a
    variant's verdict holds for every image that has it."""
    groups: dict[str, list[tuple[int, Package]]] = {}
    distros: dict[str, Distro | None] = {}
    for variant_id, text in bodies.items():
        body = json.loads(text)
        distro_text = json.dumps(body.get("distro"), sort_keys=True)
        distros.setdefault(distro_text, _distro_of(body))
        groups.setdefault(distro_text, []).append((variant_id, _package_of(body)))
    found = {variant_id: VariantMatches() for variant_id in bodies}
    for distro_text, members in groups.items():
        owner = {id(package): variant_id for variant_id, package in members}
        analysis = Analysis(identity=_IDENTITY, distro=distros[distro_text],
                            packages=tuple(package for _, package in members))
        result = match_packages(analysis, store, vex)
        for match in result.matches:
            found[owner[id(match.package)]].applying.append(match)
        for match in result.suppressed:
            found[owner[id(match.package)]].suppressed.append(match)
    return found


def match_ids(match: VulnerabilityMatch) -> set[str]:
    return {match.vulnerability_id.upper(), *(a.upper() for a in match.aliases if a.upper().startswith("CVE-"))}


def is_kev(ids: Iterable[str], kev: frozenset[str]) -> bool:
    return any(i in kev for i in ids)
