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


The file name, manifest and Maven metadata are read by java_names.py, java_manifest.py and
java_pom.py; JVM installations are jvm.py.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.java_manifest import (
    MANIFEST_NAME,
    JavaPackage,
    group_id,
    manifest_value,
    parse_manifest,
    select_name,
    type_from_group,
)
from ci_gate.analyze.catalogers.java_names import JENKINS_PLUGIN, archive_type, split_file_name
from ci_gate.analyze.catalogers.java_pom import parse_pom_properties, parse_pom_xml
from ci_gate.analyze.catalogers.license_text import LICENSE_FILE_NAMES, identify_licenses
from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.analyze.catalogers.streaming import EvidenceError, StreamingCataloger, location_of
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


@dataclass
class _Budget:
    """What is left to inflate for one top-level evidence file."""

    remaining: int
    """Bytes that may still be inflated."""
    held: int = 0
    """Bytes of inflated nested archives in memory now."""
    warnings: list[str] = field(default_factory=list)
    """Problems met inside the archive tree, reported once the evidence is done."""


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
        return [self._package(item, location) for item in found]

    def _package(self, item: JavaPackage, location: Location) -> Package:
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
        )

    def _archive(self, data: bytes, virtual_path: str, file_path: str, depth: int, budget: _Budget,
                 main_package: bool, parent: str) -> list[JavaPackage]:
        reader = _ArchiveReader(data, budget)
        found: list[JavaPackage] = []
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
                      projects: dict[str, dict[str, Any]]) -> JavaPackage | None:
        manifests = [name for name in reader.names if name.lstrip("/") == MANIFEST_NAME]
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
        package = JavaPackage(name="", version="", type=archive_type(file_path), virtual_path=virtual_path,
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
        package.name = name or select_name(manifest, file_name)
        package.version = version or file_version or next(
            (value for key in ("Implementation-Version", "Specification-Version", "Plugin-Version",
                               "Bundle-Version") if (value := manifest_value(package, key))), "")
        licenses = [value for key in ("Bundle-License", "Plugin-License-Name")
                    if (value := manifest_value(package, key))]
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
    def _pom_packages(main: JavaPackage, virtual_path: str, properties: dict[str, dict[str, str]],
                      projects: dict[str, dict[str, Any]]) -> list[JavaPackage]:
        """A package per pom.properties; the one describing the archive itself refines the main package."""
        found: list[JavaPackage] = []
        for parent_path in sorted(properties):
            item = properties[parent_path]
            group, artifact, version = item.get("groupId", ""), item["artifactId"], item["version"]
            parent_key = f"{group_id(main)}:{main.name}:{main.version}"
            suffix = "" if parent_key == f"{group}:{artifact}:{version}" else f":{group}:{artifact}"
            package = JavaPackage(name=artifact, version=version, type=type_from_group(group),
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


def _same_identity(package: JavaPackage, main: JavaPackage) -> bool:
    if (group_id(package), package.name, package.version) == (group_id(main), main.name, main.version):
        return True
    if package.virtual_path == main.virtual_path:
        return True
    artifact = (package.pom_properties or {}).get("artifactId", "")
    return bool(artifact) and artifact == main.name
