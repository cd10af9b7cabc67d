"""Alpine/Wolfi/Chainguard packages: `/lib/apk/db/installed`, as syft's apk-db-cataloger.

The database is blocks of `X:value` lines separated by blank lines (apk-tools' "installed database"
format: P name, V version, A arch, o origin, L license, T description, U url, m maintainer, S size,
I installed size, D dependencies, p provides, C checksum, c commit, then F/R/M/a/Z file records).
The purl is `pkg:apk/<distro id>/NAME@VERSION?arch=..&distro=ID-VERSION_ID&upstream=ORIGIN`
(`upstream` only when the origin differs from the name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ci_gate.analyze.catalogers import attribution
from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url as build_package_url
from ci_gate.model import Distro, Package

_OPERATOR = re.compile(r"^(AND|OR|WITH)$", re.IGNORECASE)


@dataclass
class ApkEntry:
    """One package block of the installed database."""

    name: str = ""
    version: str = ""
    architecture: str = ""
    origin: str = ""
    license: str = ""
    description: str = ""
    url: str = ""
    maintainer: str = ""
    size: int | None = None
    installed_size: int | None = None
    dependencies: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    checksum: str = ""
    git_commit: str = ""
    files: list[str] = field(default_factory=list)


_TEXT_FIELDS = {"P": "name", "V": "version", "A": "architecture", "o": "origin", "L": "license", "T": "description",
                "U": "url", "m": "maintainer", "C": "checksum", "c": "git_commit"}
"""The one-letter keys of the installed database that hold text, by the entry field they fill."""
_NUMBER_FIELDS = {"S": "size", "I": "installed_size"}
_LIST_FIELDS = {"D": "dependencies", "p": "provides"}


def parse_installed(text: str, problems: list[str]) -> list[ApkEntry]:
    entries: list[ApkEntry] = []
    current = ApkEntry()
    started = False
    directory = ""
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r")
        if not line:
            if started:
                entries.append(current)
            current, started, directory = ApkEntry(), False, ""
            continue
        if len(line) < 2 or line[1] != ":":
            problems.append(f"line {number}: not an `X:value` line")
            continue
        key, value = line[0], line[2:]
        if not value:
            continue
        started = True
        if key in _TEXT_FIELDS:
            setattr(current, _TEXT_FIELDS[key], value)
        elif key in _NUMBER_FIELDS:
            number_value = int(value) if value.isdigit() else None
            if number_value is None:
                problems.append(f"line {number}: {key}:{value!r} is not a number")
            setattr(current, _NUMBER_FIELDS[key], number_value)
        elif key in _LIST_FIELDS:
            setattr(current, _LIST_FIELDS[key], value.split())
        elif key == "F":
            directory = "/" + value.strip("/")
        elif key == "R":
            current.files.append(f"{directory.rstrip('/')}/{value}" if directory else f"/{value}")
    if started:
        entries.append(current)
    return [entry for entry in entries if entry.name]


def split_license(value: str) -> list[str]:
    """One SPDX expression stays whole; a space-separated list of names (older Alpine) is split."""
    tokens = value.replace("(", " ").replace(")", " ").split()
    if not tokens:
        return []
    previous_was_name = False
    for token in tokens:
        is_operator = bool(_OPERATOR.match(token))
        if not is_operator and previous_was_name:
            return value.split()
        previous_was_name = not is_operator
    return [value]


def package_url(entry: ApkEntry, distro: Distro | None) -> str:
    qualifiers = {"arch": entry.architecture}
    if entry.origin and entry.origin != entry.name:
        qualifiers["upstream"] = entry.origin
    label = attribution.distro_label(distro)
    if label:
        qualifiers["distro"] = label
    return build_package_url("apk", distro.id.lower() if distro and distro.id else "alpine", entry.name,
                             entry.version, sorted((key, value) for key, value in qualifiers.items() if value))


class ApkCataloger(attribution.FileVersionsCataloger):
    name = "apk-db-cataloger"
    patterns = ("*/lib/apk/db/installed",)


    def catalog_file(self, path: str, versions: list[Evidence], context: CatalogContext) -> list[Package]:
        """The packages of one database file (every version of it, for attribution)."""
        packages: list[Package] = []
        distro = context.distro
        final_entries, introduced = attribution.database_versions(
            context, self.name, path, versions, parse_installed, lambda entry: entry.name,
            lambda entry: entry.version, "entries")

        def build(entry: ApkEntry) -> list[Package]:
            layer_index = introduced.get(entry.name, versions[-1].layer_index)
            return [
                Package(
                    name=entry.name,
                    version=entry.version,
                    type="apk",
                    purl=package_url(entry, distro),
                    licenses=tuple(split_license(entry.license)),
                    locations=(attribution.location(context, path, layer_index),),
                    found_by=self.name,
                    metadata={
                        "package": entry.name,
                        "origin": entry.origin or entry.name,
                        "source": entry.origin or entry.name,
                        "architecture": entry.architecture,
                        "url": entry.url,
                        "maintainer": entry.maintainer,
                        "description": entry.description,
                        "size": entry.size,
                        "installed_size": entry.installed_size,
                        "dependencies": entry.dependencies,
                        "provides": entry.provides,
                        "checksum": entry.checksum,
                        "git_commit": entry.git_commit,
                        **attribution.distro_metadata(distro),
                    },
                )
            ]

        packages.extend(attribution.each_entry(context, self.name, path, final_entries, build))
        return packages

