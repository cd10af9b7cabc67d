"""Version comparison, one module per scheme, each following its reference implementation.

`comparator(scheme)` gives a `compare(left, right) -> -1|0|1` function; `scheme_for_ecosystem`
says which scheme an OSV ecosystem's `ECOSYSTEM` ranges use. Every comparator raises ValueError
for a version it cannot read; callers treat that as "cannot decide", never as a match.
"""

from __future__ import annotations

from collections.abc import Callable

from ci_gate.vulns.versions import apk, dpkg, generic, go, maven, pep440, rpm, rubygems, semver

Comparator = Callable[[str, str], int]

COMPARATORS: dict[str, Comparator] = {
    "dpkg": dpkg.compare,
    "apk": apk.compare,
    "rpm": rpm.compare,
    "pep440": pep440.compare,
    "semver": semver.compare,
    "maven": maven.compare,
    "go": go.compare,
    "rubygems": rubygems.compare,
    "generic": generic.compare,
}

_ECOSYSTEM_SCHEMES = {
    "debian": "dpkg",
    "ubuntu": "dpkg",
    "alpine": "apk",
    "wolfi": "apk",
    "chainguard": "apk",
    "red hat": "rpm",
    "rocky linux": "rpm",
    "almalinux": "rpm",
    "suse": "rpm",
    "opensuse": "rpm",
    "photon os": "rpm",
    "azure linux": "rpm",
    "mageia": "rpm",
    "openeuler": "rpm",
    "pypi": "pep440",
    "npm": "semver",
    "crates.io": "semver",
    "maven": "maven",
    "go": "go",
    "rubygems": "rubygems",
}


def scheme_for_ecosystem(ecosystem: str) -> str:
    """The version scheme of an OSV ecosystem string such as `Debian:12` or `PyPI`."""
    family = ecosystem.split(":", 1)[0].strip().lower()
    return _ECOSYSTEM_SCHEMES.get(family, "generic")


def comparator(scheme: str) -> Comparator:
    """The compare function for a scheme name (see COMPARATORS); KeyError for an unknown one."""
    return COMPARATORS[scheme]
