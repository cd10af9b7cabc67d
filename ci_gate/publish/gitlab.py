"""GitLab: the merge-request note (Notes REST API).

REST calls (https://docs.gitlab.com/ee/api/notes.html), base `$CI_API_V4_URL`:
    GET    /projects/:id/merge_requests/:iid/notes?sort=asc&order_by=created_at&per_page=100&page=N
           (pagination: the X-Next-Page header, empty on the last page)
    POST   /projects/:id/merge_requests/:iid/notes            body=…
    PUT    /projects/:id/merge_requests/:iid/notes/:note_id   body=…
    DELETE /projects/:id/merge_requests/:iid/notes/:note_id
Header: PRIVATE-TOKEN. `CI_JOB_TOKEN` cannot call the Notes API: a project/group access token or a
PAT with scope `api` is needed (CI_GATE_GITLAB_TOKEN or GITLAB_TOKEN). The project is the merge
request's (`CI_MERGE_REQUEST_PROJECT_ID`), which differs from `CI_PROJECT_ID` for fork MRs.
System notes (`"system": true`) are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import requests

from ci_gate.publish.interface import Comment, NoChangeRequest, require_change_request
from ci_gate.publish.rest import RestComments, call

NOTE_LIMIT = 1_000_000
"""GitLab's note length limit (documented as 1,000,000 characters)."""


@dataclass(frozen=True)
class MergeRequest:
    """Which merge request to comment on, and with what."""

    api_url: str
    """e.g. https://gitlab.example.com/api/v4"""
    project: str
    """Numeric id or the project's full path (URL-encoded when sent)."""
    iid: int
    """The merge request's project-level id (CI_MERGE_REQUEST_IID)."""
    token: str
    """A token with scope api; never logged."""


def merge_request_from_env(env: Mapping[str, str]) -> MergeRequest | NoChangeRequest:
    """The merge request of this job, or why there is none."""
    token = env.get("CI_GATE_GITLAB_TOKEN") or env.get("GITLAB_TOKEN") or ""
    api_url = (env.get("CI_API_V4_URL") or "").rstrip("/")
    project = env.get("CI_MERGE_REQUEST_PROJECT_ID") or env.get("CI_PROJECT_ID") or ""
    iid_text = env.get("CI_MERGE_REQUEST_IID", "")
    if not iid_text and env.get("CHANGE_ID") and env.get("CHANGE_URL"):  # Jenkins multibranch
        parsed = _parse_change_url(env["CHANGE_URL"])
        if parsed is None:
            return NoChangeRequest(f"CHANGE_URL {env['CHANGE_URL']!r} is not a GitLab merge request URL")
        base, project, iid_text = parsed
        api_url = api_url or f"{base}/api/v4"
    if not iid_text.isdigit():
        return NoChangeRequest("this job is not for a merge request (no CI_MERGE_REQUEST_IID)", expected=True)
    if not api_url or not project:
        return NoChangeRequest("CI_API_V4_URL or the project id is not set")
    if not token:
        return NoChangeRequest("no token: set CI_GATE_GITLAB_TOKEN to a token with scope api "
                               "(CI_JOB_TOKEN cannot write notes)")
    return MergeRequest(api_url=api_url, project=project, iid=int(iid_text), token=token)


def _parse_change_url(url: str) -> tuple[str, str, str] | None:
    """`https://gitlab.example.com/group/app/-/merge_requests/7` → (https://gitlab.example.com, group/app, 7)."""
    if "/-/merge_requests/" not in url or "://" not in url:
        return None
    head, _, tail = url.partition("/-/merge_requests/")
    scheme, _, rest = head.partition("://")
    host, _, path = rest.partition("/")
    iid = tail.strip("/").split("/")[0]
    if not path or not iid.isdigit():
        return None
    return f"{scheme}://{host}", path, iid


class GitLabNotes(RestComments):
    """The `CommentApi` over a merge request's notes."""

    update_method = "PUT"

    def __init__(self, merge_request: MergeRequest, session: requests.Session | None = None, timeout: float = 30.0):
        self.merge_request = merge_request
        project = quote(merge_request.project, safe="")
        super().__init__(f"GitLab merge request {merge_request.project}!{merge_request.iid}",
                         {"PRIVATE-TOKEN": merge_request.token},
                         f"{merge_request.api_url}/projects/{project}/merge_requests/{merge_request.iid}/notes",
                         session, timeout)

    def list(self) -> list[Comment]:
        notes: list[Comment] = []
        page = "1"
        pages = 0
        while page and pages < 1_000:
            response = call(
                self.session,
                "GET",
                self._base,
                self.description,
                timeout=self.timeout,
                headers=self._headers,
                params={"sort": "asc", "order_by": "created_at", "per_page": "100", "page": page},
            )
            for item in response.json():
                if item.get("system"):
                    continue
                notes.append(Comment(id=int(item["id"]), body=str(item.get("body") or "")))
            page = response.headers.get("X-Next-Page", "").strip()
            pages += 1
        return notes

    def collection_url(self) -> str:
        return self._base

    def comment_url(self, comment_id: int) -> str:
        return f"{self._base}/{comment_id}"


def require_merge_request(env: Mapping[str, str]) -> MergeRequest:
    return require_change_request(merge_request_from_env(env), "GitLab")
