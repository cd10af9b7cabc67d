"""CycloneDX 1.6 JSON from an analysis: one `library` component per package, the distribution as an
`operating-system` component, the image as the BOM's subject (`metadata.component`, type container).

Property names follow syft's (`syft:package:type`, `syft:package:foundBy`, `syft:location:N:path`,
`syft:location:N:layerID`, `syft:distro:*`, `syft:image:labels:*`), so tools that read syft's
CycloneDX read ours, and `ci_gate.sbom.reader` reads both. ci-gate's own facts use `ci-gate:`
properties: the package's origin (base/app), its layer index, and its scalar metadata.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ci_gate import __version__
from ci_gate.model import Analysis, Package
from ci_gate.sbom import unique_name
from ci_gate.sbom.licenses import expression_of_identifiers, is_expression, spdx_identifier

SPEC_VERSION = "1.6"
SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.6.schema.json"


def render_cyclonedx(analysis: Analysis, timestamp: datetime | None = None) -> dict[str, Any]:
    """The CycloneDX document (a JSON-ready dict) for an analysis."""
    identity = analysis.identity
    components: list[dict[str, Any]] = []
    used_references: set[str] = set()
    for package in analysis.packages:
        components.append(_component(package, used_references))
    if analysis.distro is not None and analysis.distro.id:
        distro = analysis.distro
        os_component: dict[str, Any] = {
            "bom-ref": f"os:{distro.id}@{distro.version_id or 'unknown'}",
            "type": "operating-system",
            "name": distro.id,
            "version": distro.version_id or None,
            "description": distro.pretty_name or None,
            "properties": _properties([
                ("syft:distro:id", distro.id),
                ("syft:distro:prettyName", distro.pretty_name),
                ("syft:distro:versionCodename", distro.version_codename),
                ("syft:distro:versionID", distro.version_id),
                *(("syft:distro:idLike:" + str(i), like) for i, like in enumerate(distro.id_like)),
            ]),
        }
        components.append(_without_empty(os_component))
    image_properties = [
        ("ci-gate:image:reference", identity.reference),
        ("ci-gate:image:scheme", identity.scheme),
        ("ci-gate:image:manifestDigest", identity.manifest_digest or ""),
        ("ci-gate:image:configDigest", identity.config_digest or ""),
        ("ci-gate:image:platform", identity.platform),
        *((f"ci-gate:image:tag:{i}", tag) for i, tag in enumerate(identity.repo_tags)),
        *((f"ci-gate:image:repoDigest:{i}", digest) for i, digest in enumerate(identity.repo_digests)),
        *((f"ci-gate:image:layer:{layer.index}", layer.diff_id) for layer in identity.layers),
        *((f"syft:image:labels:{key}", value) for key, value in sorted(analysis.config.labels.items())),
    ]
    subject = _without_empty({
        "bom-ref": "image:" + (identity.config_digest or _digest_of(identity.reference)),
        "type": "container",
        "name": _image_name(analysis),
        # As syft: the image's version is its manifest digest (the config digest is a property).
        "version": identity.manifest_digest or identity.config_digest or None,
        "properties": _properties(image_properties),
    })
    moment = (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{_serial(analysis)}",
        "version": 1,
        "metadata": {
            "timestamp": moment,
            "tools": {"components": [{"type": "application", "author": "ci-gate", "name": "ci-gate",
                                      "version": analysis.tool_version or __version__}]},
            "component": subject,
        },
        "components": components,
    }


def _component(package: Package, used_references: set[str]) -> dict[str, Any]:
    reference = _unique_reference(package, used_references)
    properties: list[tuple[str, str]] = [
        ("syft:package:foundBy", package.found_by),
        ("syft:package:type", package.type),
    ]
    for number, location in enumerate(package.locations):
        properties.append((f"syft:location:{number}:path", location.path))
        if location.layer_diff_id:
            properties.append((f"syft:location:{number}:layerID", location.layer_diff_id))
        if location.layer_index is not None:
            properties.append((f"ci-gate:location:{number}:layerIndex", str(location.layer_index)))
    if package.origin:
        properties.append(("ci-gate:origin", package.origin))
    properties.extend(_metadata_properties(package.metadata))
    component: dict[str, Any] = {
        "bom-ref": reference,
        "type": "library",
        "name": package.name,
        "version": package.version or None,
        "licenses": _licenses(package.licenses) or None,
        "purl": package.purl or None,
        "properties": _properties(properties),
    }
    return _without_empty(component)


def _licenses(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """CycloneDX license choices: ids where SPDX knows the name, a lone expression as `expression`
    (the schema allows an expression only as the single entry), anything else by name."""
    if len(names) == 1 and is_expression(names[0]):
        expression = expression_of_identifiers(names[0])
        if expression:
            return [{"expression": expression}]
    choices = []
    for name in dict.fromkeys(names):
        identifier = None if is_expression(name) else spdx_identifier(name)
        choices.append({"license": {"id": identifier} if identifier else {"name": name}})
    return choices


def _metadata_properties(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for key, value in sorted(metadata.items()):
        if isinstance(value, bool):
            found.append((f"ci-gate:metadata:{key}", "true" if value else "false"))
        elif isinstance(value, (str, int, float)) and value != "":
            found.append((f"ci-gate:metadata:{key}", str(value)))
    return found


def _properties(pairs: list[tuple[str, str]] | Any) -> list[dict[str, str]] | None:
    found = [{"name": name, "value": value} for name, value in pairs if value]
    return found or None


def _without_empty(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _unique_reference(package: Package, used: set[str]) -> str:
    first_path = package.locations[0].path if package.locations else ""
    key = "\x00".join((package.type, package.name, package.version, first_path))
    return unique_name(f"pkg:{package.type}/{_digest_of(key)[:16]}", used)


def _digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _image_name(analysis: Analysis) -> str:
    identity = analysis.identity
    if identity.repo_tags:
        return identity.repo_tags[0]
    return identity.reference or "image"


def _serial(analysis: Analysis) -> uuid.UUID:
    """The same analysis gives the same serial number (a BOM is identified by what it describes)."""
    content = json.dumps(
        [analysis.identity.config_digest, analysis.identity.reference, analysis.tool_version,
         [(p.type, p.name, p.version, p.purl) for p in analysis.packages]],
        sort_keys=True,
    )
    return uuid.uuid5(uuid.NAMESPACE_URL, "https://ci-gate.invalid/cyclonedx/" + _digest_of(content))
