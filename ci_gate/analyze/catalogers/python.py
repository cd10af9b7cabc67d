"""Installed Python packages: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info` files.

As syft's python-installed-package-cataloger: the name is normalised (PEP 503: lower case, runs of
`-_.` become `-`), the purl is `pkg:pypi/NAME@VERSION`, a distribution called `Python` (the
interpreter's own egg-info) is skipped, and licenses come from `License-Expression`, else `License`.
Where neither is there we fall back to the `License ::` trove classifiers (syft leaves it empty).
"""

from __future__ import annotations

import posixpath
import re

from ci_gate.analyze.catalogers import attribution
from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.model import Package

_SEPARATORS = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """PEP 503 normalised project name, as syft and PyPI name a package."""
    return _SEPARATORS.sub("-", name).lower()


def parse_metadata(text: str) -> dict[str, list[str]]:
    """The header fields of a core-metadata file (RFC 822 style), each a list of values; the body
    (the long description after the first blank line) is not read."""
    # Each value is a list of its lines, joined once at the end (no quadratic string appends).
    gathered: dict[str, list[list[str]]] = {}
    key = ""
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            if gathered:
                break
            continue
        if line[0] in " \t":
            if key and gathered.get(key):
                gathered[key][-1].append(line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            key = ""
            continue
        key = name.strip().lower()
        gathered.setdefault(key, []).append([value.strip()])
    return {name: ["\n".join(lines) for lines in values] for name, values in gathered.items()}


def licenses_from(fields: dict[str, list[str]]) -> list[str]:
    expression = _first(fields, "license-expression")
    if expression:
        return [expression]
    declared = _first(fields, "license")
    if declared and declared.upper() not in ("UNKNOWN", "NONE"):
        # Some projects paste the whole license text; its first line names it.
        return [declared.split("\n", 1)[0].strip()]
    found = []
    for classifier in fields.get("classifier", []):
        parts = [part.strip() for part in classifier.split("::")]
        if len(parts) >= 2 and parts[0] == "License" and parts[-1] not in ("OSI Approved",):
            found.append(parts[-1])
    return found


def _first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return attribution.clean_text(values[0].strip()) if values else ""


def site_packages_of(path: str) -> str:
    """The folder that holds the distribution's metadata folder (or its egg-info file)."""
    if path.endswith(".egg-info") or path.endswith(".EGG-INFO"):
        return posixpath.dirname(path)
    return posixpath.dirname(posixpath.dirname(path))


class PythonCataloger(attribution.FileVersionsCataloger):
    name = "python-installed-package-cataloger"
    patterns = (
        "*dist-info/METADATA",
        "*DIST-INFO/METADATA",
        "*egg-info/PKG-INFO",
        "*EGG-INFO/PKG-INFO",
        "*.egg-info",
    )
    max_bytes = 4 * 1024 * 1024


    def catalog_file(self, path: str, versions: list[Evidence], context: CatalogContext) -> list[Package]:
        packages: list[Package] = []
        history: list[tuple[int, dict[str, str]]] = []
        final_fields: dict[str, list[str]] = {}
        for item in versions:
            if item.mode & 0o170000 == 0o040000:
                continue  # an `.egg-info` folder: its PKG-INFO is matched on its own
            fields = parse_metadata(attribution.decode(item.content))
            name = normalize(_first(fields, "name"))
            history.append((item.layer_index, {name: _first(fields, "version")} if name else {}))
            final_fields = fields
        if not history:
            return []
        name = normalize(_first(final_fields, "name"))
        version = _first(final_fields, "version")
        if not name:
            context.warnings.append(
                f"{self.name}: {path} (layer {versions[-1].layer_index + 1}) has no Name field; skipped"
            )
            return []
        if _first(final_fields, "name") == "Python":
            return []
        layer_index = attribution.introduced_layers(history).get(name, versions[-1].layer_index)
        packages.append(
            self.package(
                name, version, "python", attribution.location(context, path, layer_index),
                licenses=tuple(licenses_from(final_fields)),
                metadata={
                    "name": _first(final_fields, "name"),
                    "version": version,
                    "author": _first(final_fields, "author"),
                    "author_email": _first(final_fields, "author-email"),
                    "platform": _first(final_fields, "platform"),
                    "requires_python": _first(final_fields, "requires-python"),
                    "requires_dist": fields_list(final_fields, "requires-dist"),
                    "site_packages_root_path": site_packages_of(path),
                },
            )
        )
        return packages


def fields_list(fields: dict[str, list[str]], name: str) -> list[str]:
    return [attribution.clean_text(value) for value in fields.get(name, [])[:1000]]
