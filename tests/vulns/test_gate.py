"""The vulnerabilities gate end to end: store → matches → policy rules → findings and trigger ids."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ci_gate.model import Distro, Evaluation
from ci_gate.policy.evaluation import EvaluationInput, evaluate
from ci_gate.vulns.provider import make_provider
from ci_gate.vulns.store import VulnerabilityStore, parse_time
from tests.policy.helpers import NOW, load, policy_document, rule

from .conftest import image, package

DEBIAN = Distro(id="debian", version_id="12")


def app_image() -> Any:
    return image([
        package("libssl3", "3.0.9-1", "deb", source="openssl", layer=0, path="/var/lib/dpkg/status"),
        package("log4j-core", "2.14.1", "java-archive", purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                layer=1, path="/app/lib/log4j-core-2.14.1.jar"),
        package("lodash", "4.17.15", "npm", purl="pkg:npm/lodash@4.17.15", layer=1,
                path="/app/node_modules/lodash/package.json"),
        package("zope.interface", "5.4.0", "python", purl="pkg:pypi/zope.interface@5.4.0", layer=1,
                path="/usr/lib/python3/dist-packages/zope.interface-5.4.0.dist-info/METADATA"),
        package("nokogiri", "1.13.3", "gem", purl="pkg:gem/nokogiri@1.13.3", layer=1,
                path="/usr/lib/ruby/gems/3.1.0/specifications/nokogiri-1.13.3.gemspec"),
    ], DEBIAN)


def evaluate_rules(rules: list[dict[str, Any]], store: Path | None, analysis: Any = None, now: datetime = NOW,
                   **extra: Any) -> Evaluation:
    analysis = analysis or app_image()
    provider = make_provider(analysis, store)
    return evaluate(load(policy_document(rules, **extra)), analysis,
                    EvaluationInput(tag="docker.io/team/app:1.0", now=now, vulnerabilities=provider))


def findings(params: dict[str, str], store: Path, **kwargs: Any) -> list[Any]:
    return list(evaluate_rules([rule("vulnerabilities", "package", params)], store, **kwargs).findings)


def test_trigger_ids_follow_anchore(store_path: Path) -> None:
    ids = sorted(f.trigger_id for f in findings({"package_type": "all", "severity_comparison": ">="}, store_path))
    assert ids == [
        "CVE-2023-5363+libssl3",  # OS: the CVE of the Debian advisory, + the binary package name
        "GHSA-crjr-9rc5-ghw8+nokogiri-1.13.3.gemspec",  # gem: basename of the location
        "GHSA-jfh8-c2jp-5v3q+log4j-core-2.14.1.jar",  # java: basename of the jar
        "GHSA-p6mc-m468-83gw+lodash",  # npm: the package directory
        "PYSEC-0000-LAST+zope.interface-5.4.0",  # others: name-version
    ]


def test_message_format(store_path: Path) -> None:
    by_id = {f.trigger_id: f for f in findings({"package_type": "all", "severity": "high",
                                                "severity_comparison": ">=", "cvss_v3_base_score": "9.0"},
                                               store_path)}
    assert list(by_id) == ["GHSA-jfh8-c2jp-5v3q+log4j-core-2.14.1.jar"]
    finding = by_id["GHSA-jfh8-c2jp-5v3q+log4j-core-2.14.1.jar"]
    assert finding.message == (
        "CRITICAL Vulnerability found in non-os package type (java) - /app/lib/log4j-core-2.14.1.jar "
        "(fixed in: 2.15.0)(cvss_v3_base_score=10.0)(GHSA-jfh8-c2jp-5v3q - "
        "https://osv.dev/vulnerability/GHSA-jfh8-c2jp-5v3q)")
    assert finding.vulnerability.fixed_versions == ("2.15.0",) and finding.vulnerability.cvss_score == 10.0
    assert finding.layer_index == 1 and finding.path == "/app/lib/log4j-core-2.14.1.jar"
    os_finding = next(f for f in findings({"package_type": "os", "severity_comparison": ">="}, store_path))
    assert os_finding.message == (
        "UNKNOWN Vulnerability found in os package type (dpkg) - libssl3 (fixed in: 3.0.11-1~deb12u2)"
        "(CVE-2023-5363 - https://nvd.nist.gov/vuln/detail/CVE-2023-5363)")


def test_parameters_filter(store_path: Path) -> None:
    def fired(**params: str) -> set[str]:
        return {f.trigger_id.split("+")[0] for f in findings({"package_type": "all", **params}, store_path)}

    everything = {"CVE-2023-5363", "GHSA-crjr-9rc5-ghw8", "GHSA-jfh8-c2jp-5v3q", "GHSA-p6mc-m468-83gw",
                  "PYSEC-0000-LAST"}
    # default severity comparison is "> unknown": the Debian advisory has no severity
    assert fired() == everything - {"CVE-2023-5363", "PYSEC-0000-LAST"}
    assert fired(severity="unknown", severity_comparison=">=") == everything
    assert fired(severity="high", severity_comparison=">=") == {"GHSA-crjr-9rc5-ghw8", "GHSA-jfh8-c2jp-5v3q",
                                                               "GHSA-p6mc-m468-83gw"}  # lodash: CVSS 7.4
    assert fired(severity="critical", severity_comparison="=") == {"GHSA-jfh8-c2jp-5v3q"}
    assert fired(package_type="os", severity_comparison=">=") == {"CVE-2023-5363"}
    assert fired(package_type="non-os", fix_available="false", severity_comparison=">=") == {"PYSEC-0000-LAST"}
    assert fired(fix_available="true", severity_comparison=">=") == everything - {"PYSEC-0000-LAST"}
    # CVSS: a missing score counts as -1.0
    assert fired(cvss_v3_base_score="7.0", severity_comparison=">=") == {"GHSA-jfh8-c2jp-5v3q", "GHSA-p6mc-m468-83gw"}
    assert fired(cvss_v3_base_score="0", cvss_v3_base_score_comparison="<", severity_comparison=">=") == {
        "CVE-2023-5363", "PYSEC-0000-LAST", "GHSA-crjr-9rc5-ghw8"}
    assert fired(cvss_v3_exploitability_score="3.9", severity_comparison=">=") == {"GHSA-jfh8-c2jp-5v3q"}
    assert fired(package_path_exclude=r".*\.jar", severity_comparison=">=") == everything - {"GHSA-jfh8-c2jp-5v3q"}
    assert fired(package_origin="base", severity_comparison=">=") == {"CVE-2023-5363"}
    assert fired(package_origin="app", severity_comparison=">=") == everything - {"CVE-2023-5363"}


def test_days_since_creation_and_fix(store_path: Path) -> None:
    def fired(now: datetime, **params: str) -> list[Any]:
        return findings({"package_type": "non-os", "severity_comparison": ">=", **params}, store_path, now=now)

    # lodash's advisory was published 2020-07-15, nokogiri's 2022-04-11, log4j's 2021-12-10.
    now = parse_time("2022-04-20T00:00:00.000000Z")
    ids = {f.trigger_id.split("+")[0] for f in fired(now, max_days_since_creation="30")}
    assert ids == {"GHSA-p6mc-m468-83gw", "GHSA-jfh8-c2jp-5v3q"}  # nokogiri's is too recent
    lodash = next(f for f in fired(now, max_days_since_creation="30") if "lodash" in f.trigger_id)
    assert "(max_days_since_creation=2020-07-15)" in lodash.message
    ids = {f.trigger_id.split("+")[0] for f in fired(now, fix_available="true", max_days_since_fix="200")}
    assert ids == {"GHSA-p6mc-m468-83gw"}


def test_allowlist_written_for_anchore_applies(store_path: Path) -> None:
    allowlist = [{"id": "al", "name": "exceptions", "version": "2", "items": [
        {"id": "i1", "gate": "vulnerabilities", "trigger_id": "CVE-2023-5363+libssl3"},
        {"id": "i2", "gate": "vulnerabilities", "trigger_id": "GHSA-jfh8-c2jp-5v3q+*"},
    ]}]
    document = policy_document([rule("vulnerabilities", "package", {"package_type": "all",
                                                                    "severity_comparison": ">="})],
                               allowlists=allowlist)
    document["mappings"][0]["allowlist_ids"] = ["al"]
    analysis = app_image()
    evaluation = evaluate(load(document), analysis, EvaluationInput(
        tag="docker.io/team/app:1.0", now=NOW, vulnerabilities=make_provider(analysis, store_path)))
    allowlisted = sorted(f.trigger_id for f in evaluation.findings if f.allowlisted)
    assert allowlisted == ["CVE-2023-5363+libssl3", "GHSA-jfh8-c2jp-5v3q+log4j-core-2.14.1.jar"]
    assert evaluation.final_action == "STOP"


def test_denylist_and_its_v1_name(store_path: Path) -> None:
    for name in ("denylist", "blacklist"):
        evaluation = evaluate_rules([rule("vulnerabilities", name,
                                          {"vulnerability_ids": "CVE-2021-44228,CVE-1999-0001,GHSA-p6mc-m468-83gw"})],
                                    store_path)
        (finding,) = evaluation.findings
        message = "Blacklisted vulnerabilities detected: ['CVE-2021-44228', 'GHSA-p6mc-m468-83gw']"
        assert finding.message == message
        assert finding.trigger_id == hashlib.md5(f"vulnerabilities{name}{message}".encode()).hexdigest()


def test_without_any_data_the_policy_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the default location may be absent (a --vuln-db that is missing is exit 2: test_gate_cli.py).
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("CI_GATE_VULN_DB", raising=False)
    missing = tmp_path / "ci-gate" / "vulns.sqlite"
    rules = [rule("vulnerabilities", "package", {"package_type": "all"}, rule_id="p"),
             rule("vulnerabilities", "vulnerability_data_unavailable", action="WARN", rule_id="u"),
             rule("vulnerabilities", "stale_feed_data", {"max_days_since_sync": "2"}, action="WARN", rule_id="s")]
    evaluation = evaluate_rules(rules, None)
    assert evaluation.final_action == "WARN"
    assert make_provider(app_image(), None).notes() == [  # type: ignore[attr-defined]
        f"vulnerabilities were not checked: no vulnerability store at {missing} (run `ci-gate db import` or "
        "`ci-gate db update`)"]
    messages = sorted(f.message for f in evaluation.findings)
    # No data is "unavailable", never "stale": there is no feed whose age could be named.
    assert messages == [
        "Distro-specific feed data not found for distro namespace: debian:12. "
        "Cannot perform CVE scan OS/distro packages",
    ]


def test_stale_and_uncovered_distro(store_path: Path) -> None:
    with VulnerabilityStore(store_path) as store:
        synced = parse_time(store.status().updated_at)
    stale = [rule("vulnerabilities", "stale_feed_data", {"max_days_since_sync": "7"})]
    assert evaluate_rules(stale, store_path, now=synced + timedelta(days=6)).findings == ()
    (finding,) = evaluate_rules(stale, store_path, now=synced + timedelta(days=8)).findings
    # The real age, and anchore-engine's trigger id (the md5 of its message without the age), so an
    # allowlist item keeps matching as the feed ages.
    anchore_message = "The vulnerability feed for this image distro is older than MAXAGE (7) days"
    assert finding.message == f"{anchore_message} (last updated {synced:%Y-%m-%d %H:%M} UTC, 8 days ago)"
    assert finding.trigger_id == hashlib.md5(f"vulnerabilitiesstale_feed_data{anchore_message}".encode()).hexdigest()
    (later,) = evaluate_rules(stale, store_path, now=synced + timedelta(days=30)).findings
    assert "30 days ago" in later.message and later.trigger_id == finding.trigger_id
    unavailable = [rule("vulnerabilities", "vulnerability_data_unavailable")]
    assert evaluate_rules(unavailable, store_path).findings == ()
    fedora = image([package("bash", "5.2-1.fc39", "rpm")], Distro(id="fedora", version_id="39"))
    assert len(evaluate_rules(unavailable, store_path, analysis=fedora).findings) == 1


def test_vex_through_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_path: Path) -> None:
    vex = tmp_path / "vex.json"
    vex.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
        {"vulnerability": {"name": "CVE-2021-44228"},
         "products": [{"@id": "pkg:maven/org.apache.logging.log4j/log4j-core"}],
         "status": "not_affected", "justification": "vulnerable_code_not_present"}]}))
    monkeypatch.setenv("CI_GATE_VEX", str(vex))
    provider = make_provider(app_image(), store_path)
    assert [m.vulnerability_id for m in provider.suppressed()] == ["GHSA-jfh8-c2jp-5v3q"]  # type: ignore[attr-defined]
    assert provider.notes() == [  # type: ignore[attr-defined]
        "GHSA-jfh8-c2jp-5v3q in log4j-core 2.14.1 suppressed by VEX (not_affected: vulnerable_code_not_present)"]
    assert "GHSA-jfh8-c2jp-5v3q" not in {m.vulnerability_id for m in provider.matches()}


def test_policy_validation_rejects_bad_parameters() -> None:
    from ci_gate.policy.documents import check_text

    document = policy_document([rule("vulnerabilities", "package", {"package_type": "everything"})])
    _, problems = check_text(json.dumps(document), "p.json")
    assert any("package_type" in p.render("p.json") for p in problems if p.severity == "error")
    document = policy_document([rule("vulnerabilities", "package", {"package_type": "all",
                                                                    "max_days_since_fix": "3"})])
    _, problems = check_text(json.dumps(document), "p.json")
    assert any("fix_available" in p.render("p.json") for p in problems if p.severity == "error")
