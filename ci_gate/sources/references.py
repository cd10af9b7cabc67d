"""Image references as Docker normalises them: `[HOST[:PORT]/]REPO[:TAG][@DIGEST]`, with docker.io and
library/ defaults. Below the registry client and its credential rules, which both read them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ci_gate.errors import SourceError
from ci_gate.sources.oci_layout import check_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class RegistryReference:
    """An image reference split the way Docker normalises it."""

    host: str
    """The registry as users name it: docker.io, ghcr.io, 127.0.0.1:5000."""
    repository: str
    """library/debian, test/app ..."""
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        """Where the API lives (Docker Hub's is not docker.io)."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> RegistryReference:
    """`[HOST[:PORT]/]REPO[:TAG][@DIGEST]` → parts, with docker.io and library/ defaults."""
    original = text
    text = text.strip().removeprefix("docker://").removeprefix("//")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        digest = check_digest(digest, f"registry:{original}")
    first, separator, rest = text.partition("/")
    if separator and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, name = first, rest
    else:
        host, name = DOCKER_HUB, text
    if host in ("index.docker.io", DOCKER_HUB_API):
        host = DOCKER_HUB
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG_RE.match(tag):
            raise SourceError(f"registry:{original}: {tag!r} is not a valid tag; tags are letters, digits, "
                              "'_', '.' and '-', at most 128")
    if host == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    if not name or not _REPOSITORY_RE.match(name):
        raise SourceError(f"registry:{original}: {name!r} is not a valid repository name; use lowercase "
                          "HOST/NAME[:TAG][@sha256:...]")
    if tag is None and digest is None:
        tag = "latest"
    return RegistryReference(host, name, tag, digest)
