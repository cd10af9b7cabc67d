"""The one list of image-reference schemes (`SCHEME:LOCATION`, named as syft names them).

    docker-archive:PATH[:REPO:TAG]   docker save / skopeo docker-archive output
    oci-archive:PATH[:TAG]           a tar of an OCI image layout
    oci-dir:PATH[:TAG]               an OCI image layout directory
    dir:PATH                         a root filesystem on disk
    registry:REF                     an OCI distribution registry (no daemon)
    docker:REF                       the local Docker daemon's socket
    sbom:PATH                        an SBOM (syft JSON, CycloneDX, SPDX), read by the analyzer

A reader in `ci_gate.sources` opens each scheme but `sbom`, which is no image: the analyzer reads it.
"""

from __future__ import annotations

from ci_gate.model import Label


class Scheme(Label):
    """A scheme ci-gate reads. Members equal their names (`Scheme.DIR == "dir"`)."""

    DOCKER_ARCHIVE = "docker-archive"
    OCI_ARCHIVE = "oci-archive"
    OCI_DIR = "oci-dir"
    DIR = "dir"
    REGISTRY = "registry"
    DOCKER = "docker"
    SBOM = "sbom"

    @property
    def prefix(self) -> str:
        """`dir:`, the text a reference starts with."""
        return f"{self.value}:"

    @property
    def names_an_image(self) -> bool:
        """True for `registry` and `docker`: the location is an image name (HOST/REPO:TAG), not a path."""
        return self in (Scheme.REGISTRY, Scheme.DOCKER)


SCHEMES: tuple[Scheme, ...] = tuple(Scheme)
IMAGE_SCHEMES: tuple[Scheme, ...] = tuple(s for s in Scheme if s is not Scheme.SBOM)
"""The schemes an image source reads."""
LOCAL_SCHEMES: tuple[Scheme, ...] = tuple(s for s in Scheme if not s.names_an_image)
"""Schemes whose location is a path on this machine (no tag a registry could pull)."""
LOCAL_PREFIXES: tuple[str, ...] = tuple(s.prefix for s in LOCAL_SCHEMES)
NAME_PREFIXES: tuple[str, ...] = tuple(s.prefix for s in SCHEMES if s.names_an_image)
"""`registry:` and `docker:`, which stand before an image name."""
SCHEME_LIST = ", ".join(s.prefix for s in SCHEMES)
"""Every scheme `gate` and `analyze` accept, for messages."""

UNSUPPORTED_SCHEMES = ("podman", "singularity", "file", "containerd", "oci", "docker-daemon")
"""syft's schemes ci-gate does not read: said plainly, never taken as an image name."""


def without_name_scheme(reference: str) -> str:
    """`registry:host/app:1` and `docker:app:1` → the image name; other references unchanged."""
    for prefix in NAME_PREFIXES:
        if reference.startswith(prefix):
            return reference[len(prefix):]
    return reference
