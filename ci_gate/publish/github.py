"""GitHub: the pull-request comment (issues comments REST API) and the Actions extras.

REST calls (https://docs.github.com/en/rest/issues/comments):
    GET    {api}/repos/{owner}/{repo}/issues/{number}/comments?per_page=100   (Link: rel="next")
    POST   {api}/repos/{owner}/{repo}/issues/{number}/comments                {"body": …}
    PATCH  {api}/repos/{owner}/{repo}/issues/comments/{comment_id}            {"body": …}
    DELETE {api}/repos/{owner}/{repo}/issues/comments/{comment_id}
Headers: Authorization: Bearer <token>, Accept: application/vnd.github+json,
X-GitHub-Api-Version: 2022-11-28.

Actions extras (docs "Workflow commands"): the job summary appended to `GITHUB_STEP_SUMMARY`
(1 MiB per step), step outputs in `GITHUB_OUTPUT` (final action, counts, report paths), and
`::error file=…,line=…::` / `::warning …` annotations for findings that map to a Dockerfile line
(GitHub shows 10 of each per step, so we emit at most that many and say how many more there are).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

import requests

from ci_gate.fileio import append_output
from ci_gate.model import Analysis, Evaluation
from ci_gate.publish.interface import Comment, NoChangeRequest, require_change_request
from ci_gate.publish.rest import RestClient, RestComments, call
from ci_gate.redaction import escape_control
from ci_gate.reports.advice import recommendation
from ci_gate.reports.common import counts, dockerfile_uri, finding_text, finding_title, image_display_name, worst_first
from ci_gate.reports.issues import category_counts, issues

COMMENT_LIMIT = 65_536
"""GitHub: "body is too long (maximum is 65536 characters)"."""
ANNOTATIONS_PER_LEVEL = 10


@dataclass(frozen=True)
class PullRequest:
    """Which pull request to comment on, and with what."""

    api_url: str
    """e.g. https://api.github.com or https://ghe.example.com/api/v3"""
    repository: str
    """owner/repo"""
    number: int
    """The pull request number."""
    token: str
    """A token allowed to write issue comments; never logged."""


def pull_request_from_env(env: Mapping[str, str]) -> PullRequest | NoChangeRequest:
    """The pull request of this job, or why there is none."""
    token = env.get("CI_GATE_GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or ""
    repository = env.get("GITHUB_REPOSITORY", "")
    api_url = (env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    number = _pr_number(env)
    if env.get("CHANGE_ID") and env.get("CHANGE_URL") and not repository:  # Jenkins multibranch
        parsed = _parse_change_url(env["CHANGE_URL"])
        if parsed is None:
            return NoChangeRequest(f"CHANGE_URL {env['CHANGE_URL']!r} is not a GitHub pull request URL")
        host, repository, number = parsed
        if not env.get("GITHUB_API_URL"):
            api_url = "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
    if number is None:
        return NoChangeRequest("this job is not for a pull request", expected=True)
    if not repository:
        return NoChangeRequest("GITHUB_REPOSITORY is not set")
    if not token:
        return NoChangeRequest("no token: set GITHUB_TOKEN (or CI_GATE_GITHUB_TOKEN) with pull-requests: write")
    return PullRequest(api_url=api_url, repository=repository, number=number, token=token)


def _pr_number(env: Mapping[str, str]) -> int | None:
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = {}
        if isinstance(event, dict):
            pull = event.get("pull_request")
            if isinstance(pull, dict) and isinstance(pull.get("number"), int):
                return int(pull["number"])
            issue = event.get("issue")
            if isinstance(issue, dict) and issue.get("pull_request") and isinstance(issue.get("number"), int):
                return int(issue["number"])
    ref = env.get("GITHUB_REF", "")
    parts = ref.split("/")
    if len(parts) >= 3 and parts[0] == "refs" and parts[1] == "pull" and parts[2].isdigit():
        return int(parts[2])
    return None


def _parse_change_url(url: str) -> tuple[str, str, int] | None:
    """`https://github.com/owner/repo/pull/12` → (github.com, owner/repo, 12)."""
    try:
        _scheme, rest = url.split("://", 1)
    except ValueError:
        return None
    host, _, path = rest.partition("/")
    parts = path.strip("/").split("/")
    if len(parts) >= 4 and parts[2] == "pull" and parts[3].isdigit():
        return host, f"{parts[0]}/{parts[1]}", int(parts[3])
    return None


def api_headers(token: str) -> dict[str, str]:
    """The headers of every GitHub REST call ci-gate makes."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28"}


def repository_url(pull: PullRequest) -> str:
    """The REST address of the pull request's repository."""
    return f"{pull.api_url}/repos/{quote(pull.repository, safe='/')}"


class PullRequestClient(RestClient):
    """A client of one pull request's REST resources, based at the repository's address plus `resource`."""

    resource = ""

    def __init__(self, pull: PullRequest, session: requests.Session | None = None, timeout: float = 30.0):
        self.pull = pull
        super().__init__(f"GitHub pull request {pull.repository}#{pull.number}", api_headers(pull.token),
                         repository_url(pull) + self.resource, session, timeout)


class GitHubComments(PullRequestClient, RestComments):
    """The `CommentApi` over GitHub's issue comments (a pull request is an issue for comments)."""

    def list(self) -> list[Comment]:
        comments: list[Comment] = []
        url: str | None = self.collection_url()
        params: dict[str, str] | None = {"per_page": "100"}
        pages = 0
        while url and pages < 1_000:
            response = call(
                self.session, "GET", url, self.description, timeout=self.timeout, headers=self._headers, params=params
            )
            for item in response.json():
                comments.append(Comment(id=int(item["id"]), body=str(item.get("body") or "")))
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries the query
            pages += 1
        return comments

    def collection_url(self) -> str:
        return f"{self._base}/issues/{self.pull.number}/comments"

    def comment_url(self, comment_id: int) -> str:
        return f"{self._base}/issues/comments/{comment_id}"


def require_pull_request(env: Mapping[str, str]) -> PullRequest:
    return require_change_request(pull_request_from_env(env), "GitHub")


# --- Actions extras ------------------------------------------------------------------------------


STEP_SUMMARY_LIMIT = 1024 * 1024
"""Bytes per step summary; above it GitHub drops the whole summary with an error annotation."""


def write_step_summary(path: Path, markdown: str) -> None:
    """Append the job summary, cut so the step's summary file stays within GitHub's 1 MiB."""
    used = path.stat().st_size if path.exists() else 0
    data = (markdown.rstrip() + "\n").encode("utf-8")
    room = STEP_SUMMARY_LIMIT - used - 200
    if len(data) > room:
        note = "\n\n… (truncated to fit GitHub's 1 MiB step summary: see the reports)\n".encode()
        data = data[: max(room - len(note), 0)].decode("utf-8", errors="ignore").encode("utf-8") + note
        if room <= len(note):
            return  # another summary already filled this step's allowance
    append_output(path, data)


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs in the `name<<DELIMITER` form, safe for any value."""
    lines = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
        lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    append_output(path, "".join(lines))


def gate_outputs(evaluation: Evaluation, reports: Mapping[str, Path | None]) -> dict[str, str]:
    """The outputs a workflow can use: final action, counts, and the paths of the reports written."""
    tally = counts(evaluation)
    outputs = {
        "final-action": evaluation.final_action.upper(),
        "stop-count": str(tally.stop),
        "warn-count": str(tally.warn),
        "allowlisted-count": str(tally.allowlisted),
        "expired-exceptions": str(tally.expired),
        "findings-count": str(tally.total),
        "image-digest": evaluation.image_digest,
    }
    for name, path in reports.items():
        if path is not None:
            outputs[f"{name}-file"] = str(path)
    return outputs


def _escape_data(text: str) -> str:
    """GitHub's workflow-command escaping (%25, %0D, %0A), then every other control character (ESC,
    NUL, U+2028 ...) shown as an escape: a message can never end the command line early."""
    return escape_control(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_lines(evaluation: Evaluation, analysis: Analysis) -> list[str]:
    """Workflow-command lines: one per Dockerfile finding (≤10 per level) and one for a STOP."""
    lines: list[str] = []
    dockerfile = dockerfile_uri(analysis)
    emitted = {"error": 0, "warning": 0}
    skipped = {"error": 0, "warning": 0}
    if evaluation.final_action.upper() == "STOP":
        image = image_display_name(evaluation, analysis)
        found = issues([f for f in evaluation.findings if f.effective_action.upper() in ("STOP", "WARN")], analysis)
        stops = [issue for issue in found if issue.action == "STOP"]
        verdict = (
            f"{len(stops)} finding{'s' if len(stops) != 1 else ''} must be fixed before this image can be pushed "
            f"({category_counts(stops)}); how to fix each is in the job summary"
            if stops
            else "the policy says STOP; see the job summary"
        )
        lines.append(f"::error title={_escape_property(f'ci-gate: STOP for {image}')}::" + _escape_data(verdict))
        emitted["error"] += 1
    if dockerfile:
        for finding in worst_first(evaluation.findings):
            level = {"STOP": "error", "WARN": "warning"}.get(finding.effective_action.upper())
            if level is None or not finding.dockerfile_line:
                continue
            if emitted[level] >= ANNOTATIONS_PER_LEVEL:
                skipped[level] += 1
                continue
            title = f"ci-gate {finding.effective_action.upper()}: {finding_title(finding)}"
            message = f"{finding_text(analysis, finding)}. How to fix: {recommendation(finding, analysis)}"
            lines.append(
                f"::{level} file={_escape_property(dockerfile)},line={finding.dockerfile_line},"
                f"title={_escape_property(title)}::{_escape_data(message)}"
            )
            emitted[level] += 1
    for level, number in skipped.items():
        if number:
            lines.append(
                f"::notice title=ci-gate::{number} more {level} annotations not shown "
                "(GitHub displays 10 per step); see the job summary"
            )
    return lines


def emit_annotations(lines: list[str], stream: TextIO) -> None:
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"
