"""`--comment review`: suggested Dockerfile fixes as GitHub pull-request review comments.

When a finding maps to a line of the Dockerfile the user gave (`--dockerfile`) and ci-gate knows an
exact replacement (remove port 22 from EXPOSE, insert `USER 10001:10001` before CMD, ADD → COPY …),
the fix is posted on that line as a review comment with a ```suggestion block, which the author
applies with one click. GitHub accepts review comments only on lines that are part of the pull
request's diff, so the Dockerfile must be one of the pull request's files and the lines must be in
one of its hunks; other fixes stay in the sticky comment.

REST calls (docs.github.com/rest/pulls/comments and /rest/pulls/pulls):
    GET   {api}/repos/{owner}/{repo}/pulls/{number}                     head.sha (when the event lacks it)
    GET   {api}/repos/{owner}/{repo}/pulls/{number}/files?per_page=100  filename, patch   (Link: rel="next")
    GET   {api}/repos/{owner}/{repo}/pulls/{number}/comments?per_page=100
    POST  {api}/repos/{owner}/{repo}/pulls/{number}/comments
          {body, commit_id, path, line, side[, start_line, start_side]}
    PATCH {api}/repos/{owner}/{repo}/pulls/comments/{comment_id}  {body}

Each comment carries a hidden marker naming the image, the file and the line, so the next run updates
it instead of adding another one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci_gate.model import Analysis, Evaluation
from ci_gate.publish.github import PullRequestClient
from ci_gate.publish.rest import call
from ci_gate.reports.advice_table import FIXING_GUIDE_URL
from ci_gate.reports.common import dockerfile_uri, image_key
from ci_gate.reports.dockerfile_fixes import DockerfileFix, dockerfile_fixes
from ci_gate.reports.issues import issue_title, issues
from ci_gate.reports.markdown import escape_markdown

REVIEW_MARKER = "<!-- ci-gate:review "
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Suggestion:
    """One review comment to post: a replacement of `start_line`..`line` of `path`."""

    path: str
    start_line: int
    line: int
    body: str
    marker: str


def diff_lines(patch: str) -> set[int]:
    """The new-file line numbers a review comment may be placed on: added and context lines of the hunks."""
    lines: set[int] = set()
    current = 0
    for text in patch.splitlines():
        hunk = _HUNK.match(text)
        if hunk:
            current = int(hunk.group(1))
            continue
        if current == 0 or text.startswith("\\"):
            continue  # before the first hunk, or "\ No newline at end of file"
        if text.startswith("-"):
            continue  # only in the old file
        lines.add(current)
        current += 1
    return lines


def suggestions(evaluation: Evaluation, analysis: Analysis) -> list[Suggestion]:
    """The exact Dockerfile fixes of the STOP and WARN findings, one per changed line range."""
    path = dockerfile_uri(analysis)
    if path is None:
        return []
    in_force = [f for f in evaluation.findings if f.effective_action.upper() in ("STOP", "WARN")]
    merged = issues(in_force, analysis)
    owner = {id(finding): issue for issue in merged for finding in issue.findings}
    result = []
    for fix, findings in dockerfile_fixes(in_force, analysis, path, exact_only=True):
        titles = list(dict.fromkeys(issue_title(owner[id(f)], analysis) for f in findings))
        actions = {owner[id(f)].action for f in findings}
        action = "STOP" if "STOP" in actions else "WARN"
        marker = f"{REVIEW_MARKER}image={_safe(image_key(evaluation, analysis))} path={_safe(fix.path)} " \
                 f"line={fix.start_line} -->"
        result.append(Suggestion(fix.path, fix.start_line, fix.end_line, _body(fix, titles, action, marker), marker))
    return result


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/:@+-]", "_", text).replace("--", "-_")


def _body(fix: DockerfileFix, titles: list[str], action: str, marker: str) -> str:
    replacement = fix.replacement
    longest = max((len(run) for run in re.findall(r"`+", replacement)), default=0)
    fence = "`" * max(3, longest + 1)
    what = escape_markdown("; ".join(titles))  # paths and package names come from the image: text, not Markdown
    verb = "deletes this line" if not replacement else "fixes it"
    return (
        f"**ci-gate {action}**: {what}. This suggestion {verb}.\n\n"
        f"{fence}suggestion\n{replacement}\n{fence}\n\n"
        f"<sub>[Fixing ci-gate findings]({FIXING_GUIDE_URL})</sub>\n{marker}"
    )


class ReviewComments(PullRequestClient):
    """The pull request's files and review comments over GitHub's REST API."""

    resource = "/pulls"

    def _pages(self, url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        params: dict[str, str] | None = {"per_page": "100"}
        pages = 0
        while next_url and pages < 100:
            response = call(self.session, "GET", next_url, self.description, timeout=self.timeout,
                            headers=self._headers, params=params)
            items.extend(item for item in response.json() if isinstance(item, dict))
            next_url = response.links.get("next", {}).get("url")
            params = None
            pages += 1
        return items

    def head_sha(self) -> str:
        response = call(self.session, "GET", f"{self._base}/{self.pull.number}", self.description,
                        timeout=self.timeout, headers=self._headers)
        head = response.json().get("head") or {}
        return str(head.get("sha") or "")

    def files(self) -> dict[str, str]:
        """filename → patch of every file the pull request changes."""
        return {str(item.get("filename")): str(item.get("patch") or "")
                for item in self._pages(f"{self._base}/{self.pull.number}/files")}

    def comments(self) -> list[dict[str, Any]]:
        return self._pages(f"{self._base}/{self.pull.number}/comments")

    def create(self, suggestion: Suggestion, commit: str) -> None:
        body: dict[str, Any] = {"body": suggestion.body, "commit_id": commit, "path": suggestion.path,
                                "line": suggestion.line, "side": "RIGHT"}
        if suggestion.start_line < suggestion.line:
            body.update(start_line=suggestion.start_line, start_side="RIGHT")
        call(self.session, "POST", f"{self._base}/{self.pull.number}/comments", self.description,
             timeout=self.timeout, headers=self._headers, json_body=body)

    def update(self, comment_id: int, body: str) -> None:
        call(self.session, "PATCH", f"{self._base}/comments/{comment_id}", self.description, timeout=self.timeout,
             headers=self._headers, json_body={"body": body})


def head_sha_from_event(env: Mapping[str, str]) -> str:
    event_path = env.get("GITHUB_EVENT_PATH")
    if not event_path:
        return ""
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    pull = event.get("pull_request") if isinstance(event, dict) else None
    head = pull.get("head") if isinstance(pull, dict) else None
    return str(head.get("sha") or "") if isinstance(head, dict) else ""


def _pull_request_path(path: str, files: Mapping[str, str]) -> str | None:
    """The pull request's name for the Dockerfile given as `path` (relative, or absolute inside the checkout)."""
    if path in files:
        return path
    candidates = [name for name in files if path.endswith("/" + name) or name.endswith("/" + path)]
    return candidates[0] if len(candidates) == 1 else None


def post_review_suggestions(api: ReviewComments, evaluation: Evaluation, analysis: Analysis,
                            env: Mapping[str, str]) -> str:
    """Post (or update) the suggestion comments; return a note saying what was done."""
    wanted = suggestions(evaluation, analysis)
    if not wanted:
        return "--comment review: no exact Dockerfile fix to suggest"
    files = api.files()
    path = _pull_request_path(wanted[0].path, files)
    if path is None:
        return (f"--comment review: {wanted[0].path} is not part of the pull request's diff; its fixes are in the "
                "comment")
    wanted = [replace(s, path=path) for s in wanted]
    commentable = diff_lines(files[path])
    placeable = [s for s in wanted if all(line in commentable for line in range(s.start_line, s.line + 1))]
    if not placeable:
        return f"--comment review: the lines to fix in {path} are not in the pull request's diff"
    commit = head_sha_from_event(env) or api.head_sha()
    existing = {}
    for comment in api.comments():
        body = str(comment.get("body") or "")
        if REVIEW_MARKER in body:
            existing[body[body.index(REVIEW_MARKER):].split("-->", 1)[0] + "-->"] = comment
    created = updated = 0
    for suggestion in placeable:
        previous = existing.get(suggestion.marker)
        if previous is None:
            api.create(suggestion, commit)
            created += 1
        elif previous.get("body") != suggestion.body:
            api.update(int(previous["id"]), suggestion.body)
            updated += 1
    skipped = len(wanted) - len(placeable)
    return (f"--comment review: {created} suggestion{'s' if created != 1 else ''} posted, {updated} updated on "
            f"{path}" + (f"; {skipped} outside the diff stay in the comment" if skipped else ""))
