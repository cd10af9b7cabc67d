"""Two versions of one small Debian image that differ by a package, and an unrelated third: the
images of the tag drift and `ci-gate watch` tests (tests/watch, tests/server)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.tiny import TINY_CONFIG, TINY_DPKG_STATUS, tiny_layers

CURL_STATUS = b"""
Package: curl
Status: install ok installed
Priority: optional
Section: web
Installed-Size: 500
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Source: curl
Version: 7.88.1-10+deb12u4
Description: command line tool for transferring data with URL syntax
"""


def _layers(extra_status: bytes) -> list[list[TarItem]]:
    layers = tiny_layers()
    distro = [item if item.path != "var/lib/dpkg/status" else TarItem("var/lib/dpkg/status",
                                                                       TINY_DPKG_STATUS + extra_status)
              for item in layers[0]]
    return [distro, layers[1]]


@dataclass(frozen=True)
class DriftImages:
    """`app:1` (openssl, zlib1g, a python package), `app:2` (the same plus curl), `other` (tiny, another tag)."""

    app_v1: Path
    app_v2: Path
    other: Path
    app_v1_image: OciImage
    """app:1 as pushable to a registry (tests.support.oci.push)."""
    app_v2_image: OciImage


def build_drift_images(root: Path) -> DriftImages:
    history = [{"created": "1970-01-01T00:00:00Z", "created_by": "ADD distro files /"},
               {"created": "1970-01-01T00:00:00Z", "created_by": "ADD demo /usr/lib/python3/dist-packages"}]
    app_v1 = build_oci_layout(root / "app1", _layers(b""), tag="1", config=TINY_CONFIG, history=history)
    app_v2 = build_oci_layout(root / "app2", _layers(CURL_STATUS), tag="2", config=TINY_CONFIG, history=history)
    other_config = {**TINY_CONFIG, "Labels": {"org.opencontainers.image.title": "other"}}
    build_oci_layout(root / "other", _layers(b""), tag="other", config=other_config, history=history)
    return DriftImages(root / "app1", root / "app2", root / "other", app_v1, app_v2)
