"""JavaScript packages: every `package.json` in the image, as syft's javascript-package-cataloger.

That means each installed package under `node_modules/` (nested ones and the global
`/usr/lib/node_modules`, `/usr/local/lib/node_modules` too) and also an application's own
`package.json`, as syft reports it in image mode. A `package.json` without a name (build helpers,
`{"type": "module"}` markers inside packages) is not a package and is skipped. The purl is
`pkg:npm/NAME@VERSION` with a scope as the namespace: `pkg:npm/%40scope/name@1.0.0`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ci_gate.analyze.catalogers import attribution
from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url as build_package_url
from ci_gate.model import Package

_AUTHOR = re.compile(r"^\s*(?P<name>[^<(]*?)\s*(?:<(?P<email>[^>]*)>)?\s*(?:\((?P<url>[^)]*)\))?\s*$")


def package_url(name: str, version: str) -> str:
    namespace, _, short_name = name.rpartition("/")
    return build_package_url("npm", namespace, short_name, version)


def licenses_of(document: dict[str, Any]) -> list[str]:
    """`license` as a string or `{type}`, else the old `licenses` list."""
    value = document.get("license")
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return [value["type"]]
    found = []
    listed = document.get("licenses")
    if isinstance(listed, list):
        for item in listed:
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                found.append(item["type"])
            elif isinstance(item, str):
                found.append(item)
    return found


def author_of(document: dict[str, Any]) -> str:
    value = document.get("author")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        text = str(value.get("name") or "")
        if value.get("email"):
            text += f" <{value['email']}>"
        if value.get("url"):
            text += f" ({value['url']})"
        return text
    return ""


def repository_url(document: dict[str, Any]) -> str:
    value = document.get("repository")
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("url"), str):
        return str(value["url"])
    return ""


MAX_NAME_CHARS = 1024
"""npm allows 214 characters in a name; a longer one is cut, never carried whole."""


class NpmCataloger(attribution.FileVersionsCataloger):
    name = "javascript-package-cataloger"
    patterns = ("*/package.json",)
    max_bytes = 4 * 1024 * 1024


    def catalog_file(self, path: str, versions: list[Evidence], context: CatalogContext) -> list[Package]:
        clean = attribution.clean_text
        history: list[tuple[int, dict[str, str]]] = []
        document: dict[str, Any] = {}
        for item in versions:
            parsed = self._parse(item, context, is_final=item is versions[-1])
            name = clean(parsed.get("name"), MAX_NAME_CHARS)
            version = clean(parsed.get("version"), MAX_NAME_CHARS)
            history.append((item.layer_index, {name: version} if name else {}))
            document = parsed
        name = clean(document.get("name"), MAX_NAME_CHARS)
        if not name:
            return []
        version = clean(document.get("version"), MAX_NAME_CHARS)
        layer_index = attribution.introduced_layers(history).get(name, versions[-1].layer_index)
        return [Package(
            name=name,
            version=version,
            type="npm",
            purl=package_url(name, version),
            licenses=tuple(clean(license) for license in licenses_of(document)[:32]),
            locations=(attribution.location(context, path, layer_index),),
            found_by=self.name,
            metadata={
                "name": name,
                "version": version,
                "author": clean(author_of(document)),
                "homepage": clean(document.get("homepage")),
                "url": clean(repository_url(document)),
                "private": document.get("private") is True,
                "in_node_modules": "/node_modules/" in path,
            },
        )]

    def _parse(self, item: Evidence, context: CatalogContext, is_final: bool) -> dict[str, Any]:
        try:
            parsed = json.loads(item.content.decode("utf-8-sig", errors="replace"))
        except (ValueError, RecursionError) as error:
            if is_final:
                reason = ("it is cut off at the read limit" if item.truncated
                          else "it is nested too deeply" if isinstance(error, RecursionError)
                          else f"invalid JSON ({type(error).__name__})")
                context.warnings.append(
                    f"{self.name}: {item.path} (layer {item.layer_index + 1}) was skipped: {reason}"
                )
            return {}
        return parsed if isinstance(parsed, dict) else {}
