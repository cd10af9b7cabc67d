"""Real OCI images through the whole analyzer: attribution across database rewrites, deleted
packages, corrupt databases next to good ones — and syft on the same image for contrast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.tiny import TINY_OS_RELEASE

STANZA = "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
SITE = "usr/lib/python3/dist-packages"


def status(*packages: tuple[str, str]) -> bytes:
    return "".join(STANZA.format(name=name, version=version) for name, version in packages).encode()


def folders(*paths: str) -> list[TarItem]:
    return [TarItem(path, kind="dir", mode=0o755) for path in paths]


@pytest.fixture(scope="module")
def layered_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    base = [
        *folders("etc", "var", "var/lib", "var/lib/dpkg"),
        TarItem("etc/os-release", TINY_OS_RELEASE),
        TarItem("var/lib/dpkg/status", status(("base-files", "12.4"), ("libc6", "2.36-9"))),
    ]
    install = [  # `apt-get install curl` and a pip install; dpkg rewrites its whole database
        *folders("var", "var/lib", "var/lib/dpkg", "usr", "usr/lib", "usr/lib/python3", SITE,
                 f"{SITE}/gone-1.0.dist-info", f"{SITE}/kept-2.0.dist-info"),
        TarItem("var/lib/dpkg/status", status(("base-files", "12.4"), ("libc6", "2.36-9"), ("curl", "7.88"))),
        TarItem(f"{SITE}/gone-1.0.dist-info/METADATA", b"Name: gone\nVersion: 1.0\n"),
        TarItem(f"{SITE}/kept-2.0.dist-info/METADATA", b"Name: kept\nVersion: 2.0\n"),
    ]
    upgrade = [  # libc6 upgraded, a package removed with its files, corrupt databases dropped in
        *folders("var", "var/lib", "var/lib/dpkg", "var/lib/rpm", "usr", "usr/lib", "usr/lib/python3", SITE,
                 "app", "app/node_modules", "app/node_modules/bad", "app/node_modules/good"),
        TarItem("var/lib/dpkg/status", status(("base-files", "12.4"), ("libc6", "2.36-9+deb12u4"),
                                              ("curl", "7.88"))),
        TarItem(f"{SITE}/.wh.gone-1.0.dist-info"),
        TarItem("var/lib/rpm/Packages", b"\x00" * 12 + (0x061561).to_bytes(4, "little") + b"\xff" * 4000),
        TarItem("app/node_modules/bad/package.json", b'{"name": "bad", "vers'),
        TarItem("app/node_modules/good/package.json", b'{"name": "good", "version": "3.1.4"}'),
    ]
    history = [{"created_by": "ADD rootfs /"}, {"created_by": "RUN apt-get install curl && pip install"},
               {"created_by": "RUN apt-get upgrade && npm install"}]
    return build_oci_layout(tmp_path_factory.mktemp("layered") / "oci", [base, install, upgrade], tag="edge",
                            history=history)


def test_attribution_deletion_and_corruption(layered_image: OciImage) -> None:
    analysis = analyze_image(f"oci-dir:{layered_image.path}", AnalyzeOptions(use_cache=False))
    found = {(p.type, p.name, p.version): p.locations[0].layer_index for p in analysis.packages}
    assert found == {
        ("deb", "base-files", "12.4"): 0,  # not layer 2, the last rewrite of the database
        ("deb", "curl", "7.88"): 1,
        ("deb", "libc6", "2.36-9+deb12u4"): 2,  # the upgrade
        ("python", "kept", "2.0"): 1,  # `gone` was deleted by a whiteout in layer 2
        ("npm", "good", "3.1.4"): 2,
    }
    warnings = "\n".join(analysis.warnings)
    assert "rpm-db-cataloger: /var/lib/rpm/Packages" in warnings
    assert "app/node_modules/bad/package.json" in warnings


def test_syft_credits_every_package_to_the_last_rewrite(layered_image: OciImage,
                                                         syft_json: Callable[..., dict[str, Any]]) -> None:
    """The contrast that motivates our attribution (syft#645): same packages, syft's layer is the last
    layer that wrote /var/lib/dpkg/status for all of them."""
    reference = f"oci-dir:{layered_image.path}"
    document = syft_json(reference)
    analysis = analyze_image(reference, AnalyzeOptions(use_cache=False))
    layers = [layer["digest"] for layer in document["source"]["metadata"]["layers"]]
    syft_layers = {(a["type"], a["name"], a["version"]): layers.index(a["locations"][0]["layerID"])
                   for a in document["artifacts"]}
    ours = {(p.type, p.name, p.version): p.locations[0].layer_index for p in analysis.packages}
    assert set(syft_layers) == set(ours)
    assert {key: layer for key, layer in syft_layers.items() if key[0] == "deb"} == {
        ("deb", "base-files", "12.4"): 2, ("deb", "curl", "7.88"): 2, ("deb", "libc6", "2.36-9+deb12u4"): 2}
