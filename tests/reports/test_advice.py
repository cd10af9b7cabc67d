"""How to fix: every trigger of every gate has advice, a rule's own recommendation wins in all eight outputs
of one real `ci-gate gate` run, findings that share a cause are one row, and a rule that could not check
anything is never reported as a pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml

from ci_gate.model import Finding
from ci_gate.policy.documents import builtin_names, load_policy
from ci_gate.policy.gates import registry
from ci_gate.reports.advice import recommendation
from ci_gate.reports.advice_table import _GENERIC, RULE_ADVICE, rule_advice

REPOSITORY = Path(__file__).resolve().parents[2]
OWN_PORT = "OWNPORTADVICE close the SSH port through the platform request form"
OWN_VULN = "OWNVULNADVICE rebuild on the golden image of the week"


# --- every trigger -------------------------------------------------------------------------------


def test_every_trigger_of_every_gate_has_its_own_advice():
    missing = []
    for gate in registry.gates().values():
        for trigger in gate.triggers:
            advice = RULE_ADVICE.get((gate.name, trigger.name), "")
            if len(advice) < 20 or advice == _GENERIC:
                missing.append(f"{gate.name}/{trigger.name}")
    assert missing == []
    assert len(RULE_ADVICE) == sum(len(g.triggers) for g in registry.gates().values())  # no stale entries


@pytest.mark.parametrize("pack", builtin_names())
def test_every_rule_of_every_builtin_pack_has_advice(pack):
    policy = load_policy(f"builtin:{pack}")
    for rule_set in policy.rule_sets:
        for rule in rule_set.rules:
            advice = rule_advice(rule.gate, rule.trigger, rule.recommendation)
            assert advice != _GENERIC and len(advice) >= 20, rule.id
            # and a finding of that rule gets concrete advice, whatever its message
            finding = Finding(gate=rule.gate, trigger=rule.trigger, trigger_id="x", action=rule.action,
                              message="m", rule_id=rule.id)
            assert len(recommendation(finding, _analysis())) >= 20, rule.id


def _analysis():
    from report_samples import sample_analysis

    return sample_analysis()


# --- one real run, eight outputs ------------------------------------------------------------------



def run_gate(images: dict[str, Path], name: str, out: Path, *extra: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    environment["CI"] = "true"  # plain output, as in a CI log
    environment.update(env or {})
    arguments = [sys.executable, "-m", "ci_gate.cli", "gate", f"oci-dir:{images[name]}", "--tag",
                 f"registry.example.com/acme/{name}:1", "--dockerfile", f"examples/images/{name}/Dockerfile",
                 "--no-cache", "--json", str(out / "e.json"), "--junit", str(out / "junit.xml"),
                 "--sarif", str(out / "r.sarif"), "--gitlab-report", str(out / "cs.json"),
                 "--codequality", str(out / "cq.json"), "--markdown", str(out / "comment.md"),
                 "--compliance", str(out / "compliance.md"), *extra]
    return subprocess.run(arguments, cwd=REPOSITORY, capture_output=True, text=True, env=environment, timeout=300)


@pytest.fixture(scope="module")
def own_run(images, tmp_path_factory) -> dict[str, str]:
    """builtin:default with recommendations on the SSH-port and medium-vulnerability rules."""
    out = tmp_path_factory.mktemp("own-recommendation")
    document = yaml.safe_load((REPOSITORY / "ci_gate/policy/packs/default.yaml").read_text())
    for rule in document["rule_sets"][0]["rules"]:
        if rule["id"] == "default-ssh-port":
            rule["recommendation"] = OWN_PORT
        if rule["id"] == "default-vuln-medium":
            rule["recommendation"] = OWN_VULN
    policy = out / "policy.yaml"
    policy.write_text(yaml.safe_dump(document))
    summary = out / "summary.md"
    completed = run_gate(images, "noncompliant", out, "--policy", str(policy), "--vuln-db", str(images["vuln-db"]),
                         env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert completed.returncode == 1, completed.stdout + completed.stderr
    texts = {path.name: path.read_text() for path in out.iterdir() if path.is_file()}
    texts["terminal"] = completed.stdout
    return texts


def _json_outputs(texts: dict[str, str]) -> list[str]:
    document = json.loads(texts["e.json"])
    findings = document["evaluations"][0]["details"]["findings"]
    port = [f["recommendation"] for f in findings if f["rule_id"] == "default-ssh-port"]
    vuln = [f["recommendation"] for f in findings if f["rule_id"] == "default-vuln-medium"]
    rules = {r["rule_id"]: r["recommendation"] for r in document["ci_gate"]["rules"]}
    assert port and vuln and set(port) == {OWN_PORT} and set(vuln) == {OWN_VULN}
    assert rules["default-ssh-port"] == OWN_PORT
    # a rule without one gets the built-in advice, never an empty string
    assert all(f["recommendation"] for f in findings)
    return port


def _sarif_outputs(texts: dict[str, str]) -> list[str]:
    run = json.loads(texts["r.sarif"])["runs"][0]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "dockerfile.exposed_ports")
    result = next(r for r in run["results"] if r["ruleId"] == "dockerfile.exposed_ports")
    return [rule["help"]["text"], rule["help"]["markdown"], result["message"]["text"]]


def _junit_outputs(texts: dict[str, str], tmp_path: Path) -> list[str]:
    path = tmp_path / "junit.xml"
    path.write_text(texts["junit.xml"])
    case = next(c for s in JUnitXml.fromfile(str(path)) for c in s if c.name.startswith("exposed_ports"))
    [failure] = [r for r in case.result if r._tag == "failure"]
    return [failure.message or "", failure.text or ""]


def _gitlab_outputs(texts: dict[str, str]) -> list[str]:
    scanning = json.loads(texts["cs.json"])
    solutions = [v["solution"] for v in scanning["vulnerabilities"]]
    assert solutions and all(OWN_VULN in s for s in solutions)
    quality = json.loads(texts["cq.json"])
    return [i["description"] for i in quality if i["check_name"] == "ci-gate/dockerfile/exposed_ports"]


@pytest.mark.parametrize("output", ["terminal", "json", "comment", "summary", "compliance", "sarif", "junit",
                                    "gitlab"])
def test_a_rules_own_recommendation_wins(own_run, output, tmp_path):
    texts = {
        "terminal": lambda: [own_run["terminal"]],
        "json": lambda: _json_outputs(own_run),
        "comment": lambda: [own_run["comment.md"]],
        "summary": lambda: [own_run["summary.md"]],
        "compliance": lambda: [own_run["compliance.md"]],
        "sarif": lambda: _sarif_outputs(own_run),
        "junit": lambda: _junit_outputs(own_run, tmp_path),
        "gitlab": lambda: _gitlab_outputs(own_run),
    }[output]()
    assert texts and all(OWN_PORT in text for text in texts), texts
    if output in ("terminal", "comment", "summary"):
        # and the built-in advice of rules without one is still there
        assert "after the last RUN of the Dockerfile" in texts[0]


def test_vulnerability_advice_names_the_fixed_version_and_the_base(own_run, images, tmp_path):
    # without a rule's own text: the fixed version, the command; FROM scratch has no base image to blame
    completed = run_gate(images, "noncompliant", tmp_path, "--policy", "builtin:default", "--vuln-db",
                         str(images["vuln-db"]))
    document = json.loads((tmp_path / "e.json").read_text())
    vulns = [f for f in document["evaluations"][0]["details"]["findings"] if f["gate"] == "vulnerabilities"
             and f["trigger"] == "package"]
    assert vulns, completed.stdout
    for finding in vulns:
        fixed = finding["vulnerability"]["fixed_versions"][0]
        assert finding["recommendation"].startswith(f"Upgrade openssh-server to {fixed}")
        assert "base image" not in finding["recommendation"]


def test_vulnerability_from_the_base_image_says_update_the_base():
    from dataclasses import replace

    from report_samples import sample_analysis, sample_evaluation

    analysis = sample_analysis()
    finding = next(f for f in sample_evaluation().findings if f.vulnerability and f.vulnerability.id == "CVE-2024-3094")
    advice = recommendation(finding, analysis)
    assert advice.startswith("Upgrade xz-utils to 5.6.1+really5.4.5-1. It came with the base image debian:bookworm: "
                             "update the base image")
    assert "`RUN apt-get update && apt-get install -y --only-upgrade xz-utils`" in advice
    no_fix = replace(finding, vulnerability=replace(finding.vulnerability, fixed_versions=()))
    assert recommendation(no_fix, analysis).startswith("No fixed version of xz-utils is known yet")


# --- one cause, one row; no false comfort ----------------------------------------------------------


@pytest.fixture(scope="module")
def dod_run(images, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("dod")
    completed = run_gate(images, "noncompliant", out, "--policy", "builtin:dod", "--vuln-db", str(images["vuln-db"]))
    assert completed.returncode == 1, completed.stderr
    return out, completed


def test_port_22_is_one_row_naming_every_rule(dod_run):
    out, completed = dod_run
    comment = (out / "comment.md").read_text()
    rows = [line for line in comment.splitlines() if line.startswith("| 🛑") and "port 22" in line]
    assert len(rows) == 1, rows
    for rule in ("dod-2.1-ssh-port", "dod-2.5-privileged-ports", "dod-2.1-ssh-server"):
        assert rule in rows[0]
    terminal = [line for line in completed.stdout.splitlines() if "port 22" in line]
    assert len(terminal) == 1 and "dod-2.1-ssh-port, dod-2.5-privileged-ports, dod-2.1-ssh-server" in terminal[0]
    # the SARIF keeps one result per rule (tools track them separately)
    results = json.loads((out / "r.sarif").read_text())["runs"][0]["results"]
    assert {r["properties"]["policyRuleId"] for r in results} >= {"dod-2.1-ssh-port", "dod-2.5-privileged-ports"}


def test_comment_shows_the_dockerfile_line_and_its_replacement(dod_run):
    comment = (dod_run[0] / "comment.md").read_text()
    assert "#### Fix it in the Dockerfile" in comment
    assert "```diff\n- EXPOSE 22 80\n+ EXPOSE 8080\n```" in comment
    assert "```diff\n- CMD [\"/app/server\"]\n+ USER 10001:10001\n" in comment
    assert "docs/fixing-findings.md" in comment


def test_from_scratch_is_not_an_unpinned_base_and_not_a_pass(dod_run):
    out, completed = dod_run
    findings = json.loads((out / "e.json").read_text())["evaluations"][0]["details"]["findings"]
    assert not [f for f in findings if f["rule_id"] == "dod-2.10-base-pinned"]
    compliance = (out / "compliance.md").read_text()
    row = next(line for line in compliance.splitlines() if line.startswith("| DISA CIDG | 2.17 |"))
    assert "N/A (not checked)" in row and "FROM scratch" in row and "PASS" not in row
    disa = {line.split(" | ")[1]: line.split(" | ")[2] for line in compliance.splitlines()
            if line.startswith("| DISA CIDG | ")}
    assert disa["3.1"] != disa["3.4"]
    rules = {r["rule_id"]: r for r in json.loads((out / "e.json").read_text())["ci_gate"]["rules"]}
    assert rules["dod-2.14-approved-base"]["checked"] is False
    assert "FROM scratch" in rules["dod-2.14-approved-base"]["not_checked_reason"]
    sarif = json.loads((out / "r.sarif").read_text())["runs"][0]
    notes = sarif["invocations"][0]["toolExecutionNotifications"]
    assert any("dod-2.14-approved-base" in n["message"]["text"] and "NOT checked" in n["message"]["text"]
               for n in notes)
    assert "not checked: dod-2.14-approved-base: FROM scratch" in completed.stdout


def test_an_image_without_a_recorded_stig_evaluation_is_not_a_stig_pass(dod_run):
    out, completed = dod_run
    rules = {r["rule_id"]: r for r in json.loads((out / "e.json").read_text())["ci_gate"]["rules"]}
    assert rules["dod-stig-cat1-open"]["checked"] is False
    assert "ci-gate stig" in rules["dod-stig-cat1-open"]["not_checked_reason"]
    assert "not checked: dod-stig-cat1-open: no STIG evaluation recorded" in completed.stdout


def test_a_pinned_debian_base_still_warns_when_unpinned(tmp_path):
    from tests.policy.helpers import analysis, dockerfile, run

    document = yaml.safe_load((REPOSITORY / "ci_gate/policy/packs/dod.yaml").read_text())
    unpinned = run(document, analysis(dockerfile=dockerfile("FROM debian:bookworm", "USER 1")))
    pinned = run(document, analysis(dockerfile=dockerfile("FROM debian:bookworm@sha256:" + "a" * 64, "USER 1")))
    scratch = run(document, analysis(dockerfile=dockerfile("FROM scratch", "USER 1")))
    fired = [{f.rule_id for f in e.findings} for e in (unpinned, pinned, scratch)]
    assert "dod-2.10-base-pinned" in fired[0]
    assert "dod-2.10-base-pinned" not in fired[1] and "dod-2.10-base-pinned" not in fired[2]


def test_without_vulnerability_data_nothing_says_pass(images, tmp_path):
    completed = run_gate(images, "compliant", tmp_path, "--policy", "builtin:cis",
                         env={"XDG_DATA_HOME": str(tmp_path / "no-data")})
    rules = {r["rule_id"]: r for r in json.loads((tmp_path / "e.json").read_text())["ci_gate"]["rules"]}
    fixable = rules["cis-4.4-fixable-vulnerabilities"]
    assert fixable["fired"] == 0 and fixable["checked"] is False
    assert fixable["not_checked_reason"].startswith("no vulnerability data")
    compliance = (tmp_path / "compliance.md").read_text()
    row = next(line for line in compliance.splitlines() if line.startswith("| CIS Docker | 4.4 |"))
    assert "PASS" not in row and "not checked vulnerabilities/package: no vulnerability data" in row
    skipped = [c for s in JUnitXml.fromfile(str(tmp_path / "junit.xml")) for c in s if c.is_skipped]
    assert any(c.name.startswith("package: not checked") for c in skipped), completed.stdout
    scanning = json.loads((tmp_path / "cs.json").read_text())
    assert any("cis-4.4-fixable-vulnerabilities" in m["value"] and "was not checked" in m["value"]
               for m in scanning["scan"]["messages"])
    assert "could not be checked" in (tmp_path / "comment.md").read_text()
    assert "not checked: cis-4.4-fixable-vulnerabilities: no vulnerability data" in completed.stdout


def test_a_malware_rule_without_a_scanner_is_not_checked():
    from ci_gate.reports.unchecked import unchecked_rules
    from tests.policy.helpers import analysis, policy_document, rule, run

    document = policy_document([rule("malware", "scans", rule_id="malware-found")])
    evaluation = run(document, analysis())
    assert not evaluation.findings
    assert unchecked_rules(evaluation, analysis()) == {
        "malware-found": "no malware scanner ran (ci-gate has none; Anchore Enterprise runs one)"}
