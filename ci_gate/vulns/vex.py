"""VEX input: OpenVEX and CycloneDX VEX documents that suppress matches.

A statement whose status is `not_affected` or `fixed` (CycloneDX: `not_affected`,
`false_positive`, `resolved`) suppresses the matches of its vulnerability (by id or alias) in the
products it names. Products are package URLs: a purl without a version covers every version; an
image purl (`pkg:oci/...`, `pkg:docker/...`) without subcomponents covers every package of the
image; OpenVEX subcomponents narrow a statement to those packages. Suppressed matches are kept
and reported as suppressed, with the statement's justification.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ci_gate.errors import VulnerabilityDataError

if TYPE_CHECKING:  # at run time imported where a document is read: `vex_paths` alone needs no matcher
    from ci_gate.vulns.matching import VexStatement, VulnerabilityMatch

ENVIRONMENT_VARIABLE = "CI_GATE_VEX"
"""VEX files (os.pathsep-separated) applied when the caller passes none explicitly."""

SUPPRESSING = frozenset({"not_affected", "fixed"})
_CYCLONEDX_STATES = {"not_affected": "not_affected", "false_positive": "not_affected", "resolved": "fixed",
                     "resolved_with_pedigree": "fixed", "exploitable": "affected", "in_triage": "under_investigation"}
_IMAGE_PURL_TYPES = ("pkg:oci/", "pkg:docker/")


@dataclass(frozen=True, slots=True)
class _Rule:
    statement: VexStatement
    vulnerability_ids: frozenset[str]
    products: tuple[str, ...]
    """Package URLs; empty = every package."""


def _purl_base(purl: str) -> tuple[str, str]:
    """(purl without version/qualifiers, version) lower-cased for comparison."""
    text = purl.split("#", 1)[0].split("?", 1)[0]
    base, _, version = text.partition("@")
    return base.lower(), version


def _product_matches(product: str, package_purl: str) -> bool:
    if not package_purl:
        return False
    base, version = _purl_base(product)
    package_base, package_version = _purl_base(package_purl)
    return base == package_base and (not version or version == package_version)


class VexDocumentSet:
    """The statements of one or more VEX documents; `find(match)` gives the one that suppresses it."""

    def __init__(self, rules: Sequence[_Rule] = ()) -> None:
        self._rules = list(rules)

    def __len__(self) -> int:
        return len(self._rules)

    def suppressing(self) -> dict[str, list[str]]:
        """Each suppressing statement as canonical text (what it covers, not its wording) -> the
        vulnerability ids it names: `ci-gate watch` compares these between runs to find what to re-match."""
        found: dict[str, list[str]] = {}
        for rule in self._rules:
            if rule.statement.status in SUPPRESSING:
                ids = sorted(rule.vulnerability_ids)
                found[json.dumps([ids, sorted(rule.products)], separators=(",", ":"))] = ids
        return found

    def find(self, match: VulnerabilityMatch) -> VexStatement | None:
        ids = {match.vulnerability_id.upper(), *(alias.upper() for alias in match.aliases)}
        for rule in self._rules:
            if rule.statement.status not in SUPPRESSING or not (rule.vulnerability_ids & ids):
                continue
            if not rule.products or any(_product_matches(p, match.package.purl) for p in rule.products):
                return rule.statement
        return None


def _openvex_rules(document: Mapping[str, Any], source: str) -> list[_Rule]:
    from ci_gate.vulns.matching import VexStatement

    rules = []
    for statement in document.get("statements") or []:
        if not isinstance(statement, Mapping):
            raise VulnerabilityDataError(f"{source}: an OpenVEX statement is not an object")
        vulnerability = statement.get("vulnerability")
        ids: set[str] = set()
        if isinstance(vulnerability, str):
            ids.add(vulnerability)
        elif isinstance(vulnerability, Mapping):
            for key in ("name", "@id"):
                if isinstance(vulnerability.get(key), str):
                    ids.add(vulnerability[key])
            ids.update(a for a in vulnerability.get("aliases") or [] if isinstance(a, str))
        if not ids:
            raise VulnerabilityDataError(f"{source}: an OpenVEX statement names no vulnerability")
        products: list[str] = []
        covers_image = False
        for product in statement.get("products") or []:
            if isinstance(product, str):
                identifier = product
            elif isinstance(product, Mapping):
                identifier = str(product.get("@id", ""))
            else:
                continue
            identifiers = product.get("identifiers", {}) if isinstance(product, Mapping) else {}
            purl = identifiers.get("purl", "") if isinstance(identifiers, Mapping) else ""
            subcomponents = product.get("subcomponents") or [] if isinstance(product, Mapping) else []
            sub_ids = [s if isinstance(s, str) else s.get("@id", "") or (s.get("identifiers") or {}).get("purl", "")
                       for s in subcomponents if isinstance(s, (str, Mapping))]
            if sub_ids:
                products.extend(i for i in sub_ids if i)
            elif any(str(x).startswith(_IMAGE_PURL_TYPES) for x in (identifier, purl)):
                covers_image = True
            else:
                products.extend(i for i in (identifier, purl) if i)
        status = str(statement.get("status", "")).strip().lower()
        rules.append(_Rule(
            VexStatement(
                vulnerability=sorted(ids)[0], status=status,
                justification=str(statement.get("justification") or ""),
                impact_statement=str(statement.get("impact_statement") or statement.get("status_notes") or ""),
                source=source,
            ),
            frozenset(i.upper() for i in ids),
            () if covers_image or not products else tuple(products),
        ))
    return rules


def _cyclonedx_rules(document: Mapping[str, Any], source: str) -> list[_Rule]:
    from ci_gate.vulns.matching import VexStatement

    references: dict[str, str] = {}

    def collect(components: Iterable[Any]) -> None:
        for component in components:
            if isinstance(component, Mapping):
                if component.get("bom-ref"):
                    references[str(component["bom-ref"])] = str(component.get("purl") or component["bom-ref"])
                collect(component.get("components") or [])

    collect(document.get("components") or [])
    metadata_component = (document.get("metadata") or {}).get("component")
    if isinstance(metadata_component, Mapping):
        collect([metadata_component])
    rules = []
    for vulnerability in document.get("vulnerabilities") or []:
        if not isinstance(vulnerability, Mapping) or not isinstance(vulnerability.get("id"), str):
            raise VulnerabilityDataError(f"{source}: a CycloneDX vulnerability has no id")
        analysis = vulnerability.get("analysis") or {}
        state = _CYCLONEDX_STATES.get(str(analysis.get("state", "")).lower(), "")
        products = []
        covers_image = False
        for affect in vulnerability.get("affects") or []:
            reference = _bom_link_element(str(affect.get("ref", "")) if isinstance(affect, Mapping) else "")
            purl = references.get(reference, reference)
            if purl.startswith(_IMAGE_PURL_TYPES):
                covers_image = True
            elif purl:
                products.append(purl)
        ids = {vulnerability["id"]}
        ids.update(r.get("id") for r in vulnerability.get("references") or []
                   if isinstance(r, Mapping) and isinstance(r.get("id"), str))
        rules.append(_Rule(
            VexStatement(
                vulnerability=vulnerability["id"], status=state,
                justification=str(analysis.get("justification") or ""),
                impact_statement=str(analysis.get("detail") or ""),
                source=source,
            ),
            frozenset(i.upper() for i in ids),
            () if covers_image or not products else tuple(products),
        ))
    return rules


def _bom_link_element(reference: str) -> str:
    """The bom-ref a BOM-Link (`urn:cdx:SERIAL/VERSION#BOM-REF`) points at, URL-decoded (CycloneDX's own VEX
    examples link the SBOM's components this way, their bom-ref often a purl); other references as they are.
    A link to a whole BOM (no `#`) names no component and stays as it is: it suppresses nothing."""
    if not reference.lower().startswith("urn:cdx:") or "#" not in reference:
        return reference
    element = reference.partition("#")[2]
    # Some publish the purl unencoded (`#pkg:npm/%40scope/name@1`): decoding that would break its own escapes.
    return element if element.lower().startswith("pkg:") else unquote(element)


def load_vex(paths: Sequence[Path | str]) -> VexDocumentSet:
    """Read OpenVEX / CycloneDX VEX JSON documents; VulnerabilityDataError for anything else."""
    rules: list[_Rule] = []
    for raw in paths:
        path = Path(raw)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise VulnerabilityDataError(f"cannot read the VEX file {path}: {error.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise VulnerabilityDataError(f"the VEX file {path} is not valid JSON ({error})") from None
        if not isinstance(document, Mapping):
            raise VulnerabilityDataError(f"the VEX file {path} is not a JSON object")
        context = str(document.get("@context", ""))
        if "openvex" in context or "statements" in document:
            rules.extend(_openvex_rules(document, str(path)))
        elif document.get("bomFormat") == "CycloneDX":
            rules.extend(_cyclonedx_rules(document, str(path)))
        else:
            raise VulnerabilityDataError(
                f"{path} is neither an OpenVEX document (@context openvex) nor CycloneDX VEX (bomFormat CycloneDX)")
    return VexDocumentSet(rules)


def vex_paths(explicit: Sequence[Path | str] | None) -> list[Path]:
    """The VEX files to apply: the ones given, else those `$CI_GATE_VEX` names."""
    if explicit:
        return [Path(p) for p in explicit]
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE, "")
    return [Path(p) for p in from_environment.split(os.pathsep) if p]
