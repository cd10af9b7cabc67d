"""The anchore backend against a stand-in server answering exactly as Anchore's API specs document.

Both API versions, both error shapes, the analysis_status lifecycle over successive polls, the
check's top-level final action, and the faults a CI run meets (5xx bursts, 429 Retry-After,
connection resets, analysis_failed, a never-ending analysis, wrong credentials, a wrong account).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_gate.backends.anchore import AnchoreBackend, ci_annotations, parse_target
from ci_gate.backends.interface import AnchoreOptions, BackendRequest
from ci_gate.errors import BackendError
from ci_gate.http import RetryPolicy
from tests.backends.anchore_standin import DIGEST, IMAGE_ID, POLICY_ID, RULE_SET_ID, AnchoreStandIn, Fault

PASSWORD = "s3cret-Passw0rd"
TAG = "registry.example.com/app:1.2.3"
FAST_RETRY = RetryPolicy(attempts=5, backoff_initial=0.01, backoff_max=0.05, retry_after_max=2.0)


@pytest.fixture(params=["v2", "v1"])
def server(request: pytest.FixtureRequest) -> Iterator[AnchoreStandIn]:
    with AnchoreStandIn(version=request.param).running() as stand_in:
        yield stand_in


def _run(server: AnchoreStandIn, image: str = f"registry:{TAG}", *, url_suffix: str | None = None,
         options: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
         dockerfile: Path | None = None, policy: str = "builtin:default") -> tuple[Any, list[str]]:
    lines: list[str] = []
    suffix = f"/{server.version}" if url_suffix is None else url_suffix
    settings = {"url": server.url + suffix, "username": "admin", "password": PASSWORD, "poll_interval": 0.05,
                "timeout": 20.0, **(options or {})}
    backend = AnchoreBackend(environ=environ or {}, log=lines.append, retry=FAST_RETRY)
    request = BackendRequest(image=image, dockerfile=dockerfile, policy=policy, anchore=AnchoreOptions(**settings))
    return backend.run(request), lines


def _posts(server: AnchoreStandIn) -> list[tuple[str, str, dict[str, Any], Any]]:
    return [r for r in server.requests if r[0] == "POST"]


def test_full_flow_maps_the_check_into_the_model(server: AnchoreStandIn, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine:3.14\nEXPOSE 22\nUSER app\n")
    result, lines = _run(server, dockerfile=dockerfile,
                         environ={"GITLAB_CI": "true", "CI_PIPELINE_URL": "https://gitlab.example.com/p/-/pipelines/7",
                                  "CI_COMMIT_SHA": "f" * 40})
    evaluation, analysis = result.evaluation, result.analysis

    # Submitted once, by tag, in the version's own key names, with the Dockerfile and CI annotations.
    [(_, path, query, body)] = _posts(server)
    assert path == f"/{server.version}/images"
    pull_key = "pull_string" if server.version == "v2" else "pullstring"
    assert body["source"]["tag"][pull_key] == TAG
    assert base64.b64decode(body["source"]["tag"]["dockerfile"]) == dockerfile.read_bytes()
    assert body["annotations"]["pipeline_url"] == "https://gitlab.example.com/p/-/pipelines/7"
    assert body["annotations"]["commit"] == "f" * 40
    assert query["force"] == "false"
    assert ("auto_subscribe" if server.version == "v2" else "autosubscribe") in query

    # Each state change logged once, in order, and the check asked with detail for the tag.
    states = [line.split()[3] for line in lines if line.startswith("ci-gate: anchore: sha256:")]
    assert states == ["not_analyzed", "analyzing", "analyzed"]
    [check] = [r for r in server.requests if r[1].endswith("/check")]
    assert check[2]["tag"] == TAG and check[2]["detail"] == "true"

    assert evaluation.final_action == "STOP"
    assert evaluation.final_action_reason == "policy_evaluation"
    assert evaluation.policy_id == POLICY_ID
    assert evaluation.backend == "anchore"
    assert evaluation.matched_mapping == "default"
    by_id = {finding.trigger_id: finding for finding in evaluation.findings}
    assert set(by_id) == {"CVE-2021-3711+libssl1.1", "ports+22"}
    vulnerability = by_id["CVE-2021-3711+libssl1.1"]
    assert (vulnerability.gate, vulnerability.trigger, vulnerability.action) == ("vulnerabilities", "package", "STOP")
    assert vulnerability.rule_set_id == RULE_SET_ID and vulnerability.rule_id == "b30e8abc-444f-45b1-8a37-55be1b8c8bb5"
    assert vulnerability.vulnerability is not None
    assert vulnerability.vulnerability.severity == "critical"
    assert vulnerability.vulnerability.cvss_score == 9.8
    assert vulnerability.vulnerability.fixed_versions == ("1.1.1l-r0",)
    # The allowlisted finding: shown "go" by the server, the rule's own action (STOP) in the model.
    port = by_id["ports+22"]
    assert port.allowlisted is not None and port.allowlisted.item_id == "rule1"
    assert port.action == "STOP" and port.effective_action == "GO"
    assert {rule.rule_id for rule in evaluation.rules} == {"ce7b8000-829b-4c27-8122-69cd59018400",
                                                           "b30e8abc-444f-45b1-8a37-55be1b8c8bb5"}

    assert analysis.identity.manifest_digest == DIGEST
    assert analysis.identity.config_digest == f"sha256:{IMAGE_ID}"
    assert analysis.identity.repo_tags == (TAG,)
    assert analysis.distro is not None and (analysis.distro.id, analysis.distro.version_id) == ("alpine", "3.14.2")
    assert [(p.name, p.version, p.type) for p in analysis.packages] == [("libssl1.1", "1.1.1k-r0", "apk")]
    assert [i.instruction for i in analysis.dockerfile.instructions] == ["FROM", "EXPOSE", "USER"]


@pytest.mark.parametrize(("reason", "final", "policy_action", "expected"), [
    ("allowlisted", "go", "stop", "GO"), ("denylisted", "stop", "go", "STOP")])
def test_the_top_level_final_action_decides(server: AnchoreStandIn, reason: str, final: str, policy_action: str,
                                            expected: str) -> None:
    server.final_action, server.final_action_reason, server.policy_action = final, reason, policy_action
    result, _ = _run(server)
    assert result.evaluation.final_action == expected
    assert result.evaluation.final_action_reason == reason
    assert result.evaluation.policy_action == policy_action.upper()
    assert result.evaluation.matched_image_rule


def test_the_version_is_detected_when_the_url_has_none(server: AnchoreStandIn) -> None:
    result, lines = _run(server, url_suffix="", policy="builtin:dod")
    assert result.evaluation.final_action == "STOP"
    assert any("--policy builtin:dod is not used" in warning for warning in result.evaluation.warnings)
    assert any(f"({server.version} API" in line for line in lines)
    assert all(path.startswith(("/v2/", "/v1/")) for _, path, _, _ in server.requests)


def test_an_analysed_digest_is_not_reanalysed_unless_forced(server: AnchoreStandIn) -> None:
    new = "sha256:" + "34" * 32  # unknown to the server: submitted without force (v1 refuses force there)
    _run(server, image=f"registry.example.com/app:1.2.3@{new}", options={"force": True})
    assert [query["force"] for _, _, query, _ in _posts(server)] == ["false"]
    server.requests.clear()
    digest = "sha256:" + "12" * 32
    server.known[digest] = {"polls": 0, "tag": TAG, "annotations": {}, "dockerfile": None}
    server.states = ["analyzed"]
    result, lines = _run(server, image=f"registry.example.com/app:1.2.3@{digest}")
    assert result.evaluation.image_digest == digest
    assert _posts(server) == []
    assert any("already analysed" in line for line in lines)

    _run(server, image=f"registry.example.com/app:1.2.3@{digest}", options={"force": True})
    [(_, _, query, body)] = _posts(server)
    assert query["force"] == "true"
    pull_key = "pull_string" if server.version == "v2" else "pullstring"
    assert body["source"]["digest"] == {pull_key: f"registry.example.com/app@{digest}", "tag": TAG}


def test_a_dockerfile_for_a_known_image_falls_back_to_the_existing_analysis(server: AnchoreStandIn,
                                                                              tmp_path: Path) -> None:
    server.known[DIGEST] = {"polls": 0, "tag": TAG, "annotations": {}, "dockerfile": None}
    server.states = ["analyzed"]
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine\n")
    result, _ = _run(server, dockerfile=dockerfile)
    posts = _posts(server)
    assert len(posts) == 2 and "dockerfile" not in posts[1][3]["source"]["tag"]
    assert any("--force re-analyses" in warning for warning in result.evaluation.warnings)


def test_5xx_bursts_429_and_resets_are_ridden_out(server: AnchoreStandIn) -> None:
    image_path = rf"/{server.version}/images/sha256:[0-9a-f]+"
    server.fault(rf"/{server.version}/images", Fault(429, headers={"Retry-After": "1"}), Fault(reset=True))
    server.fault(image_path, Fault(503), Fault(502), Fault(500), Fault(reset=True), Fault(504))
    # A longer outage than one request's retries: the poll loop keeps waiting within --timeout.
    server.fault(image_path, *[Fault(reset=True)] * 6)
    result, lines = _run(server)
    assert result.evaluation.final_action == "STOP"
    assert len(_posts(server)) == 3
    assert all(not queue for queue in server.faults.values())
    assert any("still waiting" in line for line in lines)


def test_analysis_failed_stops_at_once_with_the_servers_reason(server: AnchoreStandIn) -> None:
    server.states = ["not_analyzed", "analyzing", "analysis_failed", "analyzed"]
    with pytest.raises(BackendError) as raised:
        _run(server)
    message = str(raised.value)
    assert "analysis_failed" in message and "--force" in message
    if server.version == "v2":
        assert server.failure_detail in message
    polls = [r for r in server.requests if r[0] == "GET" and r[1].startswith(f"/{server.version}/images/")]
    assert len(polls) == 3  # not one poll after the failure


def test_an_analysis_that_never_finishes_times_out(server: AnchoreStandIn) -> None:
    server.states = ["not_analyzed", "analyzing"]
    with pytest.raises(BackendError) as raised:
        _run(server, options={"timeout": 0.5, "poll_interval": 0.1})
    assert "did not finish analysing" in str(raised.value)
    assert "last status: analyzing" in str(raised.value) and "--timeout" in str(raised.value)


def test_wrong_credentials_wrong_account_and_no_policy(server: AnchoreStandIn) -> None:
    with pytest.raises(BackendError) as raised:
        _run(server, options={"password": "wrong-password"})
    assert "HTTP 401" in str(raised.value) and "ANCHORE_PASS" in str(raised.value)
    assert "wrong-password" not in str(raised.value)

    server.users["_api_key"] = "key-value-123"
    with pytest.raises(BackendError) as raised:
        _run(server, options={"username": "_api_key", "password": "expired-key"})
    assert "API key was rejected" in str(raised.value)
    result, _ = _run(server, options={"username": "_api_key", "password": "key-value-123"})
    assert result.evaluation.final_action == "STOP"

    with pytest.raises(BackendError) as raised:
        _run(server, options={"account": "nobody"})
    assert "HTTP 403" in str(raised.value) and "'nobody'" in str(raised.value)
    assert "x-anchore-account" in str(raised.value)
    result, _ = _run(server, options={"account": "team-a"})
    assert result.evaluation.final_action == "STOP"

    server.active_policy = False
    with pytest.raises(BackendError) as raised:
        _run(server)
    assert "no active policy" in str(raised.value) and "--anchore-policy-id" in str(raised.value)
    result, _ = _run(server, options={"policy_id": POLICY_ID})
    assert not any("--policy" in warning for warning in result.evaluation.warnings)
    check = [r for r in server.requests if r[1].endswith("/check")][-1]
    assert check[2][("policy_id" if server.version == "v2" else "policyId")] == POLICY_ID


def test_connection_settings_come_from_anchorectl_names() -> None:
    with AnchoreStandIn().running() as server:
        lines: list[str] = []
        environ = {"ANCHORECTL_URL": server.url + "/v2", "ANCHORECTL_USERNAME": "admin",
                   "ANCHORECTL_PASSWORD": PASSWORD}
        backend = AnchoreBackend(environ=environ, log=lines.append, retry=FAST_RETRY)
        result = backend.run(BackendRequest(image=TAG, anchore=AnchoreOptions(poll_interval=0.05)))
        assert result.evaluation.final_action == "STOP"
    with pytest.raises(BackendError, match="ANCHORE_URL"):
        AnchoreBackend(environ={}).run(BackendRequest(image=TAG))


def test_references_and_annotations() -> None:
    assert parse_target(f"registry:{TAG}", None).pull_string == TAG
    pinned = parse_target(f"registry.example.com/app@{DIGEST}", "registry.example.com/app:1")
    assert (pinned.digest, pinned.tag) == (DIGEST, "registry.example.com/app:1")
    assert parse_target("127.0.0.1:5000/app", None).tag == "127.0.0.1:5000/app:latest"
    for bad in ("oci-dir:/tmp/x", f"registry.example.com/app@{DIGEST}", "app@sha256:12"):
        with pytest.raises(BackendError):
            parse_target(bad, None)
    github = ci_annotations({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "9",
                             "GITHUB_SHA": "abc", "GITHUB_REF": "refs/pull/42/merge"})
    assert github["pipeline_url"] == "https://github.com/o/r/actions/runs/9"
    assert github["merge_request"] == "https://github.com/o/r/pull/42"
    jenkins = ci_annotations({"BUILD_URL": "https://ci/job/1/", "GIT_COMMIT": "def", "CHANGE_URL": "https://pr/3"})
    assert (jenkins["ci"], jenkins["commit"], jenkins["merge_request"]) == ("jenkins", "def", "https://pr/3")


# --- through the command line ------------------------------------------------------------------


def _cli(server: AnchoreStandIn, tmp_path: Path, *arguments: str, password: str = PASSWORD
         ) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("ANCHORE", "CI_GATE_", "GITHUB_", "GITLAB", "CI_"))}
    environment.update({"ANCHORE_URL": server.url, "ANCHORE_USER": "admin", "ANCHORE_PASS": password, "CI": "true"})
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", f"registry:{TAG}", "--backend", "anchore",
                           "--poll-interval", "0.05", *arguments],
                          capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120)


def test_cli_exit_codes_reports_and_no_secret(tmp_path: Path) -> None:
    with AnchoreStandIn().running() as server:
        report = tmp_path / "evaluation.json"
        stopped = _cli(server, tmp_path, "--json", str(report))
        assert stopped.returncode == 1, stopped.stderr
        document = json.loads(report.read_text())
        assert document["evaluations"][0]["final_action"] == "stop"
        assert {f["trigger_id"] for f in document["evaluations"][0]["details"]["findings"]} == {
            "CVE-2021-3711+libssl1.1", "ports+22"}
        assert document["ci_gate"]["backend"] == "anchore"
        assert "analyzed" in stopped.stderr

        server.final_action, server.final_action_reason = "go", "allowlisted"
        assert _cli(server, tmp_path).returncode == 0

        wrong = _cli(server, tmp_path, password="Wr0ng-Secret-Value")
        assert wrong.returncode == 2
        assert "HTTP 401" in wrong.stderr and "ANCHORE_USER / ANCHORE_PASS" in wrong.stderr
        assert "Wr0ng-Secret-Value" not in wrong.stdout + wrong.stderr
        assert "Traceback" not in wrong.stderr

        server.states = ["not_analyzed", "analyzing"]
        server.known.clear()
        slow = _cli(server, tmp_path, "--timeout", "0.5")
        assert slow.returncode == 2
        assert "did not finish analysing" in slow.stderr
        assert PASSWORD not in slow.stdout + slow.stderr
