"""The tiny synthetic Debian-like image for fast unit tests (a few KB, built in milliseconds).

Two layers: the distro files (os-release, a two-package dpkg status) and a Python dist-info.
syft sees "Debian GNU/Linux 12 (bookworm)", two deb packages and one python package.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.oci import OciImage, TarItem, build_oci_layout

__all__ = ["TINY_CONFIG", "TINY_OS_RELEASE", "TINY_PACKAGES", "build_tiny_image", "tiny_layers"]

TINY_OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

TINY_DPKG_STATUS = b"""Package: openssl
Status: install ok installed
Priority: optional
Section: utils
Installed-Size: 2286
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34), libssl3 (>= 3.0.9)
Description: Secure Sockets Layer toolkit - cryptographic utility

Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Depends: libc6 (>= 2.14)
Description: compression library - runtime
"""

TINY_PYTHON_METADATA = b"""Metadata-Version: 2.1
Name: demo
Version: 1.0
Summary: A demo distribution for ci-gate tests
License: MIT
"""

TINY_PACKAGES = (
    ("deb", "openssl", "3.0.11-1~deb12u2"),
    ("deb", "zlib1g", "1:1.2.13.dfsg-1"),
    ("python", "demo", "1.0"),
)
"""(type, name, version) of every package in the tiny image, as syft reports them."""

TINY_CONFIG = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["/bin/sh"],
    "Labels": {"org.opencontainers.image.title": "ci-gate-tiny"},
}


def _directories(*paths: str) -> list[TarItem]:
    return [TarItem(path, kind="dir", mode=0o755) for path in paths]


def tiny_layers() -> list[list[TarItem]]:
    """The two layers, bottom first."""
    distro = [
        *_directories("etc", "usr", "usr/lib", "var", "var/lib", "var/lib/dpkg"),
        TarItem("usr/lib/os-release", TINY_OS_RELEASE),
        TarItem("etc/os-release", kind="symlink", link_target="../usr/lib/os-release", mode=0o777),
        TarItem("var/lib/dpkg/status", TINY_DPKG_STATUS),
    ]
    dist_info = "usr/lib/python3/dist-packages/demo-1.0.dist-info"
    python = [
        *_directories("usr", "usr/lib", "usr/lib/python3", "usr/lib/python3/dist-packages", dist_info),
        TarItem(f"{dist_info}/METADATA", TINY_PYTHON_METADATA),
        TarItem(f"{dist_info}/RECORD", f"{dist_info}/METADATA,,\n{dist_info}/RECORD,,\n".encode()),
    ]
    return [distro, python]


def build_tiny_image(out: Path, *, tag: str = "tiny") -> OciImage:
    """Write the tiny image as an OCI layout at `out`."""
    history = [
        {"created": "1970-01-01T00:00:00Z", "created_by": "ADD distro files /"},
        {"created": "1970-01-01T00:00:00Z",
         "created_by": "ADD demo-1.0.dist-info /usr/lib/python3/dist-packages"},
    ]
    return build_oci_layout(out, tiny_layers(), tag=tag, config=TINY_CONFIG, history=history)
