"""rpm: real databases from Debian's rpm tools (SQLite) and format-built BDB/NDB files, against syft."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ci_gate.analyze.catalogers.rpm import RpmCataloger
from ci_gate.analyze.catalogers.rpm_db import detect_backend, read_database
from ci_gate.analyze.catalogers.rpm_header import (
    TAG_ARCH,
    TAG_EPOCH,
    TAG_LICENSE,
    TAG_NAME,
    TAG_RELEASE,
    TAG_SOURCERPM,
    TAG_VERSION,
    TYPE_INT32,
    TYPE_STRING,
    HeaderError,
    build_header,
    parse_header,
)
from ci_gate.model import Distro
from tests.analyze.catalogers.rpm_databases import RpmRoots, build_rpm_roots
from tests.support.catalogers import catalog_trees, syft_identities
from tests.support.syft import run_syft_dir

RHEL = Distro(id="rhel", version_id="9.4", id_like=("fedora",))
DATABASE_FILES = {"sqlite": "rpmdb.sqlite", "bdb": "Packages", "ndb": "Packages.db"}


@pytest.fixture(scope="module")
def rpm_roots(tmp_path_factory: pytest.TempPathFactory) -> RpmRoots:
    return build_rpm_roots(tmp_path_factory.mktemp("rpm"))


@pytest.mark.parametrize("backend", ["sqlite", "bdb", "ndb"])
def test_each_backend_agrees_with_syft(rpm_roots: RpmRoots, backend: str) -> None:
    root = getattr(rpm_roots, backend)
    database = root / "var/lib/rpm" / DATABASE_FILES[backend]
    assert detect_backend(database.read_bytes()) == backend
    ours, warnings = catalog_trees(RpmCataloger(), [root], RHEL)
    theirs = run_syft_dir(root, "rpm-db-cataloger")
    assert warnings == []
    assert len(ours) == 3
    assert {(p.name, p.version, p.purl) for p in ours} == syft_identities(theirs)
    assert {p.name: list(p.licenses) for p in ours} == {
        a["name"]: [license["value"] for license in a["licenses"]] for a in theirs}


def test_a_big_endian_berkeley_db(rpm_roots: RpmRoots, tmp_path: Path) -> None:
    """Written on a big-endian machine (s390x, ppc64): every page field is swapped, the header blobs
    are not (they are big-endian everywhere)."""
    from tests.analyze.catalogers.rpm_databases import write_berkeley_db

    root = _corrupt_root(tmp_path, "Packages", write_berkeley_db(rpm_roots.blobs, order=">"))
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text((rpm_roots.bdb / "etc/os-release").read_text())
    ours, warnings = catalog_trees(RpmCataloger(), [root], RHEL)
    assert warnings == []
    assert {(p.name, p.version, p.purl) for p in ours} == syft_identities(run_syft_dir(root, "rpm-db-cataloger"))
    assert len(ours) == 3


def test_metadata_of_a_package_with_an_epoch(rpm_roots: RpmRoots) -> None:
    ours, _ = catalog_trees(RpmCataloger(), [rpm_roots.sqlite], RHEL)
    hello = {p.name: p for p in ours}["hello-ci"]
    assert hello.version == "2:1.0-3.el9"
    assert hello.purl == ("pkg:rpm/redhat/hello-ci@1.0-3.el9?arch=noarch&distro=rhel-9.4&epoch=2"
                          "&upstream=hello-ci-1.0-3.el9.src.rpm")
    assert hello.metadata["epoch"] == 2
    assert hello.metadata["release"] == "3.el9"
    assert hello.metadata["architecture"] == "noarch"
    assert hello.metadata["source_rpm"] == "hello-ci-1.0-3.el9.src.rpm"
    assert hello.metadata["source"] == "hello-ci"
    assert hello.metadata["vendor"] == "ci-gate tests"
    assert hello.metadata["distro"] == "rhel-9.4"
    assert hello.found_by == "rpm-db-cataloger"
    assert max(len(blob) for blob in rpm_roots.blobs) > 2 * 4096  # the BDB test crosses page chains


def test_layer_attribution_across_database_versions(rpm_roots: RpmRoots, tmp_path: Path) -> None:
    """The base has one package; the app layer's rpm run rewrote the database adding two."""
    from tests.analyze.catalogers.rpm_databases import write_ndb

    hello = next(blob for blob in rpm_roots.blobs if parse_header(blob).name == "hello-ci")
    base = tmp_path / "base/usr/lib/sysimage/rpm"
    base.mkdir(parents=True)
    (base / "Packages.db").write_bytes(write_ndb((hello,)))
    app = tmp_path / "app/usr/lib/sysimage/rpm"
    app.mkdir(parents=True)
    (app / "Packages.db").write_bytes(write_ndb(rpm_roots.blobs))
    ours, _ = catalog_trees(RpmCataloger(), [tmp_path / "base", tmp_path / "app"], RHEL, base=1)
    assert {p.name: (p.locations[0].layer_index, p.origin) for p in ours} == {
        "hello-ci": (0, "base"), "libdemo": (1, "app"), "tool": (1, "app")}


def test_header_parsing_from_the_format() -> None:
    def text(value: str) -> bytes:
        return value.encode() + b"\x00"

    blob = build_header([
        (TAG_NAME, TYPE_STRING, text("openssl-libs"), 1),
        (TAG_VERSION, TYPE_STRING, text("3.0.7"), 1),
        (TAG_RELEASE, TYPE_STRING, text("27.el9"), 1),
        (TAG_EPOCH, TYPE_INT32, struct.pack(">i", 1), 1),
        (TAG_ARCH, TYPE_STRING, text("x86_64"), 1),
        (TAG_SOURCERPM, TYPE_STRING, text("openssl-3.0.7-27.el9.src.rpm"), 1),
        (TAG_LICENSE, TYPE_STRING, text("ASL 2.0"), 1),
    ])
    header = parse_header(blob)
    assert (header.name, header.version, header.release, header.epoch, header.arch) == (
        "openssl-libs", "3.0.7", "27.el9", 1, "x86_64")
    assert header.source_rpm == "openssl-3.0.7-27.el9.src.rpm"
    assert header.license == "ASL 2.0"
    for bad in (b"", b"\x00\x00\x00\x01", blob[:40], b"\xff\xff\xff\xff" + blob[4:]):
        with pytest.raises(HeaderError):
            parse_header(bad)


def _corrupt_root(tmp_path: Path, name: str, content: bytes) -> Path:
    folder = tmp_path / "var/lib/rpm"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)
    return tmp_path


def test_a_truncated_sqlite_database_warns(rpm_roots: RpmRoots, tmp_path: Path) -> None:
    content = (rpm_roots.sqlite / "var/lib/rpm/rpmdb.sqlite").read_bytes()
    ours, warnings = catalog_trees(RpmCataloger(), [_corrupt_root(tmp_path, "rpmdb.sqlite", content[:5000])],
                                   RHEL)
    assert ours == []
    assert len(warnings) == 1 and "rpmdb.sqlite" in warnings[0]


def test_a_broken_overflow_chain_loses_only_that_package(rpm_roots: RpmRoots, tmp_path: Path) -> None:
    content = bytearray((rpm_roots.bdb / "var/lib/rpm/Packages").read_bytes())
    # Point the first overflow page of the first package at itself: a loop.
    struct.pack_into("<I", content, 2 * 4096 + 16, 2)
    ours, warnings = catalog_trees(RpmCataloger(), [_corrupt_root(tmp_path, "Packages", bytes(content))], RHEL)
    assert len(ours) == 2
    assert len(warnings) == 1 and "broken" in warnings[0]


def test_a_bad_ndb_blob_loses_only_that_package(rpm_roots: RpmRoots, tmp_path: Path) -> None:
    content = bytearray((rpm_roots.ndb / "var/lib/rpm/Packages.db").read_bytes())
    content[4096:4100] = b"XXXX"  # the first blob's magic
    ours, warnings = catalog_trees(RpmCataloger(), [_corrupt_root(tmp_path, "Packages.db", bytes(content))],
                                   RHEL)
    assert len(ours) == 2
    assert len(warnings) == 1 and "bad header" in warnings[0]


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"random bytes, not a database" * 50,
                                     b"\x00" * 12 + struct.pack("<I", 0x061561) + b"\x00" * 20])
def test_garbage_never_raises(tmp_path: Path, content: bytes) -> None:
    ours, warnings = catalog_trees(RpmCataloger(), [_corrupt_root(tmp_path, "Packages", content)], RHEL)
    assert ours == []
    assert len(warnings) == 1
    assert read_database(content).blobs == []


def test_mariner_container_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "var/lib/rpmmanifest"
    folder.mkdir(parents=True)
    (folder / "container-manifest-2").write_text(
        "filesystem\t1.1-14.cm2\t1687000000\t1686000000\tMicrosoft Corporation\t(none)\t7596\tx86_64\t0\t"
        "filesystem-1.1-14.cm2.src.rpm\n"
        "openssl-libs\t1.1.1k-24.cm2\t1687000000\t1686000000\tMicrosoft Corporation\t(none)\t4000\tx86_64\t0\t"
        "openssl-1.1.1k-24.cm2.src.rpm\n"
        "broken line\n")
    mariner = Distro(id="mariner", version_id="2.0")
    ours, warnings = catalog_trees(RpmCataloger(), [tmp_path], mariner)
    assert sorted((p.name, p.version) for p in ours) == [("filesystem", "1.1-14.cm2"),
                                                          ("openssl-libs", "1.1.1k-24.cm2")]
    assert {p.name: p.purl for p in ours}["openssl-libs"] == (
        "pkg:rpm/mariner/openssl-libs@1.1.1k-24.cm2?arch=x86_64&distro=mariner-2.0"
        "&upstream=openssl-1.1.1k-24.cm2.src.rpm")
    assert len(warnings) == 1


def test_a_hostile_sqlite_database_is_refused_quickly(tmp_path: Path) -> None:
    """A `Packages` view over an endless recursive query would hang a naive reader."""
    import sqlite3

    database = tmp_path / "rpmdb.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE VIEW Packages AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                           "SELECT i AS hnum, zeroblob(10) AS blob FROM n")
    read = read_database(database.read_bytes())
    assert read.blobs == [] and "no Packages table" in read.problems[0]
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
        connection.execute("CREATE TABLE n (i INTEGER)")
        connection.execute("CREATE TRIGGER t AFTER INSERT ON n BEGIN SELECT 1; END")
    assert read_database(other.read_bytes()).problems == []


def test_many_items_naming_one_overflow_chain_are_read_once(rpm_roots: RpmRoots) -> None:
    content = bytearray((rpm_roots.bdb / "var/lib/rpm/Packages").read_bytes())
    # Point every H_OFFPAGE item of the hash page at the first package's chain.
    first_chain = None
    entries = struct.unpack_from("<H", content, 4096 + 20)[0]
    for item in range(1, entries, 2):
        offset = struct.unpack_from("<H", content, 4096 + 26 + 2 * item)[0]
        if content[4096 + offset] == 3:
            first_chain = first_chain or struct.unpack_from("<I", content, 4096 + offset + 4)[0]
            struct.pack_into("<I", content, 4096 + offset + 4, first_chain)
    read = read_database(bytes(content))
    assert len(read.blobs) == 1
