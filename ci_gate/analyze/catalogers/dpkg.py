"""Debian packages: `/var/lib/dpkg/status`, distroless `status.d/*` (and opkg's status and
`info/*.control`), licenses from DEP-5 copyright files.

As syft's dpkg-db-cataloger: one package per stanza of the database (stanzas whose Status says
`deinstall` are skipped), the source package and its version from `Source: NAME (VERSION)`, the
purl `pkg:deb/<distro id>/NAME@VERSION?arch=..&distro=ID-VERSION_ID&upstream=SOURCE[@SOURCE_VERSION]`,
and licenses from `/usr/share/doc/NAME/copyright` (`License:` clauses and common-licenses paths).
Unlike syft, the package's location names the layer that introduced it (see `attribution`), and
stanzas that say the package is `not-installed` or only left `config-files` behind are not reported.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ci_gate.analyze.catalogers import attribution
from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
from ci_gate.analyze.catalogers.package_url import package_url as build_package_url
from ci_gate.model import Distro, Package

COPYRIGHT_PREFIX = "/usr/share/doc/"
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]*)\))?")
_LICENSE_CLAUSE = re.compile(r"^License: (?P<license>\S*)", re.MULTILINE)
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/(?P<license>[0-9A-Za-z_.\-]+)")
_NOT_INSTALLED = frozenset({"not-installed", "config-files"})
# Files that sit beside the per-package stanzas in distroless status.d/ but are not stanzas.
_STATUS_D_SIDE_FILES = (".md5sums", ".list", ".conffiles", ".sha256sums")


@dataclass
class Stanza:
    """One paragraph of a dpkg database, as fields (names lower-cased, `-` kept)."""

    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def parse_stanzas(text: str, problems: list[str]) -> list[Stanza]:
    """The paragraphs of a deb822 file; malformed lines are reported in `problems` and skipped."""
    stanzas: list[Stanza] = []
    # Field values are gathered as lists of lines and joined once: appending to a string would make
    # a hostile field of a million continuation lines quadratic.
    current: dict[str, list[str]] = {}
    key = ""

    def close() -> None:
        if current:
            stanzas.append(Stanza({name: "\n".join(lines) for name, lines in current.items()}))
            current.clear()

    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            close()
            key = ""
            continue
        if line[0] in " \t":
            if not key:
                problems.append(f"line {number}: a continuation line with no field before it")
                continue
            current[key].append(line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            problems.append(f"line {number}: not a `Field: value` line")
            key = ""
            continue
        key = name.strip().lower()
        current[key] = [value.strip()]
    close()
    return stanzas


@dataclass(frozen=True)
class DebEntry:
    """What one stanza says about an installed package."""

    name: str
    version: str
    architecture: str
    source: str
    """The `Source:` name as written (empty when the source package has the binary's name)."""
    source_version: str
    """The version in `Source: NAME (VERSION)`, empty when the source has the binary's version."""
    maintainer: str
    installed_size: int | None
    depends: tuple[str, ...]
    pre_depends: tuple[str, ...]
    provides: tuple[str, ...]
    license: str
    status: str

    @property
    def key(self) -> tuple[str, str]:
        # Multi-arch: libc6:amd64 and libc6:i386 are two packages.
        return (self.name, self.architecture)


def entries_from(stanzas: Sequence[Stanza]) -> list[DebEntry]:
    entries = []
    for stanza in stanzas:
        name = stanza.get("package")
        if not name:
            continue
        status = stanza.get("status")
        words = status.split()
        if "deinstall" in words or (len(words) == 3 and words[2] in _NOT_INSTALLED):
            continue
        source, source_version = "", ""
        match = _SOURCE.match(stanza.get("source"))
        if match:
            source = match.group("name")
            source_version = match.group("version") or ""
        size_text = stanza.get("installed-size")
        entries.append(
            DebEntry(
                name=name,
                version=stanza.get("version"),
                architecture=stanza.get("architecture"),
                source=source,
                source_version=source_version,
                maintainer=stanza.get("maintainer"),
                installed_size=int(size_text) if size_text.isdigit() else None,
                depends=_split_list(stanza.get("depends")),
                pre_depends=_split_list(stanza.get("pre-depends")),
                provides=_split_list(stanza.get("provides")),
                license=stanza.get("license"),
                status=status,
            )
        )
    return entries


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.replace("\n", " ").split(",") if part.strip())


def licenses_from_copyright(text: str) -> list[str]:
    """syft's reading of a copyright file: `License:` short names and common-licenses paths."""
    found: set[str] = set()
    # Whole-text scans (multi-line anchors) rather than a loop over lines: copyright files run long.
    for pattern in (_LICENSE_CLAUSE, _COMMON_LICENSE):
        for match in pattern.finditer(text):
            value = _single_license(match.group("license"))
            if value:
                found.add(value)
    return sorted(found)


def _single_license(candidate: str) -> str:
    candidate = candidate.strip()
    # "GPL-2 or Artistic" summaries are skipped: the per-file clauses name each license.
    if " or " in candidate or " and " in candidate or candidate.lower() == "none":
        return ""
    return candidate.removesuffix(".")


def _resolved(context: CatalogContext, path: str) -> str:
    """Where `path` leads through symlinks (e.g. /usr/share/doc/libgcc-s1 → gcc-12-base, as syft
    follows it), when the final view can say; else the path itself."""
    resolve = getattr(context.final, "resolve", None)
    if resolve is None:
        return path
    target = resolve(path)
    return target if isinstance(target, str) else path


def package_url(entry: DebEntry, distro: Distro | None) -> str:
    """syft's deb purl; without a known Debian-like distro syft writes none, we write one without
    the distro qualifier so the package can still be named."""
    if distro is not None and distro.id != "debian" and "debian" not in distro.id_like:
        return ""
    qualifiers = {"arch": entry.architecture}
    if entry.source:
        qualifiers["upstream"] = (
            f"{entry.source}@{entry.source_version}" if entry.source_version else entry.source
        )
    label = attribution.distro_label(distro)
    if label:
        qualifiers["distro"] = label
    return build_package_url("deb", distro.id if distro else "debian", entry.name, entry.version,
                             sorted((key, value) for key, value in qualifiers.items() if value))


class DpkgCataloger(Cataloger):
    name = "dpkg-db-cataloger"
    patterns = (
        "*/lib/dpkg/status",
        "*/lib/dpkg/status.d/*",
        # opkg (OpenWrt, Yocto) keeps the same stanza format, as syft reads it.
        "*/lib/opkg/status",
        "*/lib/opkg/info/*.control",
        "/usr/share/doc/*/copyright",
    )

    def catalog(self, evidence: Sequence[Evidence], context: CatalogContext) -> list[Package]:
        by_path = attribution.final_versions(evidence, context)
        copyrights = {
            path: versions[-1]
            for path, versions in by_path.items()
            if path.startswith(COPYRIGHT_PREFIX) and path.count("/") == 5
        }
        databases = [(path, (path, versions)) for path, versions in sorted(by_path.items())
                     if path not in copyrights and not path.endswith(_STATUS_D_SIDE_FILES)]
        return attribution.each(context, self.name, databases,
                                lambda item: self._catalog_database(item[0], item[1], copyrights, context))

    def _catalog_database(
        self,
        path: str,
        versions: Sequence[Evidence],
        copyrights: dict[str, Evidence],
        context: CatalogContext,
    ) -> list[Package]:
        final_entries, introduced = attribution.database_versions(
            context, self.name, path, versions, lambda text, problems: entries_from(parse_stanzas(text, problems)),
            lambda entry: entry.key, lambda entry: entry.version, "stanzas")
        distro = context.distro
        packages = []

        def build(entry: DebEntry) -> list[Package]:
            layer_index = introduced.get(entry.key, versions[-1].layer_index)
            locations = [attribution.location(context, path, layer_index)]
            licenses: list[str] = []
            if entry.license:
                licenses.append(entry.license)
            copyright_path = posixpath.join(COPYRIGHT_PREFIX, entry.name, "copyright")
            copyright_file = copyrights.get(copyright_path) or copyrights.get(
                _resolved(context, copyright_path)
            )
            if copyright_file is not None:
                licenses.extend(licenses_from_copyright(attribution.decode(copyright_file.content)))
                locations.append(attribution.location(context, copyright_file.path, copyright_file.layer_index))
            metadata = {
                "package": entry.name,
                "source": entry.source or entry.name,
                "source_version": entry.source_version or entry.version,
                "architecture": entry.architecture,
                "maintainer": entry.maintainer,
                "installed_size": entry.installed_size,
                "depends": list(entry.depends),
                "pre_depends": list(entry.pre_depends),
                "provides": list(entry.provides),
                **attribution.distro_metadata(distro),
                "distro_codename": distro.version_codename if distro else "",
            }
            return [
                Package(
                    name=entry.name,
                    version=entry.version,
                    type="deb",
                    purl=package_url(entry, distro),
                    licenses=tuple(dict.fromkeys(licenses)),
                    locations=tuple(locations),
                    found_by=self.name,
                    metadata=metadata,
                )
            ]

        packages.extend(attribution.each_entry(context, self.name, path, final_entries, build))
        return packages
