"""An SBOM as an image source (`sbom:PATH`): syft JSON, CycloneDX JSON or SPDX 2.x JSON → Analysis.

A team that already runs syft can gate on its SBOM without giving ci-gate the image. What an SBOM
does not say (files, users, secrets) stays empty; the identity comes from the SBOM's own metadata
(syft's `source`, CycloneDX's `metadata.component`, SPDX's described package), the distribution
from syft's `distro`, the CycloneDX operating-system component, or the purls' `distro` qualifier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from ci_gate.ecosystems import OS_PACKAGE_TYPES, is_os_package, package_type_of_purl_type, purl_type_of
from ci_gate.errors import SourceError
from ci_gate.json_fields import optional_list
from ci_gate.model import ORIGINS, Analysis, Distro, ImageConfig, ImageIdentity, Layer, Location, Package
from ci_gate.sbom.spdx import ANNOTATION_PREFIX

MAX_SBOM_BYTES = 512 * 1024 * 1024
_OS_PURL_PREFIXES = tuple(f"pkg:{purl_type_of(kind)}/" for kind in sorted(OS_PACKAGE_TYPES))
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_SOURCE_INFO = re.compile(r"^acquired package info from [^:]*: (?P<paths>.+)$")


def analysis_from_sbom(path: Path) -> Analysis:
    """Read the SBOM at `path`; SourceError with one line saying what is wrong when it cannot be used."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise SourceError(f"cannot read the SBOM {path}: {error.strerror or error}; check the path") from None
    if size > MAX_SBOM_BYTES:
        raise SourceError(f"the SBOM {path} is {size:,} bytes, more than {MAX_SBOM_BYTES:,}; is it an SBOM?")
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as error:
        raise SourceError(f"the SBOM {path} is not JSON ({type(error).__name__}); give a syft JSON, "
                          "CycloneDX JSON or SPDX JSON file") from None
    if not isinstance(document, dict):
        raise SourceError(f"the SBOM {path} is not a JSON object; give a syft, CycloneDX or SPDX JSON SBOM")
    reference = f"sbom:{path}"
    try:
        if isinstance(document.get("artifacts"), list) and isinstance(document.get("source"), dict):
            return _from_syft(document, reference)
        if document.get("bomFormat") == "CycloneDX":
            return _from_cyclonedx(document, reference)
        if str(document.get("spdxVersion", "")).startswith("SPDX-2"):
            return _from_spdx(document, reference)
    except (TypeError, AttributeError, KeyError, ValueError) as error:
        raise SourceError(f"the SBOM {path} does not follow its format ({type(error).__name__}: {error})") from None
    raise SourceError(f"{path} is neither a syft JSON, a CycloneDX JSON nor an SPDX 2.x JSON SBOM; "
                      "produce one with e.g. `syft IMAGE -o json`")


# --- syft JSON -------------------------------------------------------------------------------------


def _from_syft(document: Mapping[str, Any], reference: str) -> Analysis:
    source = document.get("source") or {}
    metadata = source.get("metadata") or {}
    layers = tuple(
        Layer(index=i, digest="", diff_id=str(layer.get("digest") or ""), media_type=str(layer.get("mediaType") or ""),
              size=int(layer.get("size") or 0))
        for i, layer in enumerate(optional_list(metadata.get("layers"), "source.metadata.layers"))
        if isinstance(layer, Mapping)
    )
    layer_index = {layer.diff_id: layer.index for layer in layers}
    raw_distro = document.get("distro") or {}
    distro = None
    if isinstance(raw_distro, Mapping) and raw_distro.get("id"):
        distro = Distro(
            id=str(raw_distro["id"]),
            version_id=str(raw_distro.get("versionID") or ""),
            name=str(raw_distro.get("name") or ""),
            pretty_name=str(raw_distro.get("prettyName") or ""),
            version_codename=str(raw_distro.get("versionCodename") or ""),
            id_like=tuple(str(x) for x in raw_distro.get("idLike") or ()),
        )
    packages = []
    for artifact in optional_list(document.get("artifacts"), "artifacts"):
        if not isinstance(artifact, Mapping) or not artifact.get("name"):
            continue
        locations = tuple(
            Location(path=str(location.get("path") or ""), layer_index=layer_index.get(location.get("layerID", "")),
                     layer_diff_id=location.get("layerID") or None)
            for location in artifact.get("locations") or [] if isinstance(location, Mapping)
        )
        licenses = []
        for license in artifact.get("licenses") or []:
            if isinstance(license, Mapping):
                value = license.get("spdxExpression") or license.get("value")
                if value:
                    licenses.append(str(value))
            elif isinstance(license, str):
                licenses.append(license)
        package_type = str(artifact.get("type") or "")
        name, version = str(artifact["name"]), _version(artifact.get("version"))
        packages.append(Package(
            name=name, version=version, type=package_type, purl=str(artifact.get("purl") or ""),
            licenses=tuple(dict.fromkeys(licenses)), locations=locations,
            found_by=str(artifact.get("foundBy") or ""),
            metadata=_normalised_metadata(artifact.get("metadata"), package_type, name, version, distro),
        ))
    tags = tuple(str(tag) for tag in metadata.get("tags") or ())
    identity = ImageIdentity(
        reference=reference, scheme="sbom",
        manifest_digest=metadata.get("manifestDigest") or None,
        config_digest=metadata.get("imageID") or None,
        repo_tags=tags, repo_digests=tuple(str(d) for d in metadata.get("repoDigests") or ()),
        platform="/".join(str(part) for part in (metadata.get("os"), metadata.get("architecture")) if part),
        layers=layers, total_size=sum(layer.size for layer in layers),
    )
    labels = metadata.get("labels") if isinstance(metadata.get("labels"), Mapping) else {}
    return _analysis(identity, distro, packages, labels or {}, f"syft {source.get('type', '')} SBOM".strip())


def _normalised_metadata(raw: Any, package_type: str, name: str, version: str,
                         distro: Distro | None) -> dict[str, Any]:
    """syft's camelCase metadata as snake_case, plus the keys matching relies on (source, distro)."""
    metadata: dict[str, Any] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                metadata[_CAMEL.sub("_", str(key)).lower()] = value
    if package_type == "deb":
        metadata["source"] = metadata.get("source") or name
        metadata["source_version"] = metadata.get("source_version") or version
    if package_type == "apk":
        metadata["origin"] = metadata.get("origin_package") or name
    if package_type == "rpm":
        metadata["source_rpm"] = metadata.get("source_rpm") or ""
    if distro is not None and is_os_package(package_type):
        metadata["distro"] = f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id
    return metadata


# --- CycloneDX -------------------------------------------------------------------------------------


def _walk_components(components: Any) -> Iterator[Mapping[str, Any]]:
    for component in components or []:
        if isinstance(component, Mapping):
            yield component
            yield from _walk_components(component.get("components"))


def _properties(item: Mapping[str, Any]) -> dict[str, str]:
    return {str(p.get("name")): str(p.get("value") or "") for p in item.get("properties") or []
            if isinstance(p, Mapping) and p.get("name")}


def _from_cyclonedx(document: Mapping[str, Any], reference: str) -> Analysis:
    header = document.get("metadata") or {}
    subject = header.get("component") or {}
    subject_properties = _properties(subject) if isinstance(subject, Mapping) else {}
    distro = None
    packages = []
    for component in _walk_components(optional_list(document.get("components"), "components")):
        properties = _properties(component)
        if component.get("type") == "operating-system":
            distro = Distro(
                id=properties.get("syft:distro:id") or str(component.get("name") or ""),
                version_id=properties.get("syft:distro:versionID") or str(component.get("version") or ""),
                pretty_name=properties.get("syft:distro:prettyName") or str(component.get("description") or ""),
                version_codename=properties.get("syft:distro:versionCodename", ""),
                id_like=tuple(value for key, value in sorted(properties.items())
                              if key.startswith("syft:distro:idLike")),
            )
            continue
        if component.get("type") in ("container", "file") or not component.get("name"):
            continue
        purl = str(component.get("purl") or "")
        package_type = properties.get("syft:package:type") or _type_of_purl(purl)
        locations = []
        number = 0
        while f"syft:location:{number}:path" in properties:
            index_text = properties.get(f"ci-gate:location:{number}:layerIndex", "")
            locations.append(Location(
                path=properties[f"syft:location:{number}:path"],
                layer_index=int(index_text) if index_text.isdigit() else None,
                layer_diff_id=properties.get(f"syft:location:{number}:layerID") or None))
            number += 1
        metadata = {key.removeprefix("ci-gate:metadata:"): value for key, value in properties.items()
                    if key.startswith("ci-gate:metadata:")}
        packages.append(Package(
            name=str(component["name"]), version=_version(component.get("version")), type=package_type,
            purl=purl, licenses=tuple(_cyclonedx_licenses(component.get("licenses"))),
            locations=tuple(locations), found_by=properties.get("syft:package:foundBy", ""),
            metadata=metadata, origin=properties.get("ci-gate:origin") or None,
        ))
    if distro is None:
        distro = _distro_from_purls(package.purl for package in packages)
    layers = tuple(
        Layer(index=int(key.rsplit(":", 1)[1]), digest="", diff_id=value, media_type="", size=0)
        for key, value in sorted(subject_properties.items(), key=lambda item: _number_suffix(item[0]))
        if key.startswith("ci-gate:image:layer:") and key.rsplit(":", 1)[1].isdigit()
    )
    layer_index = {layer.diff_id: layer.index for layer in layers}
    packages = [_with_layer_indexes(package, layer_index) for package in packages]
    version = str(subject.get("version") or "") if isinstance(subject, Mapping) else ""
    identity = ImageIdentity(
        reference=reference, scheme="sbom",
        # syft writes the manifest digest as the image's version; ci-gate names both digests.
        manifest_digest=subject_properties.get("ci-gate:image:manifestDigest")
        or (version if version.startswith("sha256:") else None),
        config_digest=subject_properties.get("ci-gate:image:configDigest") or None,
        repo_tags=tuple(value for key, value in sorted(subject_properties.items())
                        if key.startswith("ci-gate:image:tag:"))
        or ((str(subject.get("name")),) if isinstance(subject, Mapping) and _looks_like_tag(subject.get("name"))
            else ()),
        repo_digests=tuple(value for key, value in sorted(subject_properties.items())
                           if key.startswith("ci-gate:image:repoDigest:")),
        platform=subject_properties.get("ci-gate:image:platform", ""),
        layers=layers,
    )
    labels = {key.removeprefix("syft:image:labels:"): value for key, value in subject_properties.items()
              if key.startswith("syft:image:labels:")}
    return _analysis(identity, distro, packages, labels, "CycloneDX SBOM")


def _cyclonedx_licenses(choices: Any) -> list[str]:
    found = []
    for choice in choices or []:
        if not isinstance(choice, Mapping):
            continue
        if choice.get("expression"):
            found.append(str(choice["expression"]))
        license = choice.get("license")
        if isinstance(license, Mapping) and (license.get("id") or license.get("name")):
            found.append(str(license.get("id") or license.get("name")))
    return list(dict.fromkeys(found))


# --- SPDX ------------------------------------------------------------------------------------------


def _from_spdx(document: Mapping[str, Any], reference: str) -> Analysis:
    described = set(document.get("documentDescribes") or [])
    for relationship in document.get("relationships") or []:
        if isinstance(relationship, Mapping) and relationship.get("relationshipType") == "DESCRIBES":
            described.add(relationship.get("relatedSpdxElement"))
    extracted = {str(info.get("licenseId")): str(info.get("name") or info.get("extractedText") or "")
                 for info in document.get("hasExtractedLicensingInfos") or [] if isinstance(info, Mapping)}
    root: Mapping[str, Any] = {}
    packages = []
    for entry in optional_list(document.get("packages"), "packages"):
        if not isinstance(entry, Mapping):
            continue
        if entry.get("SPDXID") in described or entry.get("primaryPackagePurpose") == "CONTAINER":
            root = root or entry
            continue
        purl = next((str(ref.get("referenceLocator")) for ref in entry.get("externalRefs") or []
                     if isinstance(ref, Mapping) and ref.get("referenceType") == "purl"), "")
        facts = _annotation_facts(entry)
        locations = tuple(
            Location(path=str(location.get("path") or ""), layer_index=location.get("layerIndex"),
                     layer_diff_id=location.get("layerID") or None)
            for location in facts.get("locations") or [] if isinstance(location, Mapping)
        ) or _locations_from_source_info(str(entry.get("sourceInfo") or ""))
        if isinstance(facts.get("licenses"), list):
            licenses = [str(x) for x in facts["licenses"]]
        else:
            licenses = _spdx_licenses(str(entry.get("licenseDeclared") or ""), extracted)
        packages.append(Package(
            name=str(entry.get("name") or ""), version=_version(entry.get("versionInfo")),
            type=str(facts.get("type") or _type_of_purl(purl)), purl=purl, licenses=tuple(licenses),
            locations=locations, found_by=str(facts.get("foundBy") or ""),
            origin=facts.get("origin") if facts.get("origin") in ORIGINS else None,
        ))
    packages = [package for package in packages if package.name]
    distro = _distro_from_purls(package.purl for package in packages)
    version = str(root.get("versionInfo") or "")
    image = _annotation_facts(root)
    layers = tuple(Layer(index=i, digest="", diff_id=str(diff_id), media_type="", size=0)
                   for i, diff_id in enumerate(image.get("layers") or []))
    layer_index = {layer.diff_id: layer.index for layer in layers}
    packages = [_with_layer_indexes(package, layer_index) for package in packages]
    tags = tuple(str(tag) for tag in image.get("repoTags") or ())
    identity = ImageIdentity(
        reference=reference, scheme="sbom",
        # syft writes the manifest digest as the image's version; ci-gate's annotation names both.
        manifest_digest=image.get("manifestDigest") or (version if version.startswith("sha256:") else None),
        config_digest=image.get("configDigest") or None,
        repo_tags=tags or ((str(root.get("name")),) if _looks_like_tag(root.get("name")) else ()),
        repo_digests=tuple(str(digest) for digest in image.get("repoDigests") or ()),
        platform=str(image.get("platform") or ""),
        layers=layers,
    )
    labels = image.get("labels") if isinstance(image.get("labels"), Mapping) else {}
    return _analysis(identity, distro, packages, labels or {}, "SPDX SBOM")


def _annotation_facts(entry: Mapping[str, Any]) -> dict[str, Any]:
    for annotation in entry.get("annotations") or []:
        comment = str(annotation.get("comment") or "") if isinstance(annotation, Mapping) else ""
        if comment.startswith(ANNOTATION_PREFIX):
            try:
                facts = json.loads(comment[len(ANNOTATION_PREFIX):])
            except ValueError:
                return {}
            return facts if isinstance(facts, dict) else {}
    return {}


def _locations_from_source_info(text: str) -> tuple[Location, ...]:
    match = _SOURCE_INFO.match(text.strip())
    if not match:
        return ()
    return tuple(Location(path=path.strip()) for path in match.group("paths").split(", ") if path.strip())


def _spdx_licenses(expression: str, extracted: Mapping[str, str]) -> list[str]:
    if expression in ("", "NOASSERTION", "NONE"):
        return []
    # syft joins a package's licenses with AND; a flat AND-list is read back as the list.
    parts = [part.strip() for part in expression.split(" AND ")]
    if any("(" in part or ")" in part or " OR " in part for part in parts):
        return [expression]
    return [extracted.get(part, part.removeprefix("LicenseRef-")) for part in parts]


# --- shared ----------------------------------------------------------------------------------------


def _analysis(identity: ImageIdentity, distro: Distro | None, packages: list[Package],
              labels: Mapping[str, Any], kind: str) -> Analysis:
    return Analysis(
        identity=identity,
        config=ImageConfig(labels={str(k): str(v) for k, v in labels.items()}),
        distro=distro,
        packages=tuple(sorted(packages, key=lambda p: (p.type, p.name, p.version))),
        warnings=(f"read from a {kind}: files, users, secrets and the image configuration are not in an SBOM, "
                  "so the gates that need them see nothing",),
    )


def _version(value: Any) -> str:
    text = str(value or "")
    return "" if text in ("UNKNOWN", "NOASSERTION") else text


def _type_of_purl(purl: str) -> str:
    if not purl.startswith("pkg:"):
        return ""
    kind = purl[4:].split("/", 1)[0].lower()
    return package_type_of_purl_type(kind)


def _distro_from_purls(purls: Iterator[str] | Any) -> Distro | None:
    for purl in purls:
        if not purl.startswith(_OS_PURL_PREFIXES) or "distro=" not in purl:
            continue
        try:
            label = PackageURL.from_string(purl).qualifiers.get("distro", "")
        except ValueError:
            continue
        if isinstance(label, str) and label:
            distro_id, _, version = label.partition("-")
            return Distro(id=distro_id, version_id=version)
    return None


def _with_layer_indexes(package: Package, layer_index: Mapping[str, int]) -> Package:
    if not layer_index:
        return package
    import dataclasses

    locations = tuple(
        dataclasses.replace(location, layer_index=layer_index.get(location.layer_diff_id or "", location.layer_index))
        for location in package.locations
    )
    return dataclasses.replace(package, locations=locations)


def _number_suffix(key: str) -> int:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _looks_like_tag(name: Any) -> bool:
    return isinstance(name, str) and ":" in name and not name.startswith("/") and " " not in name
