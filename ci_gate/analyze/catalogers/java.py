"""Java archives (jar, war, ear, Jenkins jpi/hpi, ...), the jars nested inside them, and jars in zips.

An archive is read from the evidence bytes with `zipfile`; nothing is ever written to the host, and
entry names are only compared as strings, so a `../../etc/passwd` entry is harmless. Each read is
bounded (per entry, per archive tree, nesting depth, entry count), so a zip bomb costs at most the
budget and yields a warning while the rest of the inventory stands.

Identity follows syft's java-archive-cataloger: an archive with a `META-INF/MANIFEST.MF` is a
package named from the one `pom.properties` that matches the file name, else from the manifest
(Apache Maven Bundle Plugin symbolic name) or the file name; versioned from pom.properties, else the
file name, else `Implementation-Version`, `Specification-Version`, `Plugin-Version`,
`Bundle-Version`. Every other `pom.properties` inside (a shaded dependency) is a package too. The
purl is `pkg:maven/GROUP/ARTIFACT@VERSION`, the group from pom.properties, pom.xml or the manifest.

JVM installations (syft's java-jvm-cataloger): the `release` file of a JDK or JRE names its version
and implementor; the package is `binary` typed, `pkg:generic/VENDOR/PRODUCT@VERSION`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import posixpath
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.license_text import LICENSE_FILE_NAMES, identify_licenses
from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.analyze.catalogers.streaming import EvidenceError, StreamingCataloger, location_of, origin_of
from ci_gate.errors import quoted
from ci_gate.model import Location, Package

ARCHIVE_EXTENSIONS = ("jar", "war", "ear", "par", "sar", "nar", "jpi", "hpi", "kar", "lpkg")
"""syft's java archive globs (case-sensitive, like syft's)."""
WRAPPER_EXTENSIONS = ("zip",)
"""Plain zips are searched for java archives (syft's search-indexed-archives, on by default)."""

MAX_NESTING_DEPTH = 5
"""Archives inside archives deeper than this are not opened (real ones stop at 2 or 3)."""
MAX_NESTED_ARCHIVE_BYTES = 128 * 1024 * 1024
MAX_METADATA_ENTRY_BYTES = 1024 * 1024
"""A manifest, pom.properties or pom.xml larger than this is not a real one."""
MAX_INFLATED_BYTES_PER_EVIDENCE = 1024 * 1024 * 1024
"""What one top-level archive may inflate to, nested archives included; beyond is a bomb. All archives
of an image together share `CatalogContext.inflation` too."""
MAX_HELD_NESTED_BYTES = 256 * 1024 * 1024
"""Inflated nested archives held at once while their own nested archives are read (a chain of jars
inside jars keeps each level in memory until its children are done)."""
MAX_WARNINGS_PER_EVIDENCE = 20
MAX_ENTRIES = 200_000

JAVA_ARCHIVE = "java-archive"
JENKINS_PLUGIN = "jenkins-plugin"
_JENKINS_PLUGIN_GROUPS = ("io.jenkins.plugins", "org.jenkins.plugins", "org.jenkins-ci.plugins",
                          "io.jenkins-ci.plugins", "com.cloudbees.jenkins.plugins")
_GROUP_DOMAINS = ("com", "org", "net", "io", "be")
_PRIMARY_MANIFEST_GROUP_FIELDS = ("Group-Id", "Bundle-SymbolicName", "Extension-Name", "Specification-Vendor",
                                  "Implementation-Vendor", "Implementation-Vendor-Id", "Implementation-Title",
                                  "Bundle-Activator")
_SECONDARY_MANIFEST_GROUP_FIELDS = ("Automatic-Module-Name", "Main-Class", "Package")
_MANIFEST_NAME = "META-INF/MANIFEST.MF"
_KNOWN_GROUPS = (("ant", "org.apache.ant"), ("groovy", "org.codehaus.groovy"))
"""Artifact families whose jars often lack pom.properties and whose manifests name a Java package
rather than the Maven group (`org.apache.tools.ant`): `NAME` and `NAME-*` get this group. syft keeps
a larger artifact-to-group table; these are the families seen in Debian's jars."""

# syft's file-name pattern is RE2 with (?U) (ungreedy): every quantifier below is the lazy form of
# syft's, so Python's backtracking picks the same split of name and version.
_FILE_NAME_PATTERN = re.compile(
    r"^(?P<name>(?:[A-Za-z][A-Za-z0-9_.]*?(?:\.[A-Za-z][A-Za-z0-9_.]*?)*?-??)+?)"
    r"(?:-(?P<version>(\d.*?|(build\d+?.*?)|(rc??\d+?(?:^[A-Za-z].*?)??))))??$",
    re.IGNORECASE | re.ASCII,
)
_SECONDARY_VERSION_PATTERN = re.compile(
    r"(?:[._-](?P<version>(\d.*|(build\d+.*)|(rc?\d+(?:^[A-Za-z].*)?))))?$", re.ASCII)
_JAVA_IDENTIFIER_START = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Sc", "Pc"))


@dataclass
class _Budget:
    """What is left to inflate for one top-level evidence file."""

    remaining: int
    """Bytes that may still be inflated."""
    held: int = 0
    """Bytes of inflated nested archives in memory now."""
    warnings: list[str] = field(default_factory=list)
    """Problems met inside the archive tree, reported once the evidence is done."""


@dataclass
class _JavaPackage:
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


def split_file_name(path: str) -> tuple[str, str]:
    """A java archive's name and version from its file name, as syft splits them."""
    base = posixpath.basename(path)
    stem, extension = posixpath.splitext(base)
    if not extension:
        stem = base
    match = _FILE_NAME_PATTERN.match(stem)
    name = (match.group("name") or "") if match else ""
    version = (match.group("version") or "") if match else ""
    if not version:
        secondary = _SECONDARY_VERSION_PATTERN.search(name)
        if secondary and secondary.group("version"):
            version = secondary.group("version")
            name = name[: len(name) - len(version) - 1]
    return name, version


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


def parse_pom_properties(text: str) -> dict[str, str]:
    """pom.properties as syft reads it: `key=value` or `key:value` lines; EvidenceError on any other line."""
    properties: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip(" ").startswith("#"):
            continue
        positions = [position for position in (line.find("="), line.find(":")) if position >= 0]
        if not positions:
            raise EvidenceError(f"pom.properties line is not key=value: {line[:80]!r}")
        cut = min(positions)
        properties[line[:cut].strip()] = line[cut + 1:].strip()
    return properties


def parse_pom_xml(data: bytes) -> dict[str, Any] | None:
    """groupId, artifactId, version, name, parent and license names from a pom.xml; None if unreadable."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None  # entity expansion is how XML bombs work; a real pom.xml declares none
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None

    def local(element: ElementTree.Element) -> str:
        return element.tag.rsplit("}", 1)[-1]

    def child_text(element: ElementTree.Element, name: str) -> str:
        for child in element:
            if local(child) == name:
                return (child.text or "").strip()
        return ""

    project: dict[str, Any] = {key: child_text(root, key) for key in ("groupId", "artifactId", "version", "name")}
    for child in root:
        if local(child) == "parent":
            project["parent"] = {key: child_text(child, key) for key in ("groupId", "artifactId", "version")}
        elif local(child) == "licenses":
            project["licenses"] = [name for license_element in child if (name := child_text(license_element, "name"))]
    return project


def _starts_with_domain(value: str) -> bool:
    return value.startswith(_GROUP_DOMAINS)


def _clean_group(group: str) -> str:
    return group.split(";")[0].split("#")[0].strip()


def _manifest_group_ids(package: _JavaPackage, fields: tuple[str, ...]) -> list[str]:
    groups: list[str] = []
    for name in fields:
        for section in [package.manifest or {}, *package.manifest_sections]:
            value = section.get(name)
            if value is not None and _starts_with_domain(value):
                groups.append(_clean_group(value))
    return sorted(groups)


def group_id(package: _JavaPackage) -> str:
    """syft's authoritative group: pom.properties, then pom.xml, then the manifest's fields."""
    properties = package.pom_properties
    if properties:
        if properties.get("groupId"):
            return _clean_group(properties["groupId"])
        if "." in properties.get("artifactId", ""):
            return _clean_group(properties["artifactId"])
    project = package.pom_project
    if project:
        if project.get("groupId"):
            return _clean_group(project["groupId"])
        if "." in project.get("artifactId", ""):
            return _clean_group(project["artifactId"])
        parent = project.get("parent") or {}
        if parent.get("groupId"):
            return _clean_group(parent["groupId"])
        if "." in parent.get("artifactId", ""):
            return _clean_group(parent["artifactId"])
    for family, group in _KNOWN_GROUPS:
        if package.name == family or package.name.startswith(family + "-"):
            return group
    if package.manifest is not None:
        for fields in (_PRIMARY_MANIFEST_GROUP_FIELDS, _SECONDARY_MANIFEST_GROUP_FIELDS):
            groups = _manifest_group_ids(package, fields)
            if groups:
                return groups[0]
    return ""


def _type_from_group(group: str) -> str:
    if group.startswith(_JENKINS_PLUGIN_GROUPS) or ".jenkins.plugin" in group:
        return JENKINS_PLUGIN
    return JAVA_ARCHIVE


def _manifest_value(package: _JavaPackage, key: str) -> str:
    for section in [package.manifest or {}, *package.manifest_sections]:
        if section.get(key):
            return section[key]
    return ""


def _is_java_identifier(field_text: str) -> bool:
    return bool(field_text) and unicodedata.category(field_text[0]) in _JAVA_IDENTIFIER_START


def _name_from_file_name(name: str) -> str:
    if "." in name:
        if name.startswith("org.eclipse."):
            return name
        fields = name.split(".")
        if all(_is_java_identifier(item) for item in fields):
            return fields[-1]
    return name


def _select_name(manifest: Mapping[str, str], file_name: str) -> str:
    if "Apache Maven Bundle Plugin" in manifest.get("Created-By", ""):
        symbolic_name = manifest.get("Bundle-SymbolicName", "")
        vendor_id = manifest.get("Implementation-Vendor-Id", "")
        if symbolic_name and not (vendor_id and vendor_id == symbolic_name):
            return symbolic_name.split(".")[-1]
    name = _name_from_file_name(file_name)
    if name:
        return name
    for key in ("Name", "Bundle-Name", "Short-Name", "Extension-Name", "Implementation-Title"):
        if manifest.get(key):
            return manifest[key]
    return ""


def _archive_type(path: str) -> str:
    extension = posixpath.splitext(path)[1].lower().lstrip(".")
    return JENKINS_PLUGIN if extension in ("jpi", "hpi") else JAVA_ARCHIVE


class _ArchiveReader:
    """Bounded reads from one zip archive held in memory."""

    def __init__(self, data: bytes, budget: _Budget) -> None:
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            entries = self.archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as error:
            raise EvidenceError(f"not a readable zip archive ({error}); truncated or corrupt") from None
        if len(entries) > MAX_ENTRIES:
            raise EvidenceError(f"holds {len(entries):,} entries (more than {MAX_ENTRIES:,}); not read")
        self.entries = [entry for entry in entries if not entry.is_dir()]
        self.names = [entry.filename for entry in self.entries]
        self.budget = budget

    def read(self, entry_name: str, limit: int) -> bytes | None:
        """The entry's bytes, or None (with a warning) when it is corrupt or inflates past `limit`."""
        allowed = min(limit, self.budget.remaining)
        if limit == MAX_NESTED_ARCHIVE_BYTES:
            allowed = min(allowed, MAX_HELD_NESTED_BYTES - self.budget.held)
        if allowed <= 0:
            self.budget.warnings.append(f"entry {quoted(entry_name)} not read: the archive's inflation budget is "
                                        "spent (a zip bomb?)")
            return None
        try:
            with self.archive.open(entry_name) as stream:
                # Read one byte more than allowed: the header's sizes may lie, the inflated stream cannot.
                data = stream.read(allowed + 1)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError,
                EOFError, zlib.error, RuntimeError) as error:
            self.budget.warnings.append(f"entry {quoted(entry_name)} is unreadable ({type(error).__name__})")
            return None
        if len(data) > allowed:
            self.budget.remaining = max(0, self.budget.remaining - allowed)
            self.budget.warnings.append(f"entry {quoted(entry_name)} inflates past {allowed:,} bytes "
                                        "(a zip bomb?); skipped")
            return None
        self.budget.remaining -= len(data)
        return data

    def text(self, entry_name: str) -> str | None:
        data = self.read(entry_name, MAX_METADATA_ENTRY_BYTES)
        return None if data is None else data.decode("utf-8", errors="replace")


class JavaArchiveCataloger(StreamingCataloger):
    name = "java-archive-cataloger"
    patterns = tuple(f"*.{extension}" for extension in ARCHIVE_EXTENSIONS + WRAPPER_EXTENSIONS)
    max_bytes = 512 * 1024 * 1024

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        if evidence.truncated:
            raise EvidenceError(f"{evidence.size:,} bytes, of which {len(evidence.content):,} were read; the zip "
                                "index at its end was not (raise CI_GATE_MAX_FILE_READ_BYTES)")
        image_budget = context.inflation
        if image_budget.remaining <= 0:
            raise EvidenceError(f"not opened: the archives of this image already inflated to "
                                f"{image_budget.limit:,} bytes (zip bombs?); raise "
                                "CI_GATE_MAX_ARCHIVE_INFLATION_BYTES if the image is genuine")
        start = min(MAX_INFLATED_BYTES_PER_EVIDENCE, image_budget.remaining)
        budget = _Budget(remaining=start)
        location = location_of(evidence, context)
        origin = origin_of(evidence, context)
        is_wrapper = posixpath.splitext(evidence.path)[1].lstrip(".") in WRAPPER_EXTENSIONS
        try:
            found = self._archive(evidence.content, evidence.path, evidence.path, 0, budget,
                                  main_package=not is_wrapper, parent="")
        finally:
            image_budget.remaining -= start - budget.remaining
            for warning in budget.warnings[:MAX_WARNINGS_PER_EVIDENCE]:
                context.warnings.append(f"{self.name}: {self._where(evidence)}: {warning}")
            if len(budget.warnings) > MAX_WARNINGS_PER_EVIDENCE:
                context.warnings.append(f"{self.name}: {self._where(evidence)}: and "
                                        f"{len(budget.warnings) - MAX_WARNINGS_PER_EVIDENCE:,} more problems")
        return [self._package(item, location, origin) for item in found]

    def _package(self, item: _JavaPackage, location: Location, origin: str | None) -> Package:
        group = group_id(item)
        purl = package_url("maven", group or item.name, item.name, item.version)
        package_type = item.type
        if "io.jenkins.plugins" in purl or "org.jenkins-ci.plugins" in purl:
            package_type = JENKINS_PLUGIN
        metadata: dict[str, Any] = {"virtual_path": item.virtual_path}
        if item.pom_properties is not None:
            metadata["pom_properties"] = item.pom_properties
        if item.pom_project is not None:
            metadata["pom_project"] = {key: value for key, value in item.pom_project.items() if key != "licenses"}
        if item.manifest is not None:
            metadata["manifest"] = item.manifest
        if item.digest:
            metadata["sha1"] = item.digest
        if item.parent:
            metadata["parent"] = item.parent
        return Package(
            name=item.name,
            version=item.version,
            type=package_type,
            purl=purl,
            licenses=tuple(item.licenses),
            locations=(location,),
            found_by=self.name,
            metadata=metadata,
            origin=origin,
        )

    def _archive(self, data: bytes, virtual_path: str, file_path: str, depth: int, budget: _Budget,
                 main_package: bool, parent: str) -> list[_JavaPackage]:
        reader = _ArchiveReader(data, budget)
        found: list[_JavaPackage] = []
        main = None
        if main_package:
            properties, projects = self._maven_files(reader)
            main = self._main_package(reader, data, virtual_path, file_path, properties, projects)
        if main is not None:
            main.parent = parent
            aux = self._pom_packages(main, virtual_path, properties, projects)
            if main.name:
                found.append(main)
            found.extend(aux)
        nested_names = [name for name in reader.names
                        if posixpath.splitext(name)[1].lstrip(".") in ARCHIVE_EXTENSIONS]
        if nested_names and depth + 1 > MAX_NESTING_DEPTH:
            budget.warnings.append(f"{virtual_path}: archives nested deeper than {MAX_NESTING_DEPTH} "
                                   "levels were not opened")
            return found
        for name in sorted(nested_names):
            nested_data = reader.read(name, MAX_NESTED_ARCHIVE_BYTES)
            if nested_data is None:
                continue
            nested_path = f"{virtual_path}:{name}"
            budget.held += len(nested_data)
            try:
                found.extend(self._archive(nested_data, nested_path, name, depth + 1, budget,
                                           main_package=True, parent=main.name if main else parent))
            except EvidenceError as error:
                budget.warnings.append(f"nested archive {quoted(name)}: {error}")
            finally:
                budget.held -= len(nested_data)
                del nested_data
        return found

    def _main_package(self, reader: _ArchiveReader, data: bytes, virtual_path: str, file_path: str,
                      properties: dict[str, dict[str, str]],
                      projects: dict[str, dict[str, Any]]) -> _JavaPackage | None:
        manifests = [name for name in reader.names if name.lstrip("/") == _MANIFEST_NAME]
        if len(manifests) != 1:
            if manifests:
                reader.budget.warnings.append(f"{virtual_path}: {len(manifests)} manifests; not identified")
            return None
        text = reader.text(manifests[0])
        if text is None:
            return None
        sections = parse_manifest(text)
        manifest = sections[0] if sections else {}
        if "Weave-Classes" in manifest:
            return None  # New Relic instrumentation jars name the library they weave, not themselves
        file_name, file_version = split_file_name(file_path)
        package = _JavaPackage(name="", version="", type=_archive_type(file_path), virtual_path=virtual_path,
                               manifest=manifest, manifest_sections=sections[1:],
                               digest=hashlib.sha1(data, usedforsecurity=False).hexdigest())
        chosen: dict[str, str] = {}
        chosen_project: dict[str, Any] | None = None
        artifacts = {item.get("artifactId", "") for item in properties.values()}
        for parent_path in sorted(properties):
            item = properties[parent_path]
            if _artifact_matches_file_name(item.get("artifactId", ""), file_name, artifacts):
                chosen = item
                if parent_path in projects:
                    chosen_project = projects[parent_path]
                    break
        name = chosen.get("artifactId", "")
        version = chosen.get("version", "")
        if chosen_project is not None:
            name = name or chosen_project.get("artifactId", "")
            version = version or chosen_project.get("version", "")
        package.name = name or _select_name(manifest, file_name)
        package.version = version or file_version or next(
            (value for key in ("Implementation-Version", "Specification-Version", "Plugin-Version",
                               "Bundle-Version") if (value := _manifest_value(package, key))), "")
        licenses = [value for key in ("Bundle-License", "Plugin-License-Name")
                    if (value := _manifest_value(package, key))]
        if not licenses:
            licenses = self._license_files(reader)
        if not licenses and chosen_project is not None:
            licenses = list(chosen_project.get("licenses", []))
        package.licenses = licenses
        return package

    @staticmethod
    def _license_files(reader: _ArchiveReader) -> list[str]:
        """Licenses named by the text of LICENSE-like files, in META-INF/ first, else at the root."""
        by_lower_name = {name.lower(): name for name in reader.names}
        found: list[str] = []
        for file_name in LICENSE_FILE_NAMES:
            entry = (by_lower_name.get(f"meta-inf/{file_name.lower()}")
                     or by_lower_name.get(file_name.lower()))
            if entry is None:
                continue
            text = reader.text(entry)
            for license_id in identify_licenses(text or ""):
                if license_id not in found:
                    found.append(license_id)
        return found

    @staticmethod
    def _maven_files(reader: _ArchiveReader) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
        """pom.properties (with artifactId and version) and pom.xml files, by the folder holding them."""
        properties: dict[str, dict[str, str]] = {}
        projects: dict[str, dict[str, Any]] = {}
        for name in reader.names:
            if name.endswith("pom.properties"):
                text = reader.text(name)
                if text is None:
                    continue
                try:
                    item = parse_pom_properties(text)
                except EvidenceError as error:
                    reader.budget.warnings.append(f"{name}: {error}")
                    continue
                if item.get("artifactId") and item.get("version"):
                    properties[posixpath.dirname(name)] = item
            elif name.endswith("pom.xml"):
                raw = reader.read(name, MAX_METADATA_ENTRY_BYTES)
                project = parse_pom_xml(raw) if raw is not None else None
                if project is not None:
                    projects[posixpath.dirname(name)] = project
        return properties, projects

    @staticmethod
    def _pom_packages(main: _JavaPackage, virtual_path: str, properties: dict[str, dict[str, str]],
                      projects: dict[str, dict[str, Any]]) -> list[_JavaPackage]:
        """A package per pom.properties; the one describing the archive itself refines the main package."""
        found: list[_JavaPackage] = []
        for parent_path in sorted(properties):
            item = properties[parent_path]
            group, artifact, version = item.get("groupId", ""), item["artifactId"], item["version"]
            parent_key = f"{group_id(main)}:{main.name}:{main.version}"
            suffix = "" if parent_key == f"{group}:{artifact}:{version}" else f":{group}:{artifact}"
            package = _JavaPackage(name=artifact, version=version, type=_type_from_group(group),
                                   virtual_path=virtual_path + suffix, pom_properties=item,
                                   pom_project=projects.get(parent_path), parent=main.name)
            if package.pom_project is not None:
                package.licenses = list(package.pom_project.get("licenses", []))
            if _same_identity(package, main):
                main.name, main.version, main.type = package.name, package.version, package.type
                if main.pom_properties is None:
                    main.pom_properties = item
                continue
            found.append(package)
        return found


def _artifact_matches_file_name(artifact: str, file_name: str, artifacts: set[str]) -> bool:
    if not artifact or not file_name:
        return False
    if file_name in artifacts:
        return artifact == file_name
    return artifact.startswith(file_name) or file_name.endswith(artifact)


def _same_identity(package: _JavaPackage, main: _JavaPackage) -> bool:
    if (group_id(package), package.name, package.version) == (group_id(main), main.name, main.version):
        return True
    if package.virtual_path == main.virtual_path:
        return True
    artifact = (package.pom_properties or {}).get("artifactId", "")
    return bool(artifact) and artifact == main.name


# --- JVM installations: the `release` file every JDK/JRE build writes -------------------------------------------

_JVM_RELEASE_MAX_BYTES = 500 * 1024


def parse_jvm_release(text: str) -> dict[str, Any] | None:
    """KEY="value" lines; None unless JAVA_VERSION or JAVA_RUNTIME_VERSION is there (another `release`)."""
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        key, separator, value = line.partition("=")
        if not separator:
            continue
        value = value.strip('"')
        fields[key] = value.split(" ") if key == "MODULES" else value
    if "JAVA_VERSION" not in fields and "JAVA_RUNTIME_VERSION" not in fields:
        return None
    return fields


def jvm_version(release: Mapping[str, Any]) -> str:
    """syft's choice: JAVA_RUNTIME_VERSION, else FULL_VERSION when its major matches, else JAVA_VERSION."""
    if release.get("JAVA_RUNTIME_VERSION"):
        return str(release["JAVA_RUNTIME_VERSION"])
    full, java = str(release.get("FULL_VERSION", "")), str(release.get("JAVA_VERSION", ""))
    if full and full.split(".")[0] == java.split(".")[0]:
        return full
    return java


def jvm_vendor_product(implementor: str, path: str, image_type: str, has_jdk: bool) -> tuple[str, str]:
    """Who made it and what it is, as syft names JVMs (Azul Zulu, Sun/Oracle JDK or JRE, else OpenJDK)."""
    implementor = implementor.lower().replace(" ", "")
    kind = "jdk" if has_jdk or "jre" not in image_type.lower() else "jre"
    if "azul" in implementor or "zulu" in path:
        return "azul", "zulu"
    if "sun" in implementor:
        return "sun", kind
    if "oracle" in implementor or "oracle" in path:
        return "oracle", kind
    return "oracle", "openjdk"


class JvmDistributionCataloger(StreamingCataloger):
    """JDK and JRE installations (syft's java-jvm-cataloger): the `release` file beside `bin/`."""

    name = "java-jvm-cataloger"
    patterns = ("*/release",)
    max_bytes = _JVM_RELEASE_MAX_BYTES

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        release = parse_jvm_release(evidence.content.decode("utf-8", errors="replace"))
        if release is None:
            return []
        version = jvm_version(release)
        # The product may hang on whether bin/javac exists, which only the final view can tell: decided in catalog.
        return [Package(
            name="openjdk",
            version=version,
            type="binary",
            locations=(location_of(evidence, context),),
            found_by=self.name,
            metadata={"release": {key: value for key, value in release.items() if key != "MODULES"},
                      "modules": release.get("MODULES", [])},
            origin=origin_of(evidence, context),
        )]

    def catalog(self, evidence: Sequence[Evidence], context: CatalogContext) -> list[Package]:
        named: list[Package] = []
        for package in super().catalog(evidence, context):
            release = package.metadata["release"]
            path = package.locations[0].path
            has_jdk = context.final.exists(posixpath.join(posixpath.dirname(path), "bin/javac"))
            vendor, product = jvm_vendor_product(str(release.get("IMPLEMENTOR", "")), path,
                                                 str(release.get("IMAGE_TYPE", "")), has_jdk)
            repository = str(release.get("SOURCE_REPO") or release.get("BUILD_SOURCE_REPO") or "")
            purl = package_url("generic", vendor, product, package.version,
                               qualifiers=(("repository_url", repository),) if repository else ())
            named.append(dataclasses.replace(package, name=product, purl=purl,
                                             metadata={**package.metadata, "vendor": vendor, "has_jdk": has_jdk}))
        return named
