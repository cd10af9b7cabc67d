"""Debian, Ubuntu and Alpine records name source packages: a dpkg/apk package matches through its
source name only (as osv-scanner and trivy match), never through its binary name."""

from __future__ import annotations

import json
from pathlib import Path

from ci_gate.model import Distro
from ci_gate.vulns.importers.osv import import_paths
from ci_gate.vulns.lookup import distro_key
from ci_gate.vulns.matching import match_packages
from ci_gate.vulns.store import VulnerabilityStore

from .conftest import image, package

DEBIAN_12 = Distro(id="debian", version_id="12", version_codename="bookworm")
UBUNTU = Distro(id="ubuntu", version_id="22.04")
ALPINE = Distro(id="alpine", version_id="3.19.1")


def _record(identifier: str, ecosystem: str, name: str, fixed: str) -> dict[str, object]:
    return {
        "id": identifier, "modified": "2024-01-01T00:00:00Z", "published": "2024-01-01T00:00:00Z",
        "aliases": [f"CVE-2099-{abs(hash(identifier)) % 10000:04d}"],
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
    }


def _store(tmp_path: Path, records: list[dict[str, object]]) -> Path:
    folder = tmp_path / "osv"
    folder.mkdir()
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    store = tmp_path / "vulns.sqlite"
    import_paths([folder], store)
    return store


def _matched(store: Path, packages: list, distro: Distro) -> list[tuple[str, str, str]]:
    with VulnerabilityStore(store) as opened:
        result = match_packages(image(packages, distro), opened)
    return sorted((m.package.name, m.vulnerability_id, m.matched_by) for m in result.matches)


def test_a_record_naming_the_binary_does_not_match_the_binary_of_another_source(tmp_path: Path) -> None:
    store = _store(tmp_path, [
        _record("DEBIAN-BINARY-NAME", "Debian:12", "zlib1g", "1:9.9-1"),
        _record("DEBIAN-SOURCE-NAME", "Debian:12", "zlib", "1:1.2.13.dfsg-2"),
    ])
    zlib1g = package("zlib1g", "1:1.2.13.dfsg-1", "deb", source="zlib")
    assert _matched(store, [zlib1g], DEBIAN_12) == [("zlib1g", "DEBIAN-SOURCE-NAME", "exact-indirect-match")]


def test_a_package_that_is_its_own_source_matches_by_its_name(tmp_path: Path) -> None:
    # dpkg leaves `Source:` out when the source is the package itself.
    store = _store(tmp_path, [_record("DEBIAN-BASH", "Debian:12", "bash", "5.2.15-2+b3")])
    assert _matched(store, [package("bash", "5.2.15-2+b2", "deb")], DEBIAN_12) == [
        ("bash", "DEBIAN-BASH", "exact-direct-match")]
    assert _matched(store, [package("bash", "5.2.15-2+b2", "deb", source="bash")], DEBIAN_12) == [
        ("bash", "DEBIAN-BASH", "exact-direct-match")]


def test_ubuntu_and_alpine_match_through_source_and_origin_only(tmp_path: Path) -> None:
    store = _store(tmp_path, [
        _record("UBUNTU-BINARY", "Ubuntu:22.04:LTS", "libcurl4", "9.0"),
        _record("UBUNTU-SOURCE", "Ubuntu:22.04:LTS", "curl", "7.81.0-1ubuntu1.14"),
        _record("ALPINE-BINARY", "Alpine:v3.19", "libcrypto3", "9.0-r0"),
        _record("ALPINE-ORIGIN", "Alpine:v3.19", "openssl", "3.1.4-r5"),
    ])
    assert _matched(store, [package("libcurl4", "7.81.0-1ubuntu1.13", "deb", source="curl")], UBUNTU) == [
        ("libcurl4", "UBUNTU-SOURCE", "exact-indirect-match")]
    assert _matched(store, [package("libcrypto3", "3.1.4-r4", "apk", origin="openssl")], ALPINE) == [
        ("libcrypto3", "ALPINE-ORIGIN", "exact-indirect-match")]


def test_lookup_keys_name_the_source_with_its_version() -> None:
    binnmu = package("libc6", "2.36-9+deb12u3+b1", "deb", source="glibc", source_version="2.36-9+deb12u3")
    key = distro_key(binnmu, DEBIAN_12, ["Debian:12"])
    assert not isinstance(key, str)
    assert key.names == (("glibc", "exact-indirect-match"),) and key.version == "2.36-9+deb12u3"
    rpm = package("openssl-libs", "3.0.7-24.el9", "rpm", source_rpm="openssl-3.0.7-24.el9.src.rpm")
    rpm_key = distro_key(rpm, Distro(id="rocky", version_id="9.3"), ["Rocky Linux:9"])
    assert not isinstance(rpm_key, str)
    # RPM records name binary packages: both names are looked up there.
    assert [name for name, _ in rpm_key.names] == ["openssl-libs", "openssl"]
