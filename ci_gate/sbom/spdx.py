"""SPDX 2.3 JSON from an analysis: the image as the described package (purpose CONTAINER) that
CONTAINS one package per installed package, each with its purl as a PACKAGE-MANAGER reference.

Licenses become SPDX expressions: names SPDX knows become ids, others `LicenseRef-...` ids whose
text is listed in `hasExtractedLicensingInfos`, as the specification requires. Where each package
was found (path, layer) is kept in `sourceInfo` and, with its origin (base/app), in an annotation
that `ci_gate.sbom.reader` reads back.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

from ci_gate import __version__
from ci_gate.model import Analysis, Package
from ci_gate.sbom import unique_name
from ci_gate.sbom.licenses import expression_of_identifiers, is_expression, license_ref, spdx_identifier

NAMESPACE_BASE = "https://ci-gate.invalid/spdx"
"""Document namespaces must be unique URIs; they need not resolve (SPDX 2.3 §6.5)."""
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")
ANNOTATION_PREFIX = "ci-gate:"


def render_spdx(analysis: Analysis, timestamp: datetime | None = None) -> dict[str, Any]:
    """The SPDX 2.3 document (a JSON-ready dict) for an analysis."""
    identity = analysis.identity
    moment = (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = identity.repo_tags[0] if identity.repo_tags else (identity.reference or "image")
    extracted: dict[str, str] = {}
    used_ids: set[str] = set()
    root_id = _unique_id("SPDXRef-DocumentRoot-Image-" + name, used_ids)
    root: dict[str, Any] = {
        "name": name,
        "SPDXID": root_id,
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    }
    # As syft: the image's version and checksum are its manifest digest; ci-gate's annotation adds
    # the config digest (the image id), tags and layers so that `sbom:` reads the identity back.
    version = identity.manifest_digest or identity.config_digest
    root["versionInfo"] = version or "NOASSERTION"
    if version and version.startswith("sha256:"):
        root["checksums"] = [{"algorithm": "SHA256", "checksumValue": version[7:]}]
    image_facts = {
        "configDigest": identity.config_digest,
        "manifestDigest": identity.manifest_digest,
        "repoTags": list(identity.repo_tags),
        "repoDigests": list(identity.repo_digests),
        "platform": identity.platform,
        "layers": [layer.diff_id for layer in identity.layers],
        "labels": dict(analysis.config.labels),
    }
    root["annotations"] = [{"annotationDate": moment, "annotationType": "OTHER", "annotator": "Tool: ci-gate",
                            "comment": ANNOTATION_PREFIX + json.dumps(image_facts, sort_keys=True)}]
    packages = [root]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": root_id}]
    for package in analysis.packages:
        entry = _package(package, used_ids, extracted, moment)
        packages.append(entry)
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": entry["SPDXID"]})
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"{NAMESPACE_BASE}/{_ID_UNSAFE.sub('-', name).strip('-')}-{_fingerprint(analysis)}",
        "creationInfo": {
            "created": moment,
            "creators": [f"Tool: ci-gate-{analysis.tool_version or __version__}", "Organization: ci-gate"],
        },
        "documentDescribes": [root_id],
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": license_id, "name": text, "extractedText": text}
            for license_id, text in sorted(extracted.items())
        ]
    return document


def _package(package: Package, used_ids: set[str], extracted: dict[str, str], moment: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": package.name,
        "SPDXID": _unique_id(f"SPDXRef-Package-{package.type}-{package.name}", used_ids),
        "versionInfo": package.version or "NOASSERTION",
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": declared_license(package.licenses, extracted),
        "copyrightText": "NOASSERTION",
    }
    if package.locations:
        entry["sourceInfo"] = (f"acquired package info from {package.found_by or package.type}: "
                               + ", ".join(location.path for location in package.locations))
    if package.purl:
        entry["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                  "referenceLocator": package.purl}]
    facts = {
        "type": package.type,
        "foundBy": package.found_by,
        "origin": package.origin,
        "licenses": list(package.licenses),
        "locations": [{"path": location.path, "layerIndex": location.layer_index,
                       "layerID": location.layer_diff_id} for location in package.locations],
    }
    entry["annotations"] = [{
        "annotationDate": moment,
        "annotationType": "OTHER",
        "annotator": "Tool: ci-gate",
        "comment": ANNOTATION_PREFIX + json.dumps(facts, sort_keys=True),
    }]
    return entry


def declared_license(names: tuple[str, ...], extracted: dict[str, str]) -> str:
    """An SPDX license expression for a package's licenses (joined with AND), or NOASSERTION."""
    parts = []
    for name in dict.fromkeys(names):
        if is_expression(name):
            expression = expression_of_identifiers(name)
            parts.append(f"({expression})" if expression and len(names) > 1 else expression or "")
            if expression:
                continue
            parts.pop()
        identifier = None if is_expression(name) else spdx_identifier(name)
        if identifier:
            parts.append(identifier)
            continue
        reference = license_ref(name)
        extracted.setdefault(reference, name)
        parts.append(reference)
    return " AND ".join(parts) if parts else "NOASSERTION"


def _unique_id(candidate: str, used: set[str]) -> str:
    return unique_name(_ID_UNSAFE.sub("-", candidate).strip("-"), used)


def _fingerprint(analysis: Analysis) -> str:
    content = json.dumps([analysis.identity.config_digest, analysis.identity.reference,
                          [(p.type, p.name, p.version) for p in analysis.packages]], sort_keys=True)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]
