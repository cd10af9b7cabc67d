"""apk: a real-format installed database (apk-tools' `lib/apk/db/installed`), against syft."""

from __future__ import annotations

from pathlib import Path

from ci_gate.analyze.catalogers.apk import ApkCataloger, split_license
from ci_gate.model import Distro
from tests.support.catalogers import catalog_trees, syft_identities
from tests.support.syft import run_syft_dir

FIXTURE = Path(__file__).parent / "fixtures" / "apk"
ALPINE = Distro(id="alpine", version_id="3.19.1")


def test_installed_database_agrees_with_syft() -> None:
    ours, warnings = catalog_trees(ApkCataloger(), [FIXTURE], ALPINE)
    theirs = run_syft_dir(FIXTURE, "apk-db-cataloger")
    assert warnings == []
    assert len(ours) == 6
    assert {(p.name, p.version, p.purl) for p in ours} == syft_identities(theirs)
    assert {p.name: sorted(p.licenses) for p in ours} == {
        a["name"]: sorted(license["value"] for license in a["licenses"]) for a in theirs}


def test_origin_and_metadata() -> None:
    ours, _ = catalog_trees(ApkCataloger(), [FIXTURE], ALPINE)
    client = {p.name: p for p in ours}["ssl_client"]
    assert client.purl == "pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox"
    assert client.metadata["origin"] == "busybox"
    assert client.metadata["architecture"] == "x86_64"
    assert client.metadata["dependencies"] == ["so:libc.musl-x86_64.so.1", "so:libcrypto.so.3", "so:libssl.so.3"]
    assert client.metadata["distro"] == "alpine-3.19.1"
    assert client.found_by == "apk-db-cataloger"


def test_licenses_split_like_syft() -> None:
    assert split_license("MPL-2.0 AND MIT") == ["MPL-2.0 AND MIT"]
    assert split_license("(MIT OR Apache-2.0) AND BSD-3-Clause") == ["(MIT OR Apache-2.0) AND BSD-3-Clause"]
    assert split_license("Zlib MIT BSD") == ["Zlib", "MIT", "BSD"]
    assert split_license("") == []


def test_a_package_added_later_is_credited_to_its_layer(tmp_path: Path) -> None:
    text = (FIXTURE / "lib/apk/db/installed").read_text()
    base = tmp_path / "base/lib/apk/db"
    base.mkdir(parents=True)
    first_two = "\n\n".join(text.split("\n\n")[:2]) + "\n\n"
    (base / "installed").write_text(first_two)
    app = tmp_path / "app/lib/apk/db"
    app.mkdir(parents=True)
    (app / "installed").write_text(text)
    ours, _ = catalog_trees(ApkCataloger(), [tmp_path / "base", tmp_path / "app"], ALPINE, base=1)
    assert {p.name: (p.locations[0].layer_index, p.origin) for p in ours} == {
        "musl": (0, "base"), "busybox": (0, "base"), "ssl_client": (1, "app"), "libcrypto3": (1, "app"),
        "zlib": (1, "app"), "ca-certificates-bundle": (1, "app")}


def test_garbage_lines_warn_and_the_rest_stands(tmp_path: Path) -> None:
    folder = tmp_path / "lib/apk/db"
    folder.mkdir(parents=True)
    text = (FIXTURE / "lib/apk/db/installed").read_bytes()
    (folder / "installed").write_bytes(b"this is not apk\n\xff\xfe\x00\n\n" + text + b"\nS:notanumber\n")
    ours, warnings = catalog_trees(ApkCataloger(), [tmp_path], ALPINE)
    assert len(ours) == 6
    assert len(warnings) == 1 and "malformed" in warnings[0]
