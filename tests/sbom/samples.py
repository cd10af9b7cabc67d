"""A hand-made analysis with the awkward cases an SBOM writer must survive."""

from __future__ import annotations

from ci_gate.model import Analysis, Distro, ImageConfig, ImageIdentity, Layer, Location, Package

LAYERS = (
    Layer(0, "sha256:" + "1" * 64, "sha256:" + "a" * 64, "application/vnd.oci.image.layer.v1.tar+gzip", 100,
          base=True),
    Layer(1, "sha256:" + "2" * 64, "sha256:" + "b" * 64, "application/vnd.oci.image.layer.v1.tar+gzip", 50,
          base=False),
)


def location(path: str, layer: int) -> Location:
    return Location(path, layer, LAYERS[layer].diff_id)


PACKAGES = (
    Package("bash", "5.2.15-2+b2", "deb", "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
            ("GPL-3", "GPL-3+", "BSD-4-clause-UC", "permissive"), (location("/var/lib/dpkg/status", 0),),
            "dpkg-db-cataloger", {"source": "bash", "architecture": "amd64", "installed_size": 7000}, "base"),
    # The same name and version twice at two paths: two packages, two distinct SBOM ids.
    Package("debug", "2.6.9", "npm", "pkg:npm/debug@2.6.9", ("MIT",),
            (location("/app/node_modules/debug/package.json", 1),), "javascript-package-cataloger", {}, "app"),
    Package("debug", "2.6.9", "npm", "pkg:npm/debug@2.6.9", ("MIT",),
            (location("/app/node_modules/x/node_modules/debug/package.json", 1),), "javascript-package-cataloger",
            {"private": False}, "app"),
    Package("@scope/thing", "", "npm", "pkg:npm/%40scope/thing", ("(MIT OR Apache-2.0)",),
            (location("/app/node_modules/@scope/thing/package.json", 1),), "javascript-package-cataloger"),
    Package("weird", "1.0", "python", "pkg:pypi/weird@1.0", ("MIT and (BSD or GPLv2+)", "Some Custom License!"),
            (location("/usr/lib/python3/dist-packages/weird-1.0.dist-info/METADATA", 1),),
            "python-installed-package-cataloger", {}, None),
    Package("nolicense", "0.1", "gem", "", (), (), ""),
)

SAMPLE = Analysis(
    identity=ImageIdentity(
        reference="registry:127.0.0.1:5000/app:1", scheme="registry",
        manifest_digest="sha256:" + "c" * 64, config_digest="sha256:" + "d" * 64,
        repo_tags=("127.0.0.1:5000/app:1",), repo_digests=("127.0.0.1:5000/app@sha256:" + "c" * 64,),
        platform="linux/amd64", layers=LAYERS),
    config=ImageConfig(labels={"org.opencontainers.image.title": "app"}),
    distro=Distro(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)",
                  version_codename="bookworm", id_like=()),
    packages=PACKAGES,
    tool_version="0.1.0",
)
