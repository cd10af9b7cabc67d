"""The one vocabulary of package types, and of the distributions and OSV ecosystems they live in.

Every stage names a package by syft's package type (`deb`, `python`, `java-archive`, ...); each
other vocabulary the tree needs is a column of `ECOSYSTEMS`, never a table of its own:

- `purl_type`: the package URL type (`pkg:pypi/...`);
- `osv_ecosystem`: the OSV ecosystem a language package's advisories are filed under (distro
  packages are looked up under their release's ecosystem, e.g. `Debian:12`, see `vulns.lookup`);
- `version_scheme`: the `vulns.versions` comparator that orders its versions;
- `anchore_type`: Anchore's `package_type` (vulnerability listings, policy messages, content types);
- `is_os`: whether it belongs to the operating system (Anchore's `os` packages).

A test (tests/test_vocabulary.py) fails when a second table of package types appears in ci_gate/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ecosystem:
    """One package type and its name in each other vocabulary."""

    package_type: str
    """syft's package type, the name the model uses."""
    purl_type: str
    osv_ecosystem: str
    """The OSV ecosystem of a language package; "" for distro packages (per release) and for none."""
    version_scheme: str
    """A `ci_gate.vulns.versions.COMPARATORS` key."""
    anchore_type: str
    is_os: bool = False
    upgrade_command: str = ""
    """The shell step that upgrades one package to a fixed version (`{name}`, `{fixed}`); "" for none."""


ECOSYSTEMS: tuple[Ecosystem, ...] = (
    Ecosystem("deb", "deb", "", "dpkg", "dpkg", True, "apt-get update && apt-get install -y --only-upgrade {name}"),
    Ecosystem("apk", "apk", "", "apk", "APKG", True, "apk add --no-cache --upgrade {name}"),
    Ecosystem("rpm", "rpm", "", "rpm", "rpm", True, "dnf upgrade -y {name}"),
    Ecosystem("python", "pypi", "PyPI", "pep440", "python", upgrade_command="pip install '{name}>={fixed}'"),
    Ecosystem("npm", "npm", "npm", "semver", "npm", upgrade_command="npm install {name}@{fixed}"),
    Ecosystem("java-archive", "maven", "Maven", "maven", "java",
              upgrade_command="bump {name} to {fixed} in the build file"),
    Ecosystem("jenkins-plugin", "maven", "Maven", "maven", "java"),
    Ecosystem("go-module", "golang", "Go", "go", "go", upgrade_command="go get {name}@v{fixed}"),
    Ecosystem("gem", "gem", "RubyGems", "rubygems", "gem", upgrade_command="bundle update {name}"),
    Ecosystem("php-composer", "composer", "Packagist", "generic", "composer"),
    Ecosystem("dotnet", "nuget", "NuGet", "generic", "nuget"),
    Ecosystem("rust-crate", "cargo", "crates.io", "semver", "rust"),
    Ecosystem("binary", "generic", "", "generic", "binary"),
    # Types syft knows that ci-gate has no advisories or Anchore name for: only their purl type.
    *(Ecosystem(kind, purl_type, "", "generic", kind) for kind, purl_type in (
        ("alpm", "alpm"), ("conan", "conan"), ("hex", "hex"), ("dart-pub", "pub"), ("pod", "cocoapods"),
        ("swift", "swift"), ("hackage", "hackage"), ("github-action", "github"))),
)

BY_PACKAGE_TYPE: dict[str, Ecosystem] = {e.package_type: e for e in ECOSYSTEMS}

OS_PACKAGE_TYPES = frozenset(e.package_type for e in ECOSYSTEMS if e.is_os)
"""syft's package types that belong to the operating system (Anchore's `os` package_type)."""

SOURCE_NAMED_TYPES = frozenset({"deb", "apk"})
"""OS package types whose distro advisories (Debian, Ubuntu, Alpine, Wolfi, Chainguard) name source packages."""

ANCHORE_OS_TYPES = frozenset({e.anchore_type.lower() for e in ECOSYSTEMS if e.is_os} | {"kb"})
"""Anchore's os package types as its listings spell them, lower-cased (Windows `kb` included)."""

ANCHORE_CONTENT_TYPES = ("os", "files", "npm", "gem", "python", "java", "binary", "go", "malware")
"""anchore-engine's default content types; a package of another ecosystem adds its own."""

ANCHORE_PACKAGE_CONTENT_TYPES = ("os", "python", "npm", "gem", "java", "go", "nuget", "binary")
"""The Anchore content types that list packages; the others (files, malware, manifest) do not."""

_ANCHORE_TYPE_ALIASES = {name: "java-archive" for name in ("java-jar", "java-war", "java-ear", "java-hpi", "maven")}


def ecosystem(package_type: str) -> Ecosystem | None:
    return BY_PACKAGE_TYPE.get(package_type)


def is_os_package(package_type: str) -> bool:
    return package_type in OS_PACKAGE_TYPES


def purl_type_of(package_type: str) -> str:
    found = BY_PACKAGE_TYPE.get(package_type)
    return found.purl_type if found else package_type


def package_type_of_purl_type(purl_type: str) -> str:
    """purl type → syft package type (the first type that uses it: `maven` → `java-archive`)."""
    return _BY_PURL_TYPE.get(purl_type.lower(), purl_type.lower())


def osv_ecosystem_of_purl_type(purl_type: str) -> str:
    found = BY_PACKAGE_TYPE.get(_BY_PURL_TYPE.get(purl_type.lower(), ""))
    return found.osv_ecosystem if found else ""


def osv_ecosystem_of(package_type: str) -> str:
    found = BY_PACKAGE_TYPE.get(package_type)
    return found.osv_ecosystem if found else ""


def version_scheme_of(package_type: str) -> str | None:
    """The version scheme of a package type; None for a type ci-gate does not know."""
    found = BY_PACKAGE_TYPE.get(package_type)
    return found.version_scheme if found else None


def anchore_type_of(package_type: str) -> str:
    """Anchore's package_type for syft's (`deb` → `dpkg`); an unknown type stays as it is."""
    found = BY_PACKAGE_TYPE.get(package_type)
    return found.anchore_type if found else package_type


def anchore_content_type_of(package_type: str) -> str:
    """The Anchore `/content/{type}` a package is listed under: `os` for distro packages, else its type."""
    found = BY_PACKAGE_TYPE.get(package_type)
    if found is None:
        return package_type
    return "os" if found.is_os else found.anchore_type


def is_anchore_os_type(anchore_type: str) -> bool:
    return anchore_type.lower() in ANCHORE_OS_TYPES


def package_type_of_anchore(anchore_type: str) -> str:
    """Anchore's package type (any case, `java-jar` and the other archive spellings too) → syft's."""
    kind = anchore_type.lower()
    if kind in BY_PACKAGE_TYPE:
        return kind
    return _BY_ANCHORE_TYPE.get(kind) or _ANCHORE_TYPE_ALIASES.get(kind, kind)


def upgrade_command(package_type: str) -> str:
    found = BY_PACKAGE_TYPE.get(package_type)
    return found.upgrade_command if found else ""


def _first_by(key: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for entry in ECOSYSTEMS:
        table.setdefault(str(getattr(entry, key)).lower(), entry.package_type)
    return table


_BY_PURL_TYPE = _first_by("purl_type")
_BY_ANCHORE_TYPE = _first_by("anchore_type")


# --- distributions --------------------------------------------------------------------------------

OSV_DISTRO_FAMILIES: dict[str, str] = {
    "Debian": "deb", "Ubuntu": "deb",
    "Alpine": "apk", "Wolfi": "apk", "Chainguard": "apk",
    "Red Hat": "rpm", "Rocky Linux": "rpm", "AlmaLinux": "rpm", "SUSE": "rpm", "openSUSE": "rpm",
    "Photon OS": "rpm", "Azure Linux": "rpm", "CBL-Mariner": "rpm", "Mageia": "rpm", "openEuler": "rpm",
}
"""The OSV ecosystem families of distro releases (`Debian:12` is family Debian) → their package type."""

RPM_DISTRO_FAMILIES: dict[str, tuple[str, ...]] = {
    "rhel": ("Red Hat",), "centos": ("Red Hat",), "rocky": ("Rocky Linux",), "almalinux": ("AlmaLinux",),
    "sles": ("SUSE",), "sle_micro": ("SUSE",), "opensuse-leap": ("openSUSE",), "opensuse-tumbleweed": ("openSUSE",),
    "photon": ("Photon OS",), "azurelinux": ("Azure Linux",), "mariner": ("Azure Linux", "CBL-Mariner"),
    "openeuler": ("openEuler",), "mageia": ("Mageia",),
}
"""os-release ID of an rpm distribution → the OSV ecosystem families of its releases."""

DISTRO_PACKAGE_TYPES: dict[str, str] = {
    "debian": "deb", "ubuntu": "deb", "alpine": "apk", "wolfi": "apk", "chainguard": "apk",
    **{distro_id: "rpm" for distro_id in (*RPM_DISTRO_FAMILIES, "fedora", "ol", "amzn")},
}
"""os-release `ID` → the package type of the distribution (which orders its release numbers too)."""


def scheme_for_ecosystem(osv_ecosystem: str) -> str:
    """The version scheme of an OSV ecosystem string such as `Debian:12` or `PyPI`; `generic` for others."""
    family = osv_ecosystem.split(":", 1)[0].strip().lower()
    return _SCHEME_BY_FAMILY.get(family, "generic")


_SCHEME_BY_FAMILY: dict[str, str] = {
    **{family.lower(): BY_PACKAGE_TYPE[kind].version_scheme for family, kind in OSV_DISTRO_FAMILIES.items()},
    **{e.osv_ecosystem.lower(): e.version_scheme for e in ECOSYSTEMS
       if e.osv_ecosystem and e.version_scheme != "generic"},
}
