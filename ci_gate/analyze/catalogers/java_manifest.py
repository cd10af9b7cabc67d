"""What a java archive's manifest and Maven metadata say: the package being built, its group
and its name, as syft's java-archive-cataloger decides them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_gate.analyze.catalogers.java_names import JAVA_ARCHIVE, JENKINS_PLUGIN, name_from_file_name

_JENKINS_PLUGIN_GROUPS = ("io.jenkins.plugins", "org.jenkins.plugins", "org.jenkins-ci.plugins",
                          "io.jenkins-ci.plugins", "com.cloudbees.jenkins.plugins")
_GROUP_DOMAINS = ("com", "org", "net", "io", "be")
_PRIMARY_MANIFEST_GROUP_FIELDS = ("Group-Id", "Bundle-SymbolicName", "Extension-Name", "Specification-Vendor",
                                  "Implementation-Vendor", "Implementation-Vendor-Id", "Implementation-Title",
                                  "Bundle-Activator")
_SECONDARY_MANIFEST_GROUP_FIELDS = ("Automatic-Module-Name", "Main-Class", "Package")
MANIFEST_NAME = "META-INF/MANIFEST.MF"
_KNOWN_GROUPS = (("ant", "org.apache.ant"), ("groovy", "org.codehaus.groovy"))
"""Artifact families whose jars often lack pom.properties and whose manifests name a Java package
rather than the Maven group (`org.apache.tools.ant`): `NAME` and `NAME-*` get this group. syft keeps
a larger artifact-to-group table; these are the families seen in Debian's jars."""


@dataclass
class JavaPackage:
    """A package being built; becomes a `Package` once its name, version and group are final."""

    name: str
    version: str
    type: str
    """java-archive or jenkins-plugin."""
    virtual_path: str
    """The archive's path with nested entries after colons: `/app.war:WEB-INF/lib/x.jar`."""
    manifest: dict[str, str] | None = None
    """The manifest's main section; None for packages known only from a pom.properties."""
    manifest_sections: list[dict[str, str]] = field(default_factory=list)
    """The manifest's named sections."""
    pom_properties: dict[str, str] | None = None
    pom_project: dict[str, Any] | None = None
    """groupId, artifactId, version, name, parent and licenses from a pom.xml."""
    licenses: list[str] = field(default_factory=list)
    digest: str = ""
    """SHA-1 of the archive's bytes (what Maven Central lookups use)."""
    parent: str = ""
    """Name of the package of the archive that holds this one."""


def parse_manifest(text: str) -> list[dict[str, str]]:
    """MANIFEST.MF sections (main first) as ordered key/value maps; continuation lines joined."""
    sections: list[dict[str, str]] = []
    last_key = ""
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        if not line:
            last_key = ""
            continue
        if line[0] == " ":
            if last_key:
                sections[-1][last_key] += line.strip()
            continue
        key, separator, value = line.partition(":")
        key = key.strip()
        if not separator or not key:
            continue
        if not last_key:
            sections.append({})
        sections[-1].setdefault(key, value.strip())
        last_key = key if key in sections[-1] else ""
    return sections


def _starts_with_domain(value: str) -> bool:
    return value.startswith(_GROUP_DOMAINS)


def _clean_group(group: str) -> str:
    return group.split(";")[0].split("#")[0].strip()


def _manifest_group_ids(package: JavaPackage, fields: tuple[str, ...]) -> list[str]:
    groups: list[str] = []
    for name in fields:
        for section in [package.manifest or {}, *package.manifest_sections]:
            value = section.get(name)
            if value is not None and _starts_with_domain(value):
                groups.append(_clean_group(value))
    return sorted(groups)


def group_id(package: JavaPackage) -> str:
    """syft's authoritative group: pom.properties, then pom.xml, then the manifest's fields."""
    project = package.pom_project or {}
    for coordinates in (package.pom_properties or {}, project, project.get("parent") or {}):
        # A groupId, else an artifactId that is itself dotted like a group (`org.example.tool`).
        if coordinates.get("groupId"):
            return _clean_group(coordinates["groupId"])
        if "." in coordinates.get("artifactId", ""):
            return _clean_group(coordinates["artifactId"])
    for family, group in _KNOWN_GROUPS:
        if package.name == family or package.name.startswith(family + "-"):
            return group
    if package.manifest is not None:
        for fields in (_PRIMARY_MANIFEST_GROUP_FIELDS, _SECONDARY_MANIFEST_GROUP_FIELDS):
            groups = _manifest_group_ids(package, fields)
            if groups:
                return groups[0]
    return ""


def type_from_group(group: str) -> str:
    if group.startswith(_JENKINS_PLUGIN_GROUPS) or ".jenkins.plugin" in group:
        return JENKINS_PLUGIN
    return JAVA_ARCHIVE


def manifest_value(package: JavaPackage, key: str) -> str:
    for section in [package.manifest or {}, *package.manifest_sections]:
        if section.get(key):
            return section[key]
    return ""


def select_name(manifest: Mapping[str, str], file_name: str) -> str:
    if "Apache Maven Bundle Plugin" in manifest.get("Created-By", ""):
        symbolic_name = manifest.get("Bundle-SymbolicName", "")
        vendor_id = manifest.get("Implementation-Vendor-Id", "")
        if symbolic_name and not (vendor_id and vendor_id == symbolic_name):
            return symbolic_name.split(".")[-1]
    name = name_from_file_name(file_name)
    if name:
        return name
    for key in ("Name", "Bundle-Name", "Short-Name", "Extension-Name", "Implementation-Title"):
        if manifest.get(key):
            return manifest[key]
    return ""
