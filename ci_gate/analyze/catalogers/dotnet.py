""".NET packages, two ways, as syft has them.

`APP.deps.json`, written by the SDK beside every published application: its `libraries` object maps
`Name/Version` to `{type, path, sha512, hashPath, ...}`; libraries of type `package` are NuGet
packages. syft (1.x, dotnet-deps-cataloger) reports every library whatever its type, the application
itself (the `project` named like the file), project references and runtime packs included; we report
the same set so the inventories compare, and keep the library type in the metadata so a consumer can
tell a NuGet package from the application's own code. (syft reports nothing when the file names no
root project; we still report its libraries.) syft 1.18 runs this cataloger on directories only.

Assemblies (`*.dll`, `*.exe`): what syft 1.18 reads in image scans, the PE version resource
(dotnet-portable-executable-cataloger): name from ProductName (FileDescription first for Microsoft's),
version the greater of ProductVersion and FileVersion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.portable_executable import version_strings
from ci_gate.analyze.catalogers.streaming import EvidenceError, StreamingCataloger, location_of
from ci_gate.model import Package

_DEPS_FILE_NAME = re.compile(r"([^\\/]+)\.deps\.json$")


class DotnetDepsCataloger(StreamingCataloger):
    name = "dotnet-deps-cataloger"
    patterns = ("*.deps.json",)
    max_bytes = 32 * 1024 * 1024

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        document = self.json_document(evidence)
        libraries = document.get("libraries") if isinstance(document, dict) else None
        if not isinstance(libraries, dict):
            raise EvidenceError("no `libraries` object; not a .deps.json file")
        file_name = _DEPS_FILE_NAME.search(evidence.path)
        root_name = file_name.group(1) if file_name else ""
        location = location_of(evidence, context)
        packages: list[Package] = []
        for key in sorted(libraries):
            library = libraries[key]
            name, separator, version = key.partition("/")
            if not separator or not name or not isinstance(library, dict):
                continue
            library_type = str(library.get("type", ""))
            metadata = {
                "name": name,
                "version": version,
                "library_type": library_type,
                "path": library.get("path", ""),
                "sha512": library.get("sha512", ""),
                "hash_path": library.get("hashPath", ""),
                "root": library_type == "project" and name == root_name,
            }
            packages.append(self.package(name, version, "dotnet", location, metadata))
        return packages


# --- assemblies: the version resource of *.dll and *.exe files -----------------------------------------------

_SPACES = re.compile(r"[\s\xa0]+")
_CONTROL = re.compile(r"[\x00-\x1f]")
_DIGIT = re.compile(r"\d")
_VERSION_PUNCTUATION = re.compile(r"[.,]+")
_SEMANTIC_VERSION = re.compile(
    r"^v?(?P<segments>[0-9]+(\.[0-9]+)*?)"
    r"(-(?P<pre>[0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|(-?(?P<pre2>[A-Za-z\-~]+[0-9A-Za-z\-~]*"
    r"(\.[0-9A-Za-z\-~]+)*)))?(\+[0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*)?$")
"""hashicorp/go-version's grammar, which syft uses to compare ProductVersion and FileVersion."""


def _normalize_space(value: str) -> str:
    return _SPACES.sub(" ", _CONTROL.sub("", _SPACES.sub(" ", value.strip()))).strip()


def _leading_version(text: str) -> str:
    """`4.7.4076.0 built by: NET472REL1LAST_B` → `4.7.4076.0`: the leading fields up to the first without a digit
    after one with a digit."""
    kept = ""
    for index, field_text in enumerate(text.strip().split()):
        if _DIGIT.search(kept) and not _DIGIT.search(field_text):
            return kept
        kept = field_text if index == 0 else f"{kept} {field_text}"
    return kept


def _semantic(text: str) -> tuple[tuple[int, ...], str] | None:
    match = _SEMANTIC_VERSION.match(text)
    if not match:
        return None
    segments = tuple(int(part) for part in match.group("segments").split("."))
    return segments, match.group("pre") or match.group("pre2") or ""


def _compare(left: tuple[tuple[int, ...], str], right: tuple[tuple[int, ...], str]) -> int:
    width = max(len(left[0]), len(right[0]))
    left_segments = left[0] + (0,) * (width - len(left[0]))
    right_segments = right[0] + (0,) * (width - len(right[0]))
    if left_segments != right_segments:
        return -1 if left_segments < right_segments else 1
    if left[1] == right[1]:
        return 0
    if not left[1] or not right[1]:
        return 1 if not left[1] else -1  # a release is newer than its pre-releases
    return -1 if left[1] < right[1] else 1


def select_assembly_version(strings: Mapping[str, str]) -> str:
    """syft's choice between ProductVersion and FileVersion: the greater one, else the more detailed."""
    product = _leading_version(strings.get("ProductVersion", ""))
    file_version = _leading_version(strings.get("FileVersion", ""))
    product_semantic = _semantic(product)
    if product_semantic is not None:
        file_semantic = _semantic(file_version)
        if file_semantic is None:
            return product
        comparison = _compare(file_semantic, product_semantic)
        if comparison:
            return file_version if comparison > 0 else product
    product_detail = len(_VERSION_PUNCTUATION.findall(product))
    file_detail = len(_VERSION_PUNCTUATION.findall(file_version))
    if _DIGIT.search(product) and product_detail >= file_detail:
        return product
    if _DIGIT.search(file_version) and file_detail > 0:
        return file_version
    if _DIGIT.search(product):
        return product
    if _DIGIT.search(file_version):
        return file_version
    return product


def select_assembly_name(strings: Mapping[str, str]) -> str:
    """ProductName first, but FileDescription first for Microsoft's assemblies (their product is 'Microsoft .NET')."""
    fields = ["ProductName", "FileDescription", "InternalName", "OriginalFilename"]
    if "microsoft" in strings.get("CompanyName", "").lower() or "microsoft" in strings.get("ProductName", "").lower():
        fields = ["FileDescription", "InternalName", "OriginalFilename", "ProductName"]
    for field_name in fields:
        value = _normalize_space(strings.get(field_name, ""))
        if value:
            return value
    return ""


class DotnetPortableExecutableCataloger(StreamingCataloger):
    """What syft 1.18 reads in image scans for .NET: each assembly's version resource."""

    name = "dotnet-portable-executable-cataloger"
    patterns = ("*.dll", "*.exe")
    max_bytes = 64 * 1024 * 1024

    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        if not evidence.content.startswith(b"MZ"):
            return []  # syft says nothing of a non-PE *.dll either
        strings = version_strings(evidence.content)
        if not strings:
            return []
        name, version = select_assembly_name(strings), select_assembly_version(strings)
        if not name or not version:
            return []
        metadata = {key: strings.get(source, "") for key, source in (
            ("assembly_version", "Assembly Version"), ("legal_copyright", "LegalCopyright"),
            ("comments", "Comments"), ("internal_name", "InternalName"), ("company_name", "CompanyName"),
            ("product_name", "ProductName"), ("product_version", "ProductVersion"))}
        return [self.package(name, version, "dotnet", location_of(evidence, context), metadata)]
