"""Maven metadata inside a java archive: pom.properties and pom.xml, read as syft reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ci_gate.analyze.catalogers.streaming import EvidenceError

if TYPE_CHECKING:
    from xml.etree import ElementTree


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
    # Imported for the first pom.xml: an image without Java archives never pays for ElementTree (~6 ms).
    from xml.etree import ElementTree

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
