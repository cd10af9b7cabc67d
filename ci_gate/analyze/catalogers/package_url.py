"""The one package URL (purl) builder: purls written exactly as syft writes them, so ours and syft's
compare as strings. Every cataloger builds its purls here; qualifiers are given in the order syft
writes them (sorted by key for the distro types).

syft uses Anchore's fork of packageurl-go, which percent-encodes only `@ ? # + space` and non-ASCII
characters (so `(devel)` stays as it is and `v2.8.2+ds1` becomes `v2.8.2%2Bds1`). Namespaces and
subpaths are encoded segment by segment so their `/` separators survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

_ESCAPED = frozenset("@?#+ ")


def escape(text: str) -> str:
    """One purl component (a name, a version, one namespace segment), encoded as syft does."""
    # '+' is encoded so that a parser of the purl never reads a semver build tag as a space.
    return "".join(quote(character, safe="") if character in _ESCAPED or ord(character) > 0x7F else character
                   for character in text)


def package_url(purl_type: str, namespace: str, name: str, version: str = "",
                qualifiers: Sequence[tuple[str, str]] = (), subpath: str = "") -> str:
    """`pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS#SUBPATH`, empty parts left out."""
    text = f"pkg:{purl_type}/"
    if namespace:
        text += "/".join(escape(segment) for segment in namespace.split("/")) + "/"
    text += escape(name)
    if version:
        text += "@" + escape(version)
    if qualifiers:
        text += "?" + "&".join(f"{key}={escape(value)}" for key, value in qualifiers)
    if subpath:
        text += "#" + "/".join(escape(segment) for segment in subpath.split("/"))
    return text
