"""The evaluation JSON (Anchore v2 shape plus ci-gate fields) and the terminal verdict."""

from __future__ import annotations

import json

import pytest

from ci_gate.cli.gate import render_plain, render_rich
from ci_gate.gate import GateResult, exit_code_for
from ci_gate.model import FileRecord, ImageConfig, SecretFinding
from ci_gate.reports.evaluation_json import render_evaluation_json
from tests.policy.helpers import analysis, dockerfile, policy_document, rule, run

SECRET = "AKIAIOSFODNN7EXAMPLE"


def _evaluation() -> tuple[object, object]:
    image = analysis(
        config=ImageConfig(user="root"),
        files=(FileRecord("/usr/bin/su", "file", 0o4755, layer_index=0),),
        secrets=(SecretFinding("AWS_ACCESS_KEY", "file", "/app/.env", 3, 1, preview="aws_access_key_id = AKIA****",
                               regex="AWS_ACCESS_KEY=(?i).*aws_access_key_id( *=+ *).*"),),
        dockerfile=dockerfile("FROM debian:12", "EXPOSE 22"),
    )
    document = policy_document([
        rule("image_user", "runs_as_root", rule_id="root", controls=["NIST AC-6(10)"]),
        rule("files", "suid_or_guid_set", action="WARN", rule_id="suid"),
        rule("secret_scans", "content_regex_checks", rule_id="secrets"),
        rule("healthcheck", "missing", action="WARN", rule_id="health"),
    ])
    document["allowlists"] = [{"id": "al", "name": "exceptions", "version": "2", "items": [
        {"id": "su-ok", "gate": "files", "trigger_id": "*", "reason": "needed", "approved_by": "ISSO",
         "expires_on": "2099-01-01T00:00:00Z"}]}]
    document["mappings"][0]["allowlist_ids"] = ["al"]
    return run(document, image), image


def test_evaluation_json_is_anchore_v2_shaped() -> None:
    evaluation, image = _evaluation()
    document = render_evaluation_json(evaluation, image)  # type: ignore[arg-type]
    assert set(document) == {"policy_id", "image_digest", "evaluated_tag", "evaluations", "ci_gate"}
    entry = document["evaluations"][0]
    assert (entry["final_action"], entry["status"], entry["final_action_reason"]) == ("stop", "fail",
                                                                                      "policy_evaluation")
    assert entry["image_mapped_to_rule"] is True and entry["matched_mapping_rule"] == {"name": "all"}
    assert entry["number_of_findings"] == 4 == len(entry["details"]["findings"])
    suid = next(f for f in entry["details"]["findings"] if f["gate"] == "files")
    assert suid["allowlisted"] is True
    assert suid["allowlist_match"] == {"id": "al", "name": "exceptions", "matched_rule_id": "su-ok",
                                       "reason": "needed", "approved_by": "ISSO",
                                       "expires_on": "2099-01-01T00:00:00Z"}
    assert (suid["action"], suid["effective_action"], suid["inherited_from_base"]) == ("warn", "go", True)
    root = next(f for f in entry["details"]["findings"] if f["gate"] == "image_user")
    assert root["controls"] == ["NIST AC-6(10)"] and root["policy_id"] == "rs" and root["rule_id"] == "root"
    assert SECRET not in json.dumps(document)
    json.dumps(document)  # JSON-ready


def test_status_pass_for_warn() -> None:
    document = policy_document([rule("healthcheck", "missing", action="WARN")])
    evaluation = run(document, analysis())
    assert render_evaluation_json(evaluation, analysis())["evaluations"][0]["status"] == "pass"


@pytest.mark.parametrize(("action", "fail_on", "code"), [
    ("GO", "stop", 0), ("WARN", "stop", 0), ("STOP", "stop", 1), ("WARN", "warn", 1), ("STOP", "never", 0),
])
def test_exit_codes(action: str, fail_on: str, code: int) -> None:
    assert exit_code_for(action, fail_on) == code


def test_terminal_verdict_ends_with_the_decision_and_fixes(capsys: pytest.CaptureFixture[str]) -> None:
    evaluation, image = _evaluation()
    result = GateResult(analysis=image, evaluation=evaluation, exit_code=1)  # type: ignore[arg-type]
    text = render_plain(result, policy="policy.yaml")
    lines = text.splitlines()
    assert lines[0] == ("ci-gate: checking oci-dir:/images/app (docker.io/team/app:1.0) against policy.yaml (test): "
                        "4 rules")
    # the decision last, counted by kind; STOPs first, each with its fix
    assert lines[-1] == "STOP: 2 findings must be fixed before this image can be pushed (1 root user, 1 secret); " \
        "1 warning"
    assert lines[1].startswith("STOP  Runs as root [rules: root]")
    assert lines[2].startswith("      fix: Add `USER 10001:10001` after the last RUN")
    assert any(line.startswith("WARN  No HEALTHCHECK") for line in lines)
    # allowlisted (GO) rows and trigger ids only with --verbose
    assert "su-ok" not in text and "1 finding covered by exceptions (--verbose lists them)" in text
    verbose = render_plain(result, verbose=True)
    assert "GO    setuid/setgid file /usr/bin/su [exception al/su-ok: needed]" in verbose
    assert "trigger ids:" in verbose
    assert SECRET not in text and SECRET not in verbose
    render_rich(result)
    rich_text = capsys.readouterr().out
    assert rich_text.rstrip().splitlines()[-1].startswith("STOP: 2 findings must be fixed")
    assert SECRET not in rich_text
