"""Sticky comments against the GitHub and GitLab stand-ins: one comment per image after N runs,
pagination, 429/5xx with Retry-After, commit-then-fail creates, slow answers, two concurrent jobs,
read-only fork tokens and missing tokens falling back to the job summary."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
from pathlib import Path

import pytest
from comment_api_servers import FakeGitHub, FakeGitLab, Fault
from report_samples import SECRET_VALUE, sample_analysis, sample_evaluation

from ci_gate.gate import ReportTargets
from ci_gate.publish import detect_provider, publish_comment
from ci_gate.publish.github import GitHubComments, PullRequest, annotation_lines
from ci_gate.publish.gitlab import GitLabNotes, MergeRequest
from ci_gate.publish.interface import PublishTransient, RetryBudget, marker_for, upsert_comment

FAST = RetryBudget(total_seconds=20, attempts=6, backoff_initial=0.05, backoff_max=0.2, retry_after_max=1.0)
PATIENT = dataclasses.replace(FAST, total_seconds=120)
"""For the two-jobs races: the stand-in's barrier may hold a list call up to 60 s on a loaded machine."""
MARKER = "<!-- ci-gate:comment image=registry.example.com/team/app -->"


@pytest.fixture()
def github():
    with FakeGitHub() as server:
        yield server


@pytest.fixture()
def gitlab():
    with FakeGitLab() as server:
        yield server


def github_env(server: FakeGitHub, tmp_path: Path, token: str = FakeGitHub.TOKEN) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": server.number}}))
    summary = tmp_path / "summary.md"
    output = tmp_path / "output.txt"
    summary.touch()
    output.touch()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": server.repository, "GITHUB_API_URL": server.url,
           "GITHUB_EVENT_PATH": str(event), "GITHUB_REF": f"refs/pull/{server.number}/merge",
           "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output), "CI_GATE_PUBLISH_TIMEOUT": "20",
           "GITHUB_RUN_ID": "4242", "GITHUB_SERVER_URL": "https://github.com"}
    if token:
        env["GITHUB_TOKEN"] = token
    return env


def gitlab_env(server: FakeGitLab, token: str = FakeGitLab.TOKEN) -> dict[str, str]:
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": server.api_url, "CI_PROJECT_ID": "999",
           "CI_MERGE_REQUEST_PROJECT_ID": server.project, "CI_MERGE_REQUEST_IID": str(server.iid),
           "CI_JOB_TOKEN": "job-token-cannot-write-notes", "CI_GATE_PUBLISH_TIMEOUT": "20"}
    if token:
        env["CI_GATE_GITLAB_TOKEN"] = token
    return env


def publish(env, evaluation=None, analysis=None, mode="auto", budget=FAST, **kwargs):
    out = io.StringIO()
    notes = publish_comment(evaluation or sample_evaluation(), analysis or sample_analysis(), mode, env=env,
                            stream=out, budget=budget, **kwargs)
    return notes, out.getvalue()


# --- GitHub --------------------------------------------------------------------------------------


def test_github_one_comment_after_many_runs_across_pages(github, tmp_path):
    for number in range(230):  # other people's comments: the marker one is on page 3
        github.add_comment(f"review comment {number}")
    env = github_env(github, tmp_path)
    notes, _ = publish(env)
    assert any(note.startswith("created the ci-gate comment") for note in notes), notes
    first_id = max(github.comments)
    for tag in ("1.4.3", "1.4.4", "1.4.5"):
        rebuilt = sample_evaluation(tag=f"registry.example.com/team/app:{tag}")
        notes, _ = publish(env, evaluation=rebuilt)
        assert any("updated the ci-gate comment" in note for note in notes), notes
    bodies = github.bodies_with(MARKER)
    assert len(bodies) == 1 and "app:1.4.5" in bodies[0]
    assert "[workflow run](https://github.com/acme/app/actions/runs/4242)" in bodies[0]
    assert first_id in github.comments and len(github.comments) == 231
    assert github.count("POST") == 1
    assert any("page=3" in path for method, path in github.requests if method == "GET")


def test_github_other_image_gets_its_own_comment(github, tmp_path):
    env = github_env(github, tmp_path)
    publish(env)
    other = "registry.example.com/team/worker:2"
    publish(env, evaluation=sample_evaluation(tag=other), analysis=sample_analysis(tag=other))
    publish(env)
    assert len(github.comments) == 2
    assert len(github.bodies_with("image=registry.example.com/team/worker -->")) == 1


def test_github_retries_429_and_5xx_with_retry_after(github, tmp_path):
    github.faults = [Fault("GET", 429, {"Retry-After": "1"}), Fault("GET", 503, {"Retry-After": "0"}),
                     Fault("POST", 502, {"Retry-After": "0"}), Fault("GET", 500)]
    notes, _ = publish(github_env(github, tmp_path))
    assert any("created the ci-gate comment" in note for note in notes), notes
    assert len(github.bodies_with(MARKER)) == 1
    assert not github.faults  # every injected failure was met and survived


def test_github_create_that_succeeded_but_answered_502_is_not_duplicated(github, tmp_path):
    github.faults = [Fault("POST", 502, {"Retry-After": "0"}, commit=True)]
    notes, _ = publish(github_env(github, tmp_path))
    assert len(github.bodies_with(MARKER)) == 1, notes
    assert github.count("POST") == 1  # the retry re-listed and found it instead of posting again


def test_github_slow_create_past_the_timeout_is_not_duplicated(github):
    github.faults = [Fault("POST", delay=5.0, commit=True)]
    pull = PullRequest(api_url=github.url, repository=github.repository, number=github.number,
                       token=FakeGitHub.TOKEN)
    api = GitHubComments(pull, timeout=2.0)
    result = upsert_comment(api, MARKER, "body", FAST)
    assert result.action == "unchanged"  # the timed-out create had gone through; the re-list found it
    assert len(github.bodies_with(MARKER)) == 1 and github.count("POST") == 1


def test_github_slow_answers_within_the_timeout_are_fine(github, tmp_path):
    github.faults = [Fault("GET", delay=0.5), Fault("POST", delay=0.5), Fault("GET", delay=0.5)]
    publish(github_env(github, tmp_path))
    assert len(github.bodies_with(MARKER)) == 1


def test_github_two_concurrent_jobs_end_with_one_comment(github, tmp_path):
    github.list_barrier = threading.Barrier(2)  # both jobs list before either creates
    env = github_env(github, tmp_path)
    results: list[list[str]] = []

    def job() -> None:
        results.append(publish(env, budget=PATIENT)[0])

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    github.list_barrier = None
    assert github.count("POST") == 2  # the race really happened
    assert len(github.bodies_with(MARKER)) == 1, results
    publish(env)
    assert len(github.bodies_with(MARKER)) == 1


def test_github_fork_token_falls_back_to_step_summary(github, tmp_path):
    env = github_env(github, tmp_path, token=FakeGitHub.FORK_TOKEN)
    notes, out = publish(env)
    assert any(n.startswith("warning: could not comment") and "403" in n and "job summary" in n for n in notes)
    assert github.comments == {}
    assert "ci-gate: **STOP**" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert FakeGitHub.FORK_TOKEN not in " ".join(notes) + out


def test_github_missing_token_warns_never_fails(github, tmp_path):
    notes, _ = publish(github_env(github, tmp_path, token=""))
    assert any("no token" in note and note.startswith("warning") for note in notes)
    assert github.requests == []


def test_github_outputs_summary_and_annotations(github, tmp_path):
    env = github_env(github, tmp_path)
    targets = ReportTargets(junit=Path("out/junit.xml"), sarif=Path("out/ci-gate.sarif"))
    notes, out = publish(env, mode="off", reports=targets)
    assert github.requests == [] and notes == []
    outputs = parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["final-action"] == "STOP" and outputs["stop-count"] == "6" and outputs["warn-count"] == "3"
    assert outputs["sarif-file"] == "out/ci-gate.sarif" and outputs["junit-file"] == "out/junit.xml"
    assert "json-file" not in outputs
    lines = out.splitlines()
    # The image's name, never its digest, in the title; the verdict counted by kind in the message.
    assert lines[0].startswith("::error title=ci-gate%3A STOP for registry.example.com/team/app%3A1.4.2::5 findings "
                               "must be fixed before this image can be pushed (")
    assert "sha256" not in lines[0]
    ports = next(line for line in lines if line.startswith("::error file=Dockerfile,line=6,"))
    assert ports.startswith("::error file=Dockerfile,line=6,title=ci-gate STOP%3A dockerfile/exposed_ports%3A 22::")
    assert "How to fix: Remove 22 from EXPOSE (Dockerfile line 6)" in ports
    assert any(line.startswith("::error file=Dockerfile,line=3,") for line in lines)
    assert SECRET_VALUE not in out and SECRET_VALUE not in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_annotations_are_capped_per_level():
    from report_samples import many_findings

    evaluation = many_findings(40)
    findings = tuple(f.__class__(**{**{n: getattr(f, n) for n in f.__dataclass_fields__}, "dockerfile_line": 4})
                     for f in evaluation.findings)
    evaluation = evaluation.__class__(**{**{n: getattr(evaluation, n) for n in evaluation.__dataclass_fields__},
                                         "findings": findings})
    lines = annotation_lines(evaluation, sample_analysis())
    assert sum(1 for line in lines if line.startswith("::error")) == 10
    assert sum(1 for line in lines if line.startswith("::warning")) == 10
    assert any(line.startswith("::notice") and "more error annotations" in line for line in lines)


def parse_github_output(text: str) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        outputs[name] = "\n".join(value)
    return outputs


# --- GitLab --------------------------------------------------------------------------------------


def test_gitlab_one_note_after_many_runs_across_pages(gitlab):
    for number in range(130):
        gitlab.add_comment(f"discussion {number}")
        gitlab.add_comment(f"added {number} commits", author="bot", system=True)
    gitlab.add_comment(f"system note mentioning {MARKER}", system=True)  # never touched
    env = gitlab_env(gitlab)
    for _ in range(4):
        notes, _ = publish(env)
        assert any("ci-gate comment on GitLab merge request group/app!3" in note for note in notes), notes
    user_notes = [c for c in gitlab.comments.values() if MARKER in c["body"] and not c["system"]]
    assert len(user_notes) == 1
    assert len(gitlab.comments) == 262
    assert gitlab.count("POST") == 1
    assert any("page=3" in path for method, path in gitlab.requests if method == "GET")
    assert all("group%2Fapp" in path for _, path in gitlab.requests)


def test_gitlab_retries_and_commit_then_fail(gitlab):
    gitlab.faults = [Fault("GET", 429, {"Retry-After": "1"}), Fault("POST", 500, commit=True),
                     Fault("PUT", 503, {"Retry-After": "0"})]
    env = gitlab_env(gitlab)
    publish(env)
    publish(env, evaluation=sample_evaluation(tag="registry.example.com/team/app:9"))
    bodies = gitlab.bodies_with(MARKER)
    assert len(bodies) == 1 and "app:9" in bodies[0]
    assert gitlab.count("POST") == 1 and not gitlab.faults


def test_gitlab_two_concurrent_jobs_end_with_one_note(gitlab):
    gitlab.list_barrier = threading.Barrier(2)
    env = gitlab_env(gitlab)
    threads = [threading.Thread(target=publish, args=(env,), kwargs={"budget": PATIENT}) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    gitlab.list_barrier = None
    assert gitlab.count("POST") == 2
    assert len(gitlab.bodies_with(MARKER)) == 1


def test_gitlab_forbidden_and_missing_token_fall_back_to_the_log(gitlab):
    notes, out = publish(gitlab_env(gitlab, token=FakeGitLab.FORK_TOKEN))
    assert any(n.startswith("warning") and "403" in n and "job log" in n for n in notes), notes
    assert "section_start" in out and "ci-gate: **STOP**" in out
    notes, _ = publish(gitlab_env(gitlab, token=""))
    assert any("CI_JOB_TOKEN cannot write notes" in n for n in notes)
    assert gitlab.comments == {}
    assert FakeGitLab.FORK_TOKEN not in " ".join(notes) + out


def test_gitlab_gives_up_within_the_budget_on_a_broken_api(gitlab):
    gitlab.faults = [Fault("GET", 503, {"Retry-After": "0"}) for _ in range(100)]
    merge_request = MergeRequest(api_url=gitlab.api_url, project=gitlab.project, iid=gitlab.iid,
                                 token=FakeGitLab.TOKEN)
    with pytest.raises(PublishTransient):
        upsert_comment(GitLabNotes(merge_request), MARKER, "x",
                       RetryBudget(total_seconds=5, attempts=3, backoff_initial=0.01, backoff_max=0.01))
    notes, _ = publish(gitlab_env(gitlab))
    assert any(note.startswith("warning: could not comment") for note in notes)
    assert gitlab.comments == {}


# --- detection -----------------------------------------------------------------------------------


def test_detect_provider_from_ci_variables():
    assert detect_provider({"GITHUB_ACTIONS": "true"}) == "github"
    assert detect_provider({"GITLAB_CI": "true"}) == "gitlab"
    assert detect_provider({"CHANGE_ID": "5", "CHANGE_URL": "https://github.com/acme/app/pull/5"}) == "github"
    assert detect_provider({"CHANGE_ID": "5", "CHANGE_URL": "https://gl.example/g/app/-/merge_requests/5"}) == "gitlab"
    assert detect_provider({"JENKINS_URL": "http://jenkins"}) is None
    assert detect_provider({}) is None


def test_jenkins_change_request_comments_through_the_right_api(github, gitlab):
    env = {"JENKINS_URL": "http://jenkins", "CHANGE_ID": "7", "CHANGE_URL": "https://github.com/acme/app/pull/7",
           "GITHUB_API_URL": github.url, "CI_GATE_GITHUB_TOKEN": FakeGitHub.TOKEN}
    notes, _ = publish(env)
    assert len(github.bodies_with(MARKER)) == 1, notes
    env = {"JENKINS_URL": "http://jenkins", "CHANGE_ID": "3",
           "CHANGE_URL": f"{gitlab.url}/group/app/-/merge_requests/3", "CI_GATE_GITLAB_TOKEN": FakeGitLab.TOKEN}
    notes, _ = publish(env)
    assert len(gitlab.bodies_with(MARKER)) == 1, notes


def test_no_ci_detected_is_a_note_not_an_error():
    notes, out = publish({}, mode="auto")
    assert notes == ["--comment auto: no GitHub Actions, GitLab CI or Jenkins change request detected; "
                     "no comment posted"]
    assert out == ""


def test_marker_cannot_be_broken_by_the_image_name():
    marker = marker_for("evil --> <script>")
    assert marker.count("-->") == 1 and "<script>" not in marker


def test_branch_pipelines_have_nothing_to_comment_on_and_no_warning(github, gitlab, tmp_path):
    env = github_env(github, tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text("{}")
    env["GITHUB_REF"] = "refs/heads/main"
    notes, _ = publish(env)
    assert notes == ["this job is not for a pull request; no comment posted"]
    assert "ci-gate: **STOP**" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()  # the summary still is
    env = gitlab_env(gitlab)
    del env["CI_MERGE_REQUEST_IID"]
    notes, out = publish(env)
    assert notes == ["this job is not for a merge request (no CI_MERGE_REQUEST_IID); no comment posted"]
    assert github.requests == [] and gitlab.requests == [] and out == ""


def test_step_summary_stays_within_one_mebibyte(tmp_path):
    from ci_gate.publish.github import STEP_SUMMARY_LIMIT, write_step_summary

    summary = tmp_path / "summary.md"
    write_step_summary(summary, "x" * 700_000)
    write_step_summary(summary, "é" * 700_000)  # two bytes each: must be cut on a character boundary
    data = summary.read_bytes()
    assert len(data) <= STEP_SUMMARY_LIMIT
    assert data.decode("utf-8").rstrip().endswith("see the reports)")
