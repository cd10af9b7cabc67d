"""`--comment review`: suggested Dockerfile fixes as pull-request review comments, against the GitHub
stand-in (which accepts a review comment only on the head commit, on a file of the pull request and on a
line of one of its hunks, as GitHub does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comment_api_servers import FakeGitHub
from report_samples import AWS_KEY_ID, SECRET_VALUE, sample_analysis, sample_evaluation

from ci_gate.publish import publish_comment
from ci_gate.publish.interface import RetryBudget
from ci_gate.publish.review import diff_lines

FAST = RetryBudget(total_seconds=20, attempts=6, backoff_initial=0.05, backoff_max=0.2, retry_after_max=1.0)
NEW_DOCKERFILE = "@@ -0,0 +1,7 @@\n" + "\n".join(f"+line {n}" for n in range(1, 8))
"""The pull request adds the whole 7-line Dockerfile of the sample analysis."""


@pytest.fixture()
def github():
    with FakeGitHub() as server:
        yield server


def env_for(server: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": server.number, "head": {"sha": server.head_sha}}}))
    return {"GITHUB_REPOSITORY": server.repository, "GITHUB_API_URL": server.url, "GITHUB_EVENT_PATH": str(event),
            "GITHUB_TOKEN": FakeGitHub.TOKEN, "CI_GATE_PUBLISH_TIMEOUT": "20"}


def review(server: FakeGitHub, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    import io

    return publish_comment(sample_evaluation(), sample_analysis(), "review", env=env or env_for(server, tmp_path),
                           stream=io.StringIO(), budget=FAST)


def test_suggestion_posted_on_the_dockerfile_line_once(github, tmp_path):
    github.pull_files = [{"filename": "Dockerfile", "status": "added", "patch": NEW_DOCKERFILE}]
    notes = review(github, tmp_path)
    assert any(note.startswith("created the ci-gate comment") for note in notes), notes
    assert "--comment review: 1 suggestion posted, 0 updated on Dockerfile" in notes
    [comment] = github.review_comments.values()
    assert (comment["path"], comment["line"], comment["side"], comment["commit_id"]) == (
        "Dockerfile", 6, "RIGHT", github.head_sha)
    # EXPOSE 22 8080 → EXPOSE 8080, as a suggestion the author applies with one click
    assert "```suggestion\nEXPOSE 8080\n```" in comment["body"]
    assert "docs/fixing-findings.md" in comment["body"]
    # The next run updates nothing and adds nothing.
    notes = review(github, tmp_path)
    assert "--comment review: 0 suggestions posted, 0 updated on Dockerfile" in notes
    assert len(github.review_comments) == 1
    bodies = json.dumps(list(github.review_comments.values())) + json.dumps(list(github.comments.values()))
    assert SECRET_VALUE not in bodies and AWS_KEY_ID not in bodies


def test_changed_suggestion_updates_the_same_comment(github, tmp_path):
    github.pull_files = [{"filename": "Dockerfile", "status": "added", "patch": NEW_DOCKERFILE}]
    review(github, tmp_path)
    [comment_id] = github.review_comments
    github.review_comments[comment_id]["body"] = github.review_comments[comment_id]["body"].replace(
        "EXPOSE 8080", "EXPOSE 9999")
    notes = review(github, tmp_path)
    assert "--comment review: 0 suggestions posted, 1 updated on Dockerfile" in notes
    assert list(github.review_comments) == [comment_id]
    assert "```suggestion\nEXPOSE 8080\n```" in github.review_comments[comment_id]["body"]


def test_dockerfile_outside_the_pull_request_gets_no_review_comment(github, tmp_path):
    github.pull_files = [{"filename": "src/app.py", "status": "modified", "patch": "@@ -1 +1 @@\n-a\n+b"}]
    notes = review(github, tmp_path)
    assert "--comment review: Dockerfile is not part of the pull request's diff; its fixes are in the comment" in notes
    assert github.review_comments == {}
    assert any("#### Fix it in the Dockerfile" in c["body"] for c in github.comments.values())


def test_line_outside_the_hunks_is_not_attempted(github, tmp_path):
    # Only lines 1-3 changed: line 6 cannot carry a review comment (GitHub would answer 422).
    github.pull_files = [{"filename": "Dockerfile", "status": "modified",
                          "patch": "@@ -1,3 +1,3 @@\n FROM debian:bookworm\n-ENV A=1\n+ENV A=2\n \n"}]
    notes = review(github, tmp_path)
    assert "--comment review: the lines to fix in Dockerfile are not in the pull request's diff" in notes
    assert github.review_comments == {}
    assert not any(method == "POST" and "/pulls/" in path for method, path in github.requests)


def test_read_only_token_is_a_note_not_a_failure(github, tmp_path):
    github.pull_files = [{"filename": "Dockerfile", "status": "added", "patch": NEW_DOCKERFILE}]
    env = {**env_for(github, tmp_path), "GITHUB_TOKEN": FakeGitHub.FORK_TOKEN}
    notes = review(github, tmp_path, env)
    assert any(note.startswith("warning: could not comment") for note in notes), notes
    assert github.review_comments == {}


def test_diff_lines_follow_hunks():
    patch = ("@@ -1,4 +1,5 @@\n FROM a\n-RUN x\n+RUN y\n+RUN z\n USER 1\n"
             "@@ -20,2 +21,2 @@\n-EXPOSE 22\n+EXPOSE 80\n CMD x")
    assert diff_lines(patch) == {1, 2, 3, 4, 21, 22}


def test_dockerfile_given_by_absolute_path_is_found_in_the_pull_request(github, tmp_path):
    import io

    # `--dockerfile /home/runner/work/app/app/services/api/Dockerfile` reports name it `Dockerfile`
    github.pull_files = [{"filename": "services/api/Dockerfile", "status": "added", "patch": NEW_DOCKERFILE},
                         {"filename": "README.md", "status": "modified", "patch": "@@ -1 +1 @@\n-a\n+b"}]
    analysis = sample_analysis(dockerfile_path="/home/runner/work/app/app/services/api/Dockerfile")
    notes = publish_comment(sample_evaluation(), analysis, "review", env=env_for(github, tmp_path),
                            stream=io.StringIO(), budget=FAST)
    assert "--comment review: 1 suggestion posted, 0 updated on services/api/Dockerfile" in notes
    [comment] = github.review_comments.values()
    assert (comment["path"], comment["line"]) == ("services/api/Dockerfile", 6)
