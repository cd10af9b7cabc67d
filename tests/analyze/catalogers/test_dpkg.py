"""dpkg: fixture trees laid out as inside an image, checked against syft and against hostile input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.dpkg import DpkgCataloger, licenses_from_copyright, parse_stanzas
from ci_gate.model import Distro
from tests.support.catalogers import catalog_trees, syft_identities
from tests.support.syft import run_syft_dir

FIXTURES = Path(__file__).parent / "fixtures"
DEBIAN_12 = Distro(id="debian", version_id="12", version_codename="bookworm")


def test_status_file_packages_metadata_and_purls() -> None:
    packages, warnings = catalog_trees(DpkgCataloger(), [FIXTURES / "dpkg-base"], DEBIAN_12)
    assert warnings == []
    by_name = {p.name: p for p in packages}
    # The `deinstall ok config-files` stanza is not an installed package.
    assert sorted(by_name) == ["libc6", "libfoo1", "tool"]
    foo = by_name["libfoo1"]
    assert foo.version == "1.2.3-1+b2"
    assert foo.type == "deb"
    assert foo.purl == ("pkg:deb/debian/libfoo1@1.2.3-1%2Bb2?arch=amd64&distro=debian-12"
                        "&upstream=foo%401.2.3-1")
    assert foo.metadata["source"] == "foo"
    assert foo.metadata["source_version"] == "1.2.3-1"
    assert foo.metadata["architecture"] == "amd64"
    assert foo.metadata["distro"] == "debian-12"
    assert foo.metadata["depends"] == ["libc6 (>= 2.34)"]
    assert foo.licenses == ("GPL-2", "GPL-2+", "LGPL-2.1", "LGPL-2.1+")
    assert [loc.path for loc in foo.locations] == ["/var/lib/dpkg/status", "/usr/share/doc/libfoo1/copyright"]
    tool = by_name["tool"]
    assert tool.version == "1:2.0-3"
    assert tool.purl == "pkg:deb/debian/tool@1:2.0-3?arch=amd64&distro=debian-12"
    # Without a Source field the source package is the binary one (for matching), with no upstream.
    assert tool.metadata["source"] == "tool"
    assert tool.metadata["source_version"] == "1:2.0-3"
    assert tool.metadata["pre_depends"] == ["libc6 (>= 2.36)"]
    assert tool.licenses == ("BSD",)
    libc = by_name["libc6"]
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"


def test_fixture_agrees_with_syft(tmp_path: Path) -> None:
    ours, _ = catalog_trees(DpkgCataloger(), [FIXTURES / "dpkg-base"], DEBIAN_12)
    theirs = run_syft_dir(FIXTURES / "dpkg-base", "dpkg-db-cataloger")
    # The one difference: syft 1.18 still reports a package removed with `apt remove` (Status:
    # `deinstall ok config-files`: only its configuration files are left); later syft releases skip
    # it, as we do. It is not installed, so reporting it would raise false vulnerabilities.
    removed = ("removed-thing", "0.9-1", "pkg:deb/debian/removed-thing@0.9-1?arch=all&distro=debian-12")
    assert syft_identities(theirs) - {(p.name, p.version, p.purl) for p in ours} == {removed}
    assert {(p.name, p.version, p.purl) for p in ours} <= syft_identities(theirs)
    assert {p.name: sorted(p.licenses) for p in ours} == {
        a["name"]: sorted(license["value"] for license in a["licenses"]) for a in theirs
        if a["name"] != removed[0]}


def test_purls_of_this_machines_dpkg_database_equal_syfts(tmp_path: Path) -> None:
    """Hundreds of real stanzas (epochs, +b binNMUs, ~ backports, Source with versions, g++)."""
    status = Path("/var/lib/dpkg/status")
    if not status.exists():
        pytest.fail("this test needs a Debian machine (/var/lib/dpkg/status)")
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy(status, root / "var/lib/dpkg/status")
    (root / "etc/os-release").write_text((FIXTURES / "dpkg-base/etc/os-release").read_text())
    ours, warnings = catalog_trees(DpkgCataloger(), [root], DEBIAN_12)
    theirs = run_syft_dir(root, "dpkg-db-cataloger")
    assert warnings == []
    assert len(ours) > 50
    # The named difference (see test_fixture_agrees_with_syft): syft 1.18 also lists removed
    # packages whose configuration files remain; this machine may have some.
    removed = {stanza.get("package") for stanza in parse_stanzas(status.read_text(errors="replace"), [])
               if "deinstall" in stanza.get("status").split()
               or stanza.get("status").endswith(("config-files", "not-installed"))}
    assert {(p.name, p.version, p.purl) for p in ours} == {
        triple for triple in syft_identities(theirs) if triple[0] not in removed}


def test_layer_attribution_names_the_layer_that_installed_or_upgraded() -> None:
    packages, _ = catalog_trees(DpkgCataloger(), [FIXTURES / "dpkg-base", FIXTURES / "dpkg-app"], DEBIAN_12,
                                base=1)
    layer = {p.name: p.locations[0].layer_index for p in packages}
    origin = {p.name: p.origin for p in packages}
    # The database was rewritten by layer 1, yet libfoo1 and libc6 came with layer 0.
    assert layer == {"libfoo1": 0, "libc6": 0, "tool": 1, "newpkg": 1}
    assert origin == {"libfoo1": "base", "libc6": "base", "tool": "app", "newpkg": "app"}
    assert {p.name: p.version for p in packages}["tool"] == "1:2.0-4"
    assert packages[0].locations[0].layer_diff_id == f"sha256:{100:064x}"


def test_distroless_status_d(tmp_path: Path) -> None:
    packages, warnings = catalog_trees(DpkgCataloger(), [FIXTURES / "dpkg-distroless"], DEBIAN_12)
    assert warnings == []
    assert sorted((p.name, p.version, p.locations[0].path) for p in packages) == [
        ("base-files", "12.4+deb12u5", "/var/lib/dpkg/status.d/base-files"),
        ("libssl3", "3.0.11-1~deb12u2", "/var/lib/dpkg/status.d/libssl3"),
    ]
    theirs = run_syft_dir(FIXTURES / "dpkg-distroless", "dpkg-db-cataloger")
    assert {(p.name, p.version, p.purl) for p in packages} == syft_identities(theirs)


def test_a_corrupt_database_warns_and_keeps_the_readable_stanzas(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    good = (FIXTURES / "dpkg-base/var/lib/dpkg/status").read_bytes()
    garbage = b"\x00\xff\xfe binary junk without a colon\n continuation of nothing\n\n"
    (root / "var/lib/dpkg/status").write_bytes(garbage + good + b"\n\x89PNG\r\n\x1a\n")
    packages, warnings = catalog_trees(DpkgCataloger(), [root], DEBIAN_12)
    assert sorted(p.name for p in packages) == ["libc6", "libfoo1", "tool"]
    assert len(warnings) == 1
    assert "malformed" in warnings[0] and "/var/lib/dpkg/status" in warnings[0]


def test_a_truncated_database_warns_and_drops_only_the_cut_stanza(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_bytes((FIXTURES / "dpkg-base/var/lib/dpkg/status").read_bytes())
    content = (root / "var/lib/dpkg/status").read_bytes()
    cataloger = DpkgCataloger()
    cataloger.max_bytes = content.index(b"Package: tool") + 40  # the read limit cuts the second stanza
    packages, warnings = catalog_trees(cataloger, [root], DEBIAN_12)
    assert [p.name for p in packages] == ["libfoo1"]
    assert any(f"only the first {cataloger.max_bytes}" in warning for warning in warnings)


def test_no_purl_for_a_non_debian_distro_and_a_bare_one_without_distro() -> None:
    fedora = Distro(id="fedora", version_id="40")
    packages, _ = catalog_trees(DpkgCataloger(), [FIXTURES / "dpkg-distroless"], fedora)
    assert {p.purl for p in packages} == {""}
    packages, _ = catalog_trees(DpkgCataloger(), [FIXTURES / "dpkg-distroless"], None)
    assert {p.purl for p in packages} == {"pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64",
                                          "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl"}


def test_copyright_parsing_follows_syft() -> None:
    text = (FIXTURES / "dpkg-base/usr/share/doc/libfoo1/copyright").read_text()
    # A `License:` clause gives its first word (so "GPL-2+ or Artistic" gives GPL-2+, as in syft),
    # common-licenses paths give the file name.
    assert licenses_from_copyright(text) == ["GPL-2", "GPL-2+", "LGPL-2.1", "LGPL-2.1+"]
    assert licenses_from_copyright("License: none\n") == []
    assert licenses_from_copyright("License: GPL-2.\n") == ["GPL-2"]


def test_opkg_status_and_control_files() -> None:
    openwrt = Distro(id="openwrt", version_id="23.05.2", id_like=("lede", "openwrt"))
    root = FIXTURES / "opkg"
    packages, warnings = catalog_trees(DpkgCataloger(), [root], openwrt)
    theirs = run_syft_dir(root, "dpkg-db-cataloger")
    assert warnings == []
    # Not a Debian-like distro: no deb purl, as syft.
    assert {(p.name, p.version, p.purl) for p in packages} == syft_identities(theirs) == {
        ("busybox", "1.36.1-1", ""), ("libc", "1.2.4-4", ""), ("dropbear", "2022.82-5", "")}
    # One named difference: syft 1.18 ignores a stanza's own License field; we keep what it declares.
    assert {p.name: p.licenses for p in packages} == {"busybox": (), "libc": (), "dropbear": ("MIT",)}
    assert all(not a["licenses"] for a in theirs)
