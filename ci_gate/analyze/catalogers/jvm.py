"""JVM installations (syft's java-jvm-cataloger): the `release` file every JDK/JRE build writes
names its version and implementor; the package is `binary` typed, `pkg:generic/VENDOR/PRODUCT@VERSION`."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.analyze.catalogers.streaming import StreamingCataloger, location_of
from ci_gate.model import Package

JVM_RELEASE_MAX_BYTES = 500 * 1024


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
    max_bytes = JVM_RELEASE_MAX_BYTES

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
