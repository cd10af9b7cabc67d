"""Report formats checked by the real validators: SARIF Multitool (GitHub ingestion rules) and the OASIS
schema, GitLab's official container-scanning schema, junitparser reading the JUnit back."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ci_tools import GITLAB_SCHEMA, MULTITOOL_INSTALL, SARIF_SCHEMA, multitool_errors, require_file
from junitparser import Error, Failure, JUnitXml, Skipped
from report_samples import (
    AWS_KEY_ID,
    SECRET_VALUE,
    compliant_evaluation,
    many_findings,
    sample_analysis,
    sample_evaluation,
)

from ci_gate.errors import ReportError
from ci_gate.gate import ReportTargets
from ci_gate.reports import junit as junit_module
from ci_gate.reports import sarif as sarif_module
from ci_gate.reports import write_reports
from ci_gate.reports.codequality import render_codequality
from ci_gate.reports.gitlab import SCHEMA_VERSION, render_container_scanning
from ci_gate.reports.junit import render_junit
from ci_gate.reports.markdown import render_markdown
from ci_gate.reports.sarif import render_sarif


@pytest.fixture(scope="module")
def evaluation():
    return sample_evaluation()


@pytest.fixture(scope="module")
def analysis():
    return sample_analysis()


def all_reports(evaluation, analysis) -> dict[str, str]:
    return {
        "junit": render_junit(evaluation, analysis),
        "sarif": json.dumps(render_sarif(evaluation, analysis)),
        "gitlab": json.dumps(render_container_scanning(evaluation, analysis)),
        "codequality": json.dumps(render_codequality(evaluation, analysis)),
        "comment": render_markdown(evaluation, analysis, "comment"),
        "summary": render_markdown(evaluation, analysis, "summary"),
        "compliance": render_markdown(evaluation, analysis, "compliance"),
    }


def test_no_report_ever_contains_the_secret(evaluation, analysis, tmp_path):
    reports = all_reports(evaluation, analysis)
    written = write_reports(evaluation, analysis, ReportTargets(json=tmp_path / "e.json"))
    reports["json"] = written[0].read_text()
    for name, text in reports.items():
        assert SECRET_VALUE not in text, name
        assert AWS_KEY_ID not in text, name
    # The secret finding is still described: rule, path, line, redacted preview.
    assert "AWS_SECRET_ACCESS_KEY found at /app/config/settings.ini:12" in reports["sarif"]
    assert "Secret AWS\\_SECRET\\_ACCESS\\_KEY in /app/config/settings.ini:12" in reports["comment"]
    assert "aws\\_secret\\_access\\_key = \\*\\*\\*\\*" in reports["compliance"]


# --- JUnit ---------------------------------------------------------------------------------------


def _cases(xml_text: str, tmp_path: Path):
    path = tmp_path / "junit.xml"
    path.write_text(xml_text)
    document = JUnitXml.fromfile(str(path))
    suites = list(document) if hasattr(document, "__iter__") else [document]
    return suites, [(suite.name, case) for suite in suites for case in suite]


def test_junit_one_suite_per_gate_and_outcomes(evaluation, analysis, tmp_path):
    suites, cases = _cases(render_junit(evaluation, analysis), tmp_path)
    suite_names = {suite.name for suite in suites}
    assert suite_names == {"ci-gate: decision"} | {f"ci-gate: {gate}" for gate in
                                                   ("dockerfile", "packages", "files", "secret_scans",
                                                    "vulnerabilities")}
    by_name = {(case.classname, case.name): case for _, case in cases}
    assert len(by_name) == len(cases), "test case names must be unique per classname"

    failures = [case for _, case in cases if any(isinstance(r, (Failure, Error)) for r in case.result)]
    skipped = [case for _, case in cases if any(isinstance(r, Skipped) for r in case.result)]
    stops = [f for f in evaluation.findings if f.effective_action == "STOP"]
    # every effective STOP fails, plus the final decision and the expired exception
    assert len(failures) == len(stops) + 1 + len(evaluation.expired_exceptions)
    assert len(skipped) == 1 and "approved by isso@example.mil" in skipped[0].result[0].message
    assert "expires 2099-12-31" in skipped[0].result[0].message

    warn_case = next(case for _, case in cases if case.name == "instruction: HEALTHCHECK")
    assert warn_case.is_passed and "HEALTHCHECK' not found" in warn_case.system_out

    quiet = [case for _, case in cases if case.name.endswith("no findings")]
    assert {c.name for c in quiet} >= {"suid_or_guid_set: no findings"}
    assert len(quiet) == sum(1 for rule in evaluation.rules if rule.fired == 0)
    assert all(case.is_passed for case in quiet)

    ports = next(case for _, case in cases if case.name == "exposed_ports: 22")
    assert ports._elem.get("file") == "Dockerfile" and ports._elem.get("line") == "6"


def test_junit_passing_image_still_lists_what_was_checked(analysis, tmp_path):
    evaluation = compliant_evaluation()
    _suites, cases = _cases(render_junit(evaluation, analysis), tmp_path)
    assert len(cases) == len(evaluation.rules) + 1
    assert all(case.is_passed for _, case in cases)


def test_junit_caps_cases_and_says_so(analysis, tmp_path, monkeypatch):
    monkeypatch.setattr(junit_module, "MAX_CASES", 40)
    _suites, cases = _cases(render_junit(many_findings(100), analysis), tmp_path)
    assert len(cases) == 41
    note = [case for _, case in cases if "more results not listed" in case.name]
    assert len(note) == 1 and "the JSON report" in note[0].system_out


def test_junit_size_for_5000_findings_within_gitlab_limits(analysis, tmp_path):
    text = render_junit(many_findings(5_000), analysis)
    assert len(text.encode()) < 30 * 1024 * 1024
    _suites, cases = _cases(text, tmp_path)
    assert len(cases) == 5_000 + 1 + len(sample_evaluation().rules) - 9  # quiet rules of the base policy
    assert len({(c.classname, c.name) for _, c in cases}) == len(cases)


# --- SARIF ---------------------------------------------------------------------------------------


def test_sarif_accepted_by_github_rules_and_oasis_schema(analysis, tmp_path, monkeypatch):
    # A low cap so a capped run (with its notification) is validated too; the Multitool checks every
    # helpUri over the network, which makes thousands of rules slow.
    monkeypatch.setattr(sarif_module, "MAX_RESULTS", 50)
    schema = json.loads(require_file(SARIF_SCHEMA, MULTITOOL_INSTALL).read_text())
    paths = []
    for name, evaluation in (("sample", sample_evaluation()), ("compliant", compliant_evaluation()),
                             ("capped", many_findings(80))):
        document = render_sarif(evaluation, analysis)
        jsonschema.validate(document, schema)
        path = tmp_path / f"{name}.sarif"
        path.write_text(json.dumps(document))
        paths.append(path)
    assert multitool_errors(paths, tmp_path) == []


def test_multitool_does_catch_a_result_without_location(evaluation, analysis, tmp_path):
    document = render_sarif(evaluation, analysis)
    del document["runs"][0]["results"][0]["locations"]
    path = tmp_path / "broken.sarif"
    path.write_text(json.dumps(document))
    assert any("GH1015" in line or "locations" in line for line in multitool_errors([path], tmp_path))


def test_sarif_run_category_locations_fingerprints(evaluation, analysis):
    run = render_sarif(evaluation, analysis)["runs"][0]
    assert run["automationDetails"]["id"] == "ci-gate/registry.example.com-team-app/"
    ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(ids) == len(set(ids))
    assert {"CVE-2024-3094", "dockerfile.effective_user", "files.suid_or_guid_set"} <= set(ids)
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert "1.4.2" not in uri and "sha256" not in uri and "@" not in uri
        assert location["region"]["startLine"] >= 1
        assert result["partialFingerprints"]["primaryLocationLineHash"].endswith(":1")
        assert ids[result["ruleIndex"]] == result["ruleId"]
    ports = next(r for r in run["results"] if r["ruleId"] == "dockerfile.exposed_ports")
    assert ports["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "Dockerfile"
    assert ports["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    sshd = next(r for r in run["results"] if r["ruleId"] == "packages.denylist.rule-sshd")
    assert sshd["locations"][0]["physicalLocation"]["region"] == {"startLine": 4, "endLine": 5}
    user = next(r for r in run["results"] if r["ruleId"] == "dockerfile.effective_user")
    assert user["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(
        "image/registry.example.com-team-app/")
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["CVE-2024-3094"]["properties"]["security-severity"] == "10.0"
    assert rules["CVE-2023-5678"]["properties"]["security-severity"] == "5.5"  # no CVSS: severity score
    assert "DISA-CIDG 2.2" in rules["dockerfile.effective_user"]["properties"]["tags"]
    waived = next(r for r in run["results"] if r["ruleId"] == "CVE-2023-4911")
    assert waived["suppressions"][0]["status"] == "accepted"
    assert "isso@example.mil" in waived["suppressions"][0]["justification"]


def test_sarif_stable_across_tags_and_digests_distinct_across_images():
    first = render_sarif(sample_evaluation(), sample_analysis())["runs"][0]
    rebuilt_tag = "registry.example.com/team/app:1.5.0"
    rebuilt = render_sarif(sample_evaluation(tag=rebuilt_tag, digest="sha256:" + "99" * 32),
                           sample_analysis(tag=rebuilt_tag, digest="sha256:" + "99" * 32))["runs"][0]

    def keys(run):
        return [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                 r["partialFingerprints"]["primaryLocationLineHash"]) for r in run["results"]]

    assert keys(first) == keys(rebuilt)
    assert first["automationDetails"] == rebuilt["automationDetails"]
    other_tag = "registry.example.com/team/worker:1.4.2"
    other = render_sarif(sample_evaluation(tag=other_tag), sample_analysis(tag=other_tag))["runs"][0]
    assert other["automationDetails"]["id"] != first["automationDetails"]["id"]
    assert not {k[2] for k in keys(other)} & {k[2] for k in keys(first)}


def test_sarif_caps_worst_first_and_says_so(analysis):
    evaluation = many_findings(6_000)
    run = render_sarif(evaluation, analysis)["runs"][0]
    assert len(run["results"]) == sarif_module.MAX_RESULTS
    assert run["properties"]["resultsCapped"] and run["properties"]["resultsOmitted"] == 1_000
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert "only the worst 5000" in notes[0]["message"]["text"]
    levels = [r["level"] for r in run["results"]]
    assert levels.index("warning") > 0 and "error" not in levels[levels.index("warning"):]
    scores = [float(next(rule for rule in run["tool"]["driver"]["rules"] if rule["id"] == r["ruleId"])
                    ["properties"]["security-severity"]) for r in run["results"][:10]]
    assert scores == sorted(scores, reverse=True)


# --- GitLab --------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [sample_evaluation, compliant_evaluation, lambda: many_findings(300)],
                         ids=["sample", "compliant", "many"])
def test_container_scanning_valid_against_official_schema(build, analysis):
    report = render_container_scanning(build(), analysis)
    schema = json.loads(GITLAB_SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(report)
    assert report["version"] == SCHEMA_VERSION == "15.0.7"


def test_container_scanning_content(evaluation, analysis):
    report = render_container_scanning(evaluation, analysis)
    names = sorted(v["name"] for v in report["vulnerabilities"])
    assert names == ["CVE-2022-0001", "CVE-2023-4911", "CVE-2023-5678", "CVE-2024-3094"]
    xz = next(v for v in report["vulnerabilities"] if v["name"] == "CVE-2024-3094")
    assert xz["severity"] == "Critical"
    assert xz["location"]["dependency"] == {"package": {"name": "xz-utils"}, "version": "5.6.0-1"}
    assert xz["location"]["operating_system"] == "debian 12"
    waived = next(v for v in report["vulnerabilities"] if v["name"] == "CVE-2023-4911")
    assert "Allowlisted" in waived["description"] and "isso@example.mil" in waived["description"]
    rebuilt = render_container_scanning(sample_evaluation(tag="registry.example.com/team/app:2.0"), analysis)
    assert sorted(v["id"] for v in rebuilt["vulnerabilities"]) == sorted(v["id"] for v in report["vulnerabilities"])


def test_schema_rejects_what_gitlab_rejects(evaluation, analysis):
    """The validator is not a rubber stamp: an empty identifier URL (trivy#6347) fails."""
    report = render_container_scanning(evaluation, analysis)
    report["vulnerabilities"][0]["identifiers"][0]["url"] = ""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(json.loads(GITLAB_SCHEMA.read_text())).validate(report)


def test_codequality_report(evaluation, analysis, tmp_path):
    issues = render_codequality(evaluation, analysis)
    effective = [f for f in evaluation.findings if f.effective_action in ("STOP", "WARN")]
    assert len(issues) == len(effective)
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(issue)
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert isinstance(issue["location"]["lines"]["begin"], int)
        assert issue["location"]["path"] == "Dockerfile"
    ports = next(i for i in issues if i["check_name"] == "ci-gate/dockerfile/exposed_ports")
    assert ports["location"]["lines"]["begin"] == 6 and ports["severity"] == "critical"
    written = write_reports(evaluation, analysis, ReportTargets(codequality=tmp_path / "gl-code-quality.json"))
    assert not written[0].read_bytes().startswith(b"\xef\xbb\xbf")  # GitLab refuses a BOM


# --- Markdown ------------------------------------------------------------------------------------


def test_comment_and_compliance_content(evaluation, analysis):
    comment = render_markdown(evaluation, analysis, "comment")
    assert "**STOP**" in comment and "6 STOP" in comment and "3 WARN" in comment
    assert "Exception expired 2026-01-31" in comment
    compliance = render_markdown(evaluation, analysis, "compliance")
    rows = {line.split("|")[2].strip(): line for line in compliance.splitlines() if line.startswith("| DISA CIDG")}
    assert "FAIL" in rows["2.2"] and "NIST AC-6(10)" in rows["2.2"]
    assert "PASS" in rows["2.3"] and "checked files/suid\\_or\\_guid\\_set: nothing found" in rows["2.3"]
    assert "WARN" in rows["2.6"]
    assert "expired exception" in rows["2.1"]
    assert "| ⛔ team-exceptions/ssh-temporary |" in compliance and "**2026-01-31**" in compliance
    assert "not reachable: no setuid binaries" in compliance and "2099-12-31" in compliance
    assert any(line.startswith("| CIS Docker | 4.1 |") and "FAIL" in line for line in compliance.splitlines())


def test_markdown_escapes_html_and_marker_lookalikes(analysis):
    evaluation = sample_evaluation()
    hostile = evaluation.findings[0].__class__(
        gate="dockerfile", trigger="instruction", trigger_id="x", action="STOP",
        message="<!-- ci-gate:comment image=other --> <img src=x onerror=alert(1)> | broken",
    )
    evaluation = evaluation.__class__(**{**{f: getattr(evaluation, f) for f in evaluation.__dataclass_fields__},
                                         "findings": (hostile,)})
    comment = render_markdown(evaluation, analysis, "comment")
    assert "<!--" not in comment and "<img" not in comment and "\\| broken" in comment


def test_comment_fits_github_limit_for_5000_findings(analysis):
    comment = render_markdown(many_findings(5_000), analysis, "comment")
    assert len(comment) <= 60_000
    assert "more (see the full report)" in comment


def test_custom_template_replaces_the_builtin(evaluation, analysis, tmp_path):
    template = tmp_path / "mine.md.j2"
    template.write_text("{{ icon }} {{ final_action }} {{ image }}: {{ findings | length }} findings\n"
                        "{% for f in findings %}- {{ f.text | md }}\n{% endfor %}")
    text = render_markdown(evaluation, analysis, "comment", template)
    assert text.startswith("🛑 STOP registry.example.com/team/app:1.4.2: 9 findings")
    assert SECRET_VALUE not in text
    (tmp_path / "bad.md.j2").write_text("{% for x in %}")
    with pytest.raises(ReportError, match=r"bad\.md\.j2"):
        render_markdown(evaluation, analysis, "comment", tmp_path / "bad.md.j2")
    (tmp_path / "undefined.md.j2").write_text("{{ nothing_like_this }}")
    with pytest.raises(ReportError, match="nothing_like_this"):
        render_markdown(evaluation, analysis, "comment", tmp_path / "undefined.md.j2")


# --- writing -------------------------------------------------------------------------------------


def test_write_reports_writes_every_target_atomically(evaluation, analysis, tmp_path):
    out = tmp_path / "reports"
    targets = ReportTargets(
        json=out / "ci-gate.json", junit=out / "junit.xml", sarif=out / "ci-gate.sarif",
        gitlab_report=out / "gl-container-scanning-report.json", codequality=out / "gl-code-quality-report.json",
        markdown=out / "comment.md", compliance=out / "compliance.md",
    )
    (out).mkdir()
    (out / "junit.xml").write_text("stale")
    written = write_reports(evaluation, analysis, targets)
    assert [p.name for p in written] == ["ci-gate.json", "junit.xml", "ci-gate.sarif",
                                         "gl-container-scanning-report.json", "gl-code-quality-report.json",
                                         "comment.md", "compliance.md"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no temp files left
    assert (out / "junit.xml").read_text().startswith("<?xml")
    json.loads((out / "ci-gate.sarif").read_text())
    json.loads((out / "ci-gate.json").read_text())


def test_image_key_never_holds_tag_digest_or_scheme():
    from ci_gate.reports.common import image_key, strip_reference

    assert strip_reference("registry:host:5000/team/app:1.2@sha256:" + "a" * 64) == "host:5000/team/app"
    assert strip_reference("docker:team/app") == "team/app"
    assert strip_reference("host:5000/app") == "host:5000/app"
    analysis = sample_analysis(tag="registry.example.com/team/app:9")
    local = sample_evaluation(tag="docker-archive:/tmp/build-1234/image.tar")
    assert image_key(local, analysis) == "registry.example.com/team/app"  # the archive's RepoTags win
    assert image_key(sample_evaluation(tag="registry.example.com/team/app:1"), analysis) == \
        "registry.example.com/team/app"
