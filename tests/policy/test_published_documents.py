"""Documents shaped like Anchore's published bundles, validated and evaluated on the real Debian image.

tests/policy/data/published/ holds ci-gate's own documents (none is a copy) that together use every
construct of the bundles Anchore published: the policy hub's CIS and security-only bundles, the Iron
Bank and NIST 800-190 modular policies, anchore-engine's own test bundles and an Enterprise v2
export with sbom rule sets and KEV. Their allowlist items carry trigger ids computed the engine's
way (md5 of gate + trigger + the engine's message, written out in each item's `comment`), so an
allowlisted finding proves ci-gate's message is the engine's, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.oci import OciImage

PUBLISHED = Path(__file__).parent / "data" / "published"
DOCUMENTS = sorted(p.name for p in PUBLISHED.glob("*.json"))
SUID_PATHS = {"/usr/bin/chage", "/usr/bin/chfn", "/usr/bin/chsh", "/usr/bin/expiry", "/usr/bin/gpasswd",
              "/usr/bin/mount", "/usr/bin/newgrp", "/usr/bin/passwd", "/usr/bin/su", "/usr/bin/umount",
              "/usr/sbin/unix_chkpwd", "/var/local", "/var/mail"}
"""The setuid/setgid files of Debian bookworm minbase, as the documents' allowlists list them."""
ENGINE_SUID_IDS = {
    "/usr/bin/chage": "75d08d8c7b064bbd44f2f524c924d17b",
    "/usr/bin/chfn": "6329fe232b699ab5b4c9002b9f1b1f9e",
    "/usr/bin/chsh": "e56b64c2a7d254d4174ecaed69899327",
    "/usr/bin/expiry": "eec438eed6560f1ea7792b726009538e",
    "/usr/bin/gpasswd": "c2e44319ae5b3b040044d8ae116d1c2f",
    "/usr/bin/mount": "698044205a9c4a6d48b7937e66a6bf4f",
    "/usr/bin/newgrp": "463a9a24225c26f7a5bf3f38908e5cb3",
    "/usr/bin/passwd": "bcd159901fe47efddae5c095b4b0d7fd",
    "/usr/bin/su": "320a97c6816565eedf3545833df99dd0",
    "/usr/bin/umount": "e7573262736ef52353cde3bae2617782",
    "/var/local": "4f9abc83a7a1c95e222b659e0fab27fa",
    "/var/mail": "da870e801836e419385f2f300713cf7f",
}
"""Trigger ids that a real anchore-engine produced, as Anchore's policy hub CIS bundle 1.13.0 lists them
in its `DEB SUID Files` and `RHEL SUID Files` whitelists (anchore/hub sources/bundles): the same files
on the Debian image must get exactly these ids here."""


def engine_id(gate: str, trigger: str, message: str) -> str:
    """anchore-engine's default trigger id (gate.py TriggerMatch): md5 of gate, trigger and message."""
    return hashlib.md5((gate + trigger + message).encode(), usedforsecurity=False).hexdigest()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATE_")}
    environment.update({"CI": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=300, check=False)


def _osv(identifier: str, ecosystem: str, name: str, fixed: str, aliases: list[str],
         severity: str = "") -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name},
                                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}
    if severity:
        affected["ecosystem_specific"] = {"urgency": severity}
    record = {"id": identifier, "modified": "2026-05-01T00:00:00Z", "published": "2026-01-01T00:00:00Z",
              "aliases": aliases, "summary": f"test advisory for {name}", "affected": [affected]}
    if not severity:  # a GHSA-style record: severity from its CVSS vector (7.2, high)
        record["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}]
    return record


@pytest.fixture(scope="module")
def vuln_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store made with `ci-gate db import` from OSV records for the Debian image and a KEV catalog."""
    root = tmp_path_factory.mktemp("published-vulns")
    osv = root / "osv"
    osv.mkdir()
    records = [
        # Debian records name source packages: zlib1g is built from zlib, passwd from shadow.
        _osv("DSA-9001-1", "Debian:12", "zlib", "1:1.2.13.dfsg-1+deb12u1", ["CVE-2099-0101"], "high"),
        _osv("DSA-9002-1", "Debian:12", "zlib1g", "1:9.9-1", ["CVE-2099-0102"], "high"),
        _osv("DSA-9003-1", "Debian:12", "passwd", "1:9.9-1", ["CVE-2099-0103"], "high"),
        _osv("GHSA-35jh-r3h4-6jhm", "npm", "lodash", "4.17.21", ["CVE-2021-23337"]),
    ]
    for record in records:
        (osv / f"{record['id']}.json").write_text(json.dumps(record))
    kev = root / "known_exploited_vulnerabilities.json"
    kev.write_text(json.dumps({
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.05.01",
        "dateReleased": "2026-05-01T17:00:00.000Z", "count": 1,
        "vulnerabilities": [{"cveID": "CVE-2021-23337", "vendorProject": "lodash", "product": "lodash",
                             "vulnerabilityName": "command injection", "dateAdded": "2026-04-01",
                             "shortDescription": "test entry", "requiredAction": "update", "dueDate": "2026-04-22",
                             "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": ["CWE-77"]}],
    }))
    store = root / "vulns.sqlite"
    result = run_cli("db", "import", str(osv), str(kev), "--vuln-db", str(store), cwd=root)
    assert result.returncode == 0, result.stderr
    return store


@pytest.fixture(scope="module")
def analysis_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("published-analysis-cache")


def gate(image: str, document: str, tmp_path: Path, cache: Path, *extra: str,
         env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    report = tmp_path / f"{document}.evaluation.json"
    result = run_cli("gate", image, "--policy", str(PUBLISHED / document), "--json", str(report), *extra,
                     cwd=tmp_path, env={"CI_GATE_CACHE_DIR": str(cache), **(env or {})})
    assert result.returncode in (0, 1), result.stdout + result.stderr
    evaluation: dict[str, Any] = json.loads(report.read_text())["evaluations"][0]
    return result.returncode, evaluation


def findings(evaluation: dict[str, Any], gate_name: str, trigger: str = "") -> list[dict[str, Any]]:
    return [f for f in evaluation["details"]["findings"]
            if f["gate"] == gate_name and (not trigger or f["trigger"] == trigger)]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_document_validates(document: str, tmp_path: Path) -> None:
    result = run_cli("policy", "validate", str(PUBLISHED / document), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": error:" not in result.stdout + result.stderr


def test_what_the_engine_lets_pass_is_a_warning(tmp_path: Path) -> None:
    engine = run_cli("policy", "validate", str(PUBLISHED / "engine_test_style_bundle.json"), cwd=tmp_path)
    text = engine.stdout + engine.stderr
    assert "warning: unknown field 'created_at' in the bundle" in text
    assert "warning: rule 'e-bad-regex': parameter 'regex' is not a valid regular expression" in text
    assert "warning: rule 'e-malware': malware/scans never fires here" in text
    export = run_cli("policy", "validate", str(PUBLISHED / "enterprise_v2_export.json"), cwd=tmp_path)
    assert "warning: unknown field 'policy_source' in the policy" in export.stdout + export.stderr


@pytest.mark.slow
def test_cis_style_bundle_on_the_debian_app_image(debian_app_oci: OciImage, vuln_db: Path, analysis_cache: Path,
                                                  tmp_path: Path) -> None:
    code, evaluation = gate(f"oci-dir:{debian_app_oci.path}", "cis_style_bundle.json", tmp_path, analysis_cache,
                            "--vuln-db", str(vuln_db))
    suid = findings(evaluation, "files", "suid_or_guid_set")
    # Every setuid file is excepted by an item whose id was computed the engine's way.
    assert {f["path"] for f in suid} == SUID_PATHS
    assert all(f["allowlisted"] and f["allowlist_match"]["id"] == "deb-suid" for f in suid)
    assert all(f["trigger_id"] == engine_id("files", "suid_or_guid_set", f["message"]) for f in suid)
    by_path = {f["path"]: f["trigger_id"] for f in suid}
    assert {path: by_path[path] for path in ENGINE_SUID_IDS} == ENGINE_SUID_IDS
    [notfound] = [f for f in findings(evaluation, "secret_scans") if f["rule_id"] == "cis-expect-secret"]
    assert notfound["message"] == ("Secret content search analyzer did not find regexp match in container: "
                                   "filename_regex=* content_regex_name=AWS_SECRET_KEY")
    assert notfound["trigger_id"] == engine_id("secret_scans", "content_regex_checks", notfound["message"])
    [health] = findings(evaluation, "dockerfile", "instruction")
    assert health["trigger_id"] == engine_id(
        "dockerfile", "instruction",
        "Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check")
    # Debian advisories through the source package only: zlib's advisory reaches zlib1g, a record
    # that names the binary zlib1g (or passwd, built from shadow) does not.
    vulnerable = {f["trigger_id"] for f in findings(evaluation, "vulnerabilities", "package")}
    assert "CVE-2099-0101+zlib1g" in vulnerable
    assert not {"CVE-2099-0102+zlib1g", "CVE-2099-0103+passwd"} & vulnerable
    assert code == 1 and evaluation["final_action"] == "stop"


@pytest.mark.slow
@pytest.mark.parametrize(("tag", "mapping"), [
    ("registry1.dso.mil/ironbank/ci-gate/app:1.0", "ci-gate test app"),
    ("registry1.dso.mil/opensource/istio-proxy:1.20", "Istio"),
    ("docker.io/library/debian:bookworm", "default"),
])
def test_iron_bank_style_modular_bundle(debian_app_oci: OciImage, vuln_db: Path, analysis_cache: Path,
                                        tmp_path: Path, tag: str, mapping: str) -> None:
    _, evaluation = gate(f"oci-dir:{debian_app_oci.path}", "ironbank_style_bundle.json", tmp_path, analysis_cache,
                         "--vuln-db", str(vuln_db), "--tag", tag)
    assert evaluation["matched_mapping_rule"]["name"] == mapping
    suid = findings(evaluation, "files", "suid_or_guid_set")
    assert {f["path"] for f in suid} == SUID_PATHS
    assert all(f["allowlisted"] for f in suid) == (mapping != "default")
    if mapping == "ci-gate test app":
        [root] = findings(evaluation, "passwd_file", "blacklist_userids")
        # The entry stays in the message (a passwd entry is not a secret).
        message = "Blacklisted uid '0' found in image's /etc/passwd: pentry=root:x:0:0:root:/root:/bin/bash"
        assert root["message"] == message
        assert root["trigger_id"] == engine_id("passwd_file", "blacklist_userids", message)
        # Three items share the id `shared-id`; the first that matches (the second item) is reported.
        assert root["allowlist_match"] == {**root["allowlist_match"], "id": "EnterpriseWhitelist",
                                           "matched_rule_id": "shared-id"}
    if mapping == "Istio":
        # Only the mapped rule sets and allowlists: no software checks, no EnterpriseWhitelist.
        assert not findings(evaluation, "vulnerabilities")
        [root] = findings(evaluation, "passwd_file", "blacklist_userids")
        assert not root["allowlisted"] and evaluation["final_action"] == "stop"


@pytest.mark.slow
def test_nist_800_190_style_bundle(debian_app_oci: OciImage, analysis_cache: Path, tmp_path: Path) -> None:
    code, evaluation = gate(f"oci-dir:{debian_app_oci.path}", "nist_800_190_style_bundle.json", tmp_path,
                            analysis_cache, env={"XDG_DATA_HOME": str(tmp_path / "no-data")})
    [malware] = findings(evaluation, "malware")
    assert (malware["trigger"], malware["message"]) == ("scan_not_run", "No malware scans found for image")
    names = {f["message"] for f in findings(evaluation, "files", "name_match")}
    assert "Application of regex matched file found in container: file=/etc/os-release regexp=.*/os-release" in names
    assert not any(".pem" in n for n in names)
    shells = findings(evaluation, "passwd_file", "blacklist_shells")
    assert [f["message"] for f in shells] == [
        "Blacklisted shell '/bin/bash' found in image's /etc/passwd: pentry=root:x:0:0:root:/root:/bin/bash"]
    # Every rule is WARN but the vulnerability rule, which has no data to fire on: WARN passes.
    assert (code, evaluation["final_action"]) == (0, "warn")


@pytest.mark.slow
def test_engine_test_style_bundle_reports_the_broken_rule(debian_app_oci: OciImage, analysis_cache: Path,
                                                          tmp_path: Path) -> None:
    code, evaluation = gate(f"oci-dir:{debian_app_oci.path}", "engine_test_style_bundle.json", tmp_path,
                            analysis_cache)
    [broken] = [f for f in findings(evaluation, "files") if f["rule_id"] == "e-bad-regex"]
    # The allowlist item `files *` covers every files finding, but not a rule that could not run.
    assert (broken["trigger_id"], broken["action"], broken["allowlisted"]) == ("evaluation_error", "stop", False)
    assert "bad regular expression" in broken["message"]
    assert any("e-bad-regex" in p["details"] for p in evaluation["evaluation_problems"])
    assert (code, evaluation["final_action"]) == (1, "stop")
    assert findings(evaluation, "always")[0]["trigger_id"] == "always"
    [entry] = findings(evaluation, "passwd_file", "blacklist_full_entry")
    assert entry["message"].endswith("pentry=games:x:5:60:games:/usr/games:/usr/sbin/nologin")


@pytest.mark.slow
def test_enterprise_export_evaluates_image_and_sbom_rule_sets(debian_app_oci: OciImage, vuln_db: Path,
                                                              analysis_cache: Path, tmp_path: Path) -> None:
    _, image = gate(f"oci-dir:{debian_app_oci.path}", "enterprise_v2_export.json", tmp_path, analysis_cache,
                    "--vuln-db", str(vuln_db))
    assert image["matched_mapping_rule"]["name"] == "all images"
    assert {f["rule_id"] for f in image["details"]["findings"]} == {"img-kev", "img-health"}
    [kev] = [f for f in image["details"]["findings"] if f["rule_id"] == "img-kev"]
    # lodash's advisory is reported by its GHSA id; CISA lists its CVE alias.
    assert kev["trigger_id"] == "GHSA-35jh-r3h4-6jhm+lodash" and kev["action"] == "stop"

    sbom = tmp_path / "app.cdx.json"
    made = run_cli("analyze", f"oci-dir:{debian_app_oci.path}", "-o", "cyclonedx-json", "--file", str(sbom),
                   cwd=tmp_path, env={"CI_GATE_CACHE_DIR": str(analysis_cache)})
    assert made.returncode == 0, made.stderr
    code, from_sbom = gate(f"sbom:{sbom}", "enterprise_v2_export.json", tmp_path, analysis_cache,
                           "--vuln-db", str(vuln_db))
    assert from_sbom["matched_mapping_rule"]["name"] == "all SBOMs"
    rules = {f["rule_id"] for f in from_sbom["details"]["findings"]}
    assert "sbom-kev" in rules and "sbom-high" in rules  # zlib's high advisory
    assert not rules & {"img-kev", "img-health"}  # image rule sets do not run on an SBOM
    assert (code, from_sbom["final_action"]) == (1, "stop")
