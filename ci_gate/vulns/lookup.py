"""Which ecosystem, names and version a package is looked up under in the store.

Distro packages are looked up in their distro release's ecosystem (`Debian:12`, `Alpine:v3.19`,
`Ubuntu:22.04:LTS`, `Red Hat:enterprise_linux:9::...`, `Rocky Linux:9`, ...). Debian, Ubuntu and
apk-based (Alpine, Wolfi, Chainguard) records name SOURCE packages (the OSV schema's rule for
these ecosystems), so a dpkg or apk package is looked up by its source name only (Debian's
`Source:`, the apk origin; the binary name when the package is its own source), as osv-scanner
and trivy do: a record that names `zlib1g` is about a source package called `zlib1g`, not about
the binary `zlib1g` built from `zlib`. RPM records name binary packages: an rpm is looked up by its
name and by its source RPM's name. Language packages are looked up in their ecosystem by its normalised
name (PEP 503 for PyPI, `@scope/name` for npm, `group:artifact` for Maven, module path for Go).

A package that cannot be looked up gets a reason string instead of a key, which the matcher
reports as skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from ci_gate.ecosystems import (
    RPM_DISTRO_FAMILIES,
    SOURCE_NAMED_TYPES,
    osv_ecosystem_of,
    osv_ecosystem_of_purl_type,
    scheme_for_ecosystem,
)
from ci_gate.model import Distro, Package
from ci_gate.vulns.records import normalize_name


@dataclass(frozen=True, slots=True)
class LookupKey:
    """Where to look a package up: ecosystems, names (with how each matches) and the version."""

    ecosystems: tuple[str, ...]
    names: tuple[tuple[str, str], ...]
    """(normalised name, matched_by)."""
    version: str
    scheme: str


def _major(version_id: str) -> str:
    return version_id.split(".", 1)[0]


def _distro_ecosystems(distro: Distro, package_type: str, available: Sequence[str]) -> tuple[str, ...] | str:
    """The store ecosystems of this distro release, or a reason string when there are none."""
    distro_id = distro.id.lower()
    version = distro.version_id
    if package_type == "deb":
        if distro_id == "debian":
            if not version:
                return f"Debian {distro.version_codename or 'testing/sid'} has no numbered release in OSV"
            return (f"Debian:{_major(version)}",)
        if distro_id == "ubuntu":
            wanted = [e for e in available if e == f"Ubuntu:{version}" or e.startswith(f"Ubuntu:{version}:")]
            return tuple(wanted) or (f"Ubuntu:{version}",)
    if package_type == "apk":
        if distro_id == "alpine":
            branch = re.match(r"^(\d+)\.(\d+)", version)
            if not branch:
                return f"Alpine {version or 'edge'} has no release branch in OSV (only v<major>.<minor>)"
            return (f"Alpine:v{branch.group(1)}.{branch.group(2)}",)
        if distro_id == "wolfi":
            return ("Wolfi",)
        if distro_id == "chainguard":
            return ("Chainguard",)
    if package_type == "rpm" and distro_id in RPM_DISTRO_FAMILIES:
        major = _major(version)
        wanted = []
        for family in RPM_DISTRO_FAMILIES[distro_id]:
            for ecosystem in available:
                if not ecosystem.startswith(family + ":"):
                    continue
                release = ecosystem[len(family) + 1:]
                # Red Hat:enterprise_linux:9::appstream, Rocky Linux:9, SUSE:Linux Enterprise Server 15 SP5
                if re.search(rf"(^|[^0-9.]){re.escape(major)}([^0-9]|$)", release):
                    if family in ("SUSE", "openSUSE") and version and version not in release.replace(" SP", "."):
                        continue
                    wanted.append(ecosystem)
        return tuple(wanted) or f"no {', '.join(RPM_DISTRO_FAMILIES[distro_id])} {version} data in the store"
    return f"no vulnerability data source for {package_type} packages of {distro.id} {version}".strip()


def _purl_parts(purl: str) -> tuple[str, str, str, str] | None:
    """(type, namespace, name, version) of a package URL, or None."""
    if not purl.startswith("pkg:"):
        return None
    body = purl[4:].split("#", 1)[0].split("?", 1)[0]
    body, _, version = body.partition("@")
    parts = body.split("/")
    if len(parts) < 2:
        return None
    kind, name = parts[0].lower(), unquote(parts[-1])
    namespace = "/".join(unquote(p) for p in parts[1:-1])
    return kind, namespace, name, unquote(version)


def language_key(package: Package) -> LookupKey | str:
    """The ecosystem, name and version of a language package, or why it has none."""
    parts = _purl_parts(package.purl)
    ecosystem = osv_ecosystem_of_purl_type(parts[0]) if parts else ""
    name = package.name
    if parts and ecosystem:
        _, namespace, purl_name, _ = parts
        if ecosystem == "Maven":
            name = f"{namespace}:{purl_name}" if namespace else purl_name
        elif ecosystem in ("Go", "Packagist") or (ecosystem == "npm" and namespace):
            name = f"{namespace}/{purl_name}" if namespace else purl_name
        else:
            name = purl_name
    if not ecosystem:
        ecosystem = osv_ecosystem_of(package.type)
    if not ecosystem:
        return f"no vulnerability ecosystem for package type {package.type!r}"
    if ecosystem == "Maven" and ":" not in name:
        return "Maven package without a group id (no pom.properties and no purl namespace)"
    if not package.version:
        return "no version"
    version = package.version
    if ecosystem == "Go" and name == "stdlib":
        # syft reports the Go toolchain as `stdlib` at `go1.21.3`; OSV's Go records say `1.21.3`.
        version = version.removeprefix("go")
    return LookupKey((ecosystem,), ((normalize_name(ecosystem, name), "exact-direct-match"),), version,
                     scheme_for_ecosystem(ecosystem))


def distro_key(package: Package, distro: Distro | None, available: Sequence[str]) -> LookupKey | str:
    """The release ecosystems, binary and source names and version of an OS package, or why not."""
    if distro is None or not distro.id:
        return "the image's distribution is unknown (no /etc/os-release)"
    ecosystems = _distro_ecosystems(distro, package.type, available)
    if isinstance(ecosystems, str):
        return ecosystems
    metadata = package.metadata or {}
    version = package.version
    if package.type == "deb":
        source = str(metadata.get("source") or "")
        # Debian advisories name the source package and its version (binNMUs add +bN to binaries).
        source_version = str(metadata.get("source_version") or "") or version
    elif package.type == "apk":
        source = str(metadata.get("origin") or metadata.get("source") or "")
        source_version = version
    else:
        source = str(metadata.get("source") or "")
        if not source and metadata.get("source_rpm"):
            source = _source_rpm_name(str(metadata["source_rpm"]))
        epoch = metadata.get("epoch")
        if epoch not in (None, "") and ":" not in version:
            version = f"{epoch}:{version}"
        source_version = version
    if not version:
        return "no version"
    family = ecosystems[0]
    binary = normalize_name(family, package.name)
    source_name = normalize_name(family, source) if source else ""
    if package.type in SOURCE_NAMED_TYPES:
        # Only the source name: dpkg omits `Source:` when it equals the package name.
        if source_name and source_name != binary:
            return LookupKey(ecosystems, ((source_name, "exact-indirect-match"),), source_version,
                             scheme_for_ecosystem(family))
        return LookupKey(ecosystems, ((binary, "exact-direct-match"),), source_version,
                         scheme_for_ecosystem(family))
    names = [(binary, "exact-direct-match")]
    if source_name and source_name != binary:
        names.append((source_name, "exact-indirect-match"))
    # The source name is looked up with the source version; both are usually the same.
    key_version = version if source_version == version else source_version
    return LookupKey(ecosystems, tuple(names), key_version, scheme_for_ecosystem(family))


def _source_rpm_name(source_rpm: str) -> str:
    """`openssl-3.0.7-24.el9.src.rpm` → `openssl`."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""
