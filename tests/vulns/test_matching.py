"""Matching: distro packages by release and source package, language packages by normalised name,
OSV range semantics, withdrawn records, fix availability, skipped packages and VEX suppression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_gate.errors import VulnerabilityDataError
from ci_gate.model import Distro
from ci_gate.vulns.lookup import distro_key
from ci_gate.vulns.matching import MatchResult, match_packages
from ci_gate.vulns.ranges import is_affected
from ci_gate.vulns.records import AffectedPackage, Range
from ci_gate.vulns.store import VulnerabilityStore
from ci_gate.vulns.vex import load_vex

from .conftest import image, package

DEBIAN_12 = Distro(id="debian", version_id="12", version_codename="bookworm")


def run(store_path: Path, packages: list, distro: Distro | None = None, vex: object = None) -> MatchResult:
    with VulnerabilityStore(store_path) as store:
        return match_packages(image(packages, distro), store, vex)


def ids(result: MatchResult) -> list[tuple[str, str]]:
    return sorted((m.package.name, m.vulnerability_id) for m in result.matches)


def test_debian_binary_matches_through_its_source_package(store_path: Path) -> None:
    result = run(store_path, [
        package("libssl3", "3.0.9-1", "deb", source="openssl", source_version="3.0.9-1"),
        package("openssl", "3.0.11-1~deb12u2", "deb", source="openssl"),  # fixed version: clean
        package("libc6", "2.36-9+deb12u3+b1", "deb", source="glibc", source_version="2.36-9+deb12u3"),
    ], DEBIAN_12)
    assert ids(result) == [("libc6", "DLA-0000-1"), ("libssl3", "DSA-5532-1")]
    libssl = next(m for m in result.matches if m.package.name == "libssl3")
    assert libssl.matched_by == "exact-indirect-match" and libssl.matched_name == "openssl"
    assert libssl.ecosystem == "Debian:12" and libssl.fixed_versions == ("3.0.11-1~deb12u2",)
    assert libssl.fix_available and libssl.aliases == ("CVE-2023-5363",)
    libc = next(m for m in result.matches if m.package.name == "libc6")
    assert libc.severity == "high"  # the Debian urgency of the affected entry


def test_debian_release_matters(store_path: Path) -> None:
    bullseye = Distro(id="debian", version_id="11")
    assert ids(run(store_path, [package("libssl1.1", "1.1.1n-0+deb11u5", "deb", source="openssl")], bullseye)) == [
        ("libssl1.1", "DSA-5532-1")]
    trixie = Distro(id="debian", version_id="13")
    assert run(store_path, [package("libssl3", "3.0.9-1", "deb", source="openssl")], trixie).matches == ()


def test_alpine_origin_matching(store_path: Path) -> None:
    alpine = Distro(id="alpine", version_id="3.18.4")
    result = run(store_path, [
        package("libcrypto3", "3.1.3-r0", "apk", origin="openssl"),
        package("libssl3", "3.1.4-r1", "apk", origin="openssl"),
    ], alpine)
    assert ids(result) == [("libcrypto3", "ALPINE-CVE-2023-5678")]
    match = result.matches[0]
    assert match.cvss_v3_base_score == 5.3 and match.severity == "medium"
    assert ids(run(store_path, [package("libcrypto3", "3.1.3-r0", "apk", origin="openssl")],
                   Distro(id="alpine", version_id="3.17.0"))) == []


def test_ubuntu_and_rpm_families(store_path: Path) -> None:
    ubuntu = run(store_path, [package("libcurl4", "7.81.0-1ubuntu1.13", "deb", source="curl")],
                 Distro(id="ubuntu", version_id="22.04"))
    assert ids(ubuntu) == [("libcurl4", "UBUNTU-CVE-2023-38545")]
    assert ubuntu.matches[0].severity == "high"  # Ubuntu priority
    rhel = run(store_path, [package("openssl-libs", "1:3.0.7-24.el9", "rpm", epoch=1,
                                    source_rpm="openssl-3.0.7-24.el9.src.rpm", source="openssl")],
               Distro(id="rhel", version_id="9.3"))
    assert ids(rhel) == [("openssl-libs", "RHSA-2023:7877")]
    assert rhel.matches[0].severity == "low" and rhel.matches[0].fixed_versions == ("1:3.0.7-25.el9_3",)
    # The Red Hat advisory has no CVSS; the Alpine record for the same CVE lends its score (the label stays Low).
    assert (rhel.matches[0].cvss_v3_base_score, rhel.matches[0].scores_from) == (5.3, "ALPINE-CVE-2023-5678")
    rocky = run(store_path, [package("openssl-libs", "3.0.7-24.el9", "rpm", epoch=1,
                                     source_rpm="openssl-3.0.7-24.el9.src.rpm", source="openssl")],
                Distro(id="rocky", version_id="9.3"))
    assert ids(rocky) == [("openssl-libs", "RLSA-2023:7877")]
    assert rocky.matches[0].matched_by == "exact-indirect-match"
    # epoch 0 is older than the fixed epoch 1: still affected; epoch 2 is newer: clean
    assert ids(run(store_path, [package("openssl", "2:3.0.0-1.el9", "rpm")], Distro(id="rocky", version_id="9"))) == []


def test_language_ecosystems(store_path: Path) -> None:
    result = run(store_path, [
        package("requests", "2.28.1", "python", purl="pkg:pypi/requests@2.28.1"),
        package("zope.interface", "5.4.0", "python", purl="pkg:pypi/zope.interface@5.4.0"),
        package("Zope_Interface", "5.5.0", "python"),
        package("PyYAML", "5.3.1", "python", purl="pkg:pypi/pyyaml@5.3.1"),
        package("PyYAML", "5.4", "python", purl="pkg:pypi/pyyaml@5.4"),
        package("lodash", "4.17.15", "npm", purl="pkg:npm/lodash@4.17.15"),
        package("lodash", "3.6.0", "npm", purl="pkg:npm/lodash@3.6.0"),
        package("traverse", "7.22.0", "npm", purl="pkg:npm/%40babel/traverse@7.22.0"),
        package("traverse", "8.0.0-alpha.3", "npm", purl="pkg:npm/%40babel/traverse@8.0.0-alpha.3"),
        package("log4j-core", "2.14.1", "java-archive",
                purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", path="/app/lib/log4j-core-2.14.1.jar"),
        package("log4j-core", "2.12.2", "java-archive", purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.12.2"),
        package("log4j-core", "2.0-beta9", "java-archive",
                purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta9"),
        package("golang.org/x/sys", "v0.0.0-20210615035016-665e8c7367d1", "go-module",
                purl="pkg:golang/golang.org/x/sys@v0.0.0-20210615035016-665e8c7367d1"),
        package("golang.org/x/sys", "v0.5.0", "go-module", purl="pkg:golang/golang.org/x/sys@v0.5.0"),
        package("nokogiri", "1.13.3", "gem", purl="pkg:gem/nokogiri@1.13.3"),
        package("nokogiri", "1.13.4", "gem", purl="pkg:gem/nokogiri@1.13.4"),
    ])
    found = {(m.package.name, m.package.version, m.vulnerability_id) for m in result.matches}
    assert found == {
        ("requests", "2.28.1", "GHSA-j8r2-6x86-q33q"),  # PyPI record names "Requests"; withdrawn one ignored
        ("zope.interface", "5.4.0", "PYSEC-0000-LAST"),  # last_affected is inclusive
        ("PyYAML", "5.3.1", "PYSEC-0000-LISTED"),  # explicit versions[]
        ("lodash", "4.17.15", "GHSA-p6mc-m468-83gw"),
        ("traverse", "7.22.0", "GHSA-67hx-6x53-jw92"),
        ("traverse", "8.0.0-alpha.3", "GHSA-67hx-6x53-jw92"),
        ("log4j-core", "2.14.1", "GHSA-jfh8-c2jp-5v3q"),
        ("log4j-core", "2.0-beta9", "GHSA-jfh8-c2jp-5v3q"),
        ("golang.org/x/sys", "v0.0.0-20210615035016-665e8c7367d1", "GO-2022-0493"),
        ("nokogiri", "1.13.3", "GHSA-crjr-9rc5-ghw8"),
    }
    by_version = {(m.package.name, m.package.version): m for m in result.matches}
    assert by_version["zope.interface", "5.4.0"].fix_available is False
    assert by_version["log4j-core", "2.14.1"].fixed_versions == ("2.15.0",)
    assert by_version["log4j-core", "2.0-beta9"].fixed_versions == ("2.3.1",)
    assert by_version["traverse", "8.0.0-alpha.3"].fixed_versions == ("8.0.0-alpha.4",)
    assert by_version["log4j-core", "2.14.1"].severity == "critical"
    assert by_version["requests", "2.28.1"].severity == "medium"  # GHSA MODERATE
    assert by_version["requests", "2.28.1"].cvss_v3_base_score == 4.2
    assert by_version["traverse", "7.22.0"].cvss_v4_base_score == 8.7


def test_go_stdlib_and_alpine_release_parsing(tmp_path: Path) -> None:
    from ci_gate.vulns.importers.osv import import_paths

    (tmp_path / "GO-2023-2185.json").write_text(json.dumps({
        "id": "GO-2023-2185", "modified": "2023-11-08T00:00:00Z", "aliases": ["CVE-2023-45284"],
        "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"}, "ranges": [{"type": "SEMVER", "events": [
            {"introduced": "0"}, {"fixed": "1.20.11"}, {"introduced": "1.21.0-0"}, {"fixed": "1.21.4"}]}]}]}))
    store = tmp_path / "store.sqlite"
    import_paths([tmp_path / "GO-2023-2185.json"], store)
    result = run(store, [package("stdlib", "go1.21.3", "go-module", purl="pkg:golang/stdlib@go1.21.3"),
                         package("stdlib", "go1.21.4", "go-module", purl="pkg:golang/stdlib@go1.21.4")])
    assert [(m.package.version, m.fixed_versions) for m in result.matches] == [("go1.21.3", ("1.21.4",))]
    musl = package("musl", "1.2.5-r0", "apk", origin="musl")
    key = distro_key(musl, Distro(id="alpine", version_id="3.21_alpha20240807"), [])
    assert not isinstance(key, str) and key.ecosystems == ("Alpine:v3.21",)
    reason = distro_key(musl, Distro(id="alpine", version_id="edge"), [])
    assert isinstance(reason, str) and "no release branch" in reason


def test_unmappable_packages_are_skipped_with_a_reason(store_path: Path) -> None:
    result = run(store_path, [
        package("libssl3", "3.0.9-1", "deb", source="openssl"),  # no distro known
        package("mystery", "1.0", "binary"),
        package("thing", "1.0", "java-archive"),  # no group id
        package("requests", "not a version!", "python"),
    ])
    reasons = {s.package.name: s.reason for s in result.skipped}
    assert "distribution is unknown" in reasons["libssl3"]
    assert "no vulnerability ecosystem" in reasons["mystery"]
    assert "group id" in reasons["thing"]
    assert "cannot be compared" in reasons["requests"]
    assert result.matches == ()


def test_osv_event_semantics() -> None:
    entry = AffectedPackage("PyPI", "x", "x", ranges=(
        Range("ECOSYSTEM", (("introduced", "1.0"), ("fixed", "1.5"), ("introduced", "2.0"), ("last_affected", "2.2"))),
    ))
    versions = ("0.9", "1.0", "1.4.9", "1.5", "1.9", "2.0", "2.2", "2.3")
    verdicts = {v: is_affected(v, entry, "pep440")[0] for v in versions}
    assert verdicts == {"0.9": False, "1.0": True, "1.4.9": True, "1.5": False, "1.9": False, "2.0": True,
                        "2.2": True, "2.3": False}
    limited = AffectedPackage("npm", "x", "x", ranges=(
        Range("SEMVER", (("introduced", "0"), ("limit", "2.0.0"))),))
    assert is_affected("1.9.9", limited, "semver")[0] and not is_affected("2.0.0", limited, "semver")[0]
    git_only = AffectedPackage("Go", "x", "x", ranges=(Range("GIT", (("introduced", "abc"), ("fixed", "def"))),))
    assert is_affected("1.0.0", git_only, "go") == (False, ())


def _openvex(tmp_path: Path, statements: list) -> Path:
    path = tmp_path / "image.openvex.json"
    path.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1",
                                "author": "test", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
                                "statements": statements}))
    return path


def test_openvex_suppresses_not_affected_and_fixed(tmp_path: Path, store_path: Path) -> None:
    vex = load_vex([_openvex(tmp_path, [
        {"vulnerability": {"name": "CVE-2021-44228"},
         "products": [{"@id": "pkg:oci/app?repository_url=registry.example/app",
                       "subcomponents": [{"@id": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]}],
         "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
         "impact_statement": "JNDI lookups are disabled"},
        {"vulnerability": {"name": "GHSA-p6mc-m468-83gw"}, "products": [{"@id": "pkg:npm/lodash"}],
         "status": "affected", "action_statement": "upgrade"},
        {"vulnerability": {"name": "CVE-2022-24836"}, "products": [{"@id": "pkg:oci/app"}], "status": "fixed"},
    ])])
    result = run(store_path, [
        package("log4j-core", "2.14.1", "java-archive", purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
        package("log4j-core", "2.0-beta9", "java-archive",
                purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta9"),
        package("lodash", "4.17.15", "npm", purl="pkg:npm/lodash@4.17.15"),
        package("nokogiri", "1.13.3", "gem", purl="pkg:gem/nokogiri@1.13.3"),
    ], vex=vex)
    assert ids(result) == [("lodash", "GHSA-p6mc-m468-83gw"), ("log4j-core", "GHSA-jfh8-c2jp-5v3q")]
    assert next(m for m in result.matches if m.package.name == "log4j-core").package.version == "2.0-beta9"
    suppressed = {(m.package.name, m.suppressed_by.status, m.suppressed_by.justification)  # type: ignore[union-attr]
                  for m in result.suppressed}
    assert suppressed == {("log4j-core", "not_affected", "vulnerable_code_not_in_execute_path"),
                          ("nokogiri", "fixed", "")}


def test_cyclonedx_vex(tmp_path: Path, store_path: Path) -> None:
    path = tmp_path / "vex.cdx.json"
    path.write_text(json.dumps({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "components": [{"bom-ref": "requests-ref", "type": "library", "name": "requests",
                        "purl": "pkg:pypi/requests@2.28.1"}],
        "vulnerabilities": [
            {"id": "CVE-2023-32681", "analysis": {"state": "false_positive", "justification": "code_not_reachable",
                                                  "detail": "no proxies"}, "affects": [{"ref": "requests-ref"}]},
            {"id": "CVE-2020-8203", "analysis": {"state": "exploitable"},
             "affects": [{"ref": "pkg:npm/lodash@4.17.15"}]},
        ]}))
    result = run(store_path, [
        package("requests", "2.28.1", "python", purl="pkg:pypi/requests@2.28.1"),
        package("lodash", "4.17.15", "npm", purl="pkg:npm/lodash@4.17.15"),
    ], vex=load_vex([path]))
    assert ids(result) == [("lodash", "GHSA-p6mc-m468-83gw")]
    assert [(m.vulnerability_id, m.suppressed_by.justification) for m in result.suppressed] == [  # type: ignore[union-attr]
        ("GHSA-j8r2-6x86-q33q", "code_not_reachable")]


def test_cyclonedx_vex_as_published_links_the_sboms_components_with_bom_links(
        tmp_path: Path, store_path: Path) -> None:
    """CycloneDX's VEX example (bom-examples VEX/vex.json) names the product by a BOM-Link to the SBOM,
    `urn:cdx:SERIAL/VERSION#BOM-REF`: the bom-ref URL-encoded (as cyclonedx-go writes it) or raw (as the
    example), a purl or a bom-ref of this document; metadata, references, ratings, cwes, advisories,
    credits and a response list come along."""
    sbom = "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1"

    def statement(cve: str, state: str, ref: str, alias: str = "") -> dict[str, object]:
        return {
            "bom-ref": f"vex-{cve}", "id": cve, "source": {"name": "NVD", "url": f"https://nvd.nist.gov/vuln/detail/{cve}"},
            "references": [{"id": alias, "source": {"name": "GitHub", "url": f"https://github.com/advisories/{alias}"}}]
            if alias else [],
            "ratings": [{"source": {"name": "Acme Inc"}, "score": 0.0, "severity": "none", "method": "CVSSv31",
                         "vector": "AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N/MC:N/MI:N/MA:N"}],
            "cwes": [611], "description": "a flaw", "detail": "more", "recommendation": "upgrade",
            "advisories": [{"title": "GitHub Issue", "url": "https://example.test/issues/1"}],
            "created": "2020-12-03T00:00:00.000Z", "published": "2020-12-03T00:00:00.000Z",
            "updated": "2021-10-26T00:00:00.000Z", "credits": {"individuals": [{"name": "A. Finder"}]},
            "analysis": {"state": state, "justification": "code_not_reachable", "response": ["will_not_fix", "update"],
                         "detail": "not reachable"},
            "affects": [{"ref": ref}]}

    path = tmp_path / "vex.cdx.json"
    path.write_text(json.dumps({
        "bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1,
        "serialNumber": "urn:uuid:9b2f0e1c-54a1-4f0e-8a57-3f6f4c1e8d21",
        "metadata": {"timestamp": "2022-01-13T00:00:00Z",
                     "component": {"name": "Acme Product", "version": "2.4.0", "type": "application",
                                   "bom-ref": "acme-product"}},
        "components": [{"bom-ref": "gem nokogiri", "type": "library", "name": "nokogiri",
                        "purl": "pkg:gem/nokogiri@1.13.3"}],
        "vulnerabilities": [
            statement("CVE-2023-32681", "not_affected", f"{sbom}#pkg%3Apypi%2Frequests%402.28.1%3Ftype%3Dwheel"),
            statement("CVE-2020-8203", "false_positive", f"{sbom}#pkg:npm/lodash@4.17.15?type=npm",
                      alias="GHSA-p6mc-m468-83gw"),
            statement("CVE-2022-24836", "resolved", f"{sbom}#gem%20nokogiri"),
            # another version than the image holds: the statement does not cover it
            statement("CVE-2021-44228", "not_affected",
                      f"{sbom}#pkg%3Amaven%2Forg.apache.logging.log4j%2Flog4j-core%402.15.0"),
        ]}))
    result = run(store_path, [
        package("requests", "2.28.1", "python", purl="pkg:pypi/requests@2.28.1"),
        package("lodash", "4.17.15", "npm", purl="pkg:npm/lodash@4.17.15"),
        package("nokogiri", "1.13.3", "gem", purl="pkg:gem/nokogiri@1.13.3"),
        package("log4j-core", "2.14.1", "java-archive", purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
    ], vex=load_vex([path]))
    assert {name for name, _ in ids(result)} == {"log4j-core"}
    suppressed = {(m.package.name, m.suppressed_by.status) for m in result.suppressed}  # type: ignore[union-attr]
    assert suppressed == {("requests", "not_affected"), ("lodash", "not_affected"), ("nokogiri", "fixed")}


def test_bad_vex_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{")
    (tmp_path / "b.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(VulnerabilityDataError, match="not valid JSON"):
        load_vex([tmp_path / "a.json"])
    with pytest.raises(VulnerabilityDataError, match="neither an OpenVEX"):
        load_vex([tmp_path / "b.json"])
