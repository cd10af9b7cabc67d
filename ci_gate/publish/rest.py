"""The small REST helper both publishers use: one request through ci_gate.http, statuses judged here.

Status handling (what GitHub and GitLab document for these endpoints):
- 2xx: fine. 404 on DELETE: fine (a racing job deleted it first).
- 401, 403, 404 and 422 on anything else: `PublishDenied` (no or read-only token, e.g. a pull request
  from a fork; no access; the change request is gone). Never retried, never a build failure.
- 429 and 5xx, timeouts and dropped connections: `PublishTransient` with the server's Retry-After,
  so the sticky-comment algorithm starts over (re-listing before any new create).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from ci_gate.http import HttpError, RetryPolicy, new_session, retry_after_seconds, send
from ci_gate.publish.interface import Comment, PublishDenied, PublishTransient

NO_RETRY = RetryPolicy(attempts=1)
"""For POST: a create is never repeated at this level (it might have succeeded); the caller re-lists."""
READ_RETRY = RetryPolicy(attempts=3, backoff_initial=0.5, backoff_max=4.0, retry_after_max=30.0)
"""For idempotent calls (GET, PATCH/PUT of the same body, DELETE): a few quick in-place retries."""

_DENIED_HINTS = {
    401: "the token is missing, expired or wrong",
    403: "the token may not write comments (a read-only token, e.g. a pull request from a fork, or a "
    "missing `pull-requests: write` / `api` scope)",
    404: "the change request or project was not found with this token",
    422: "the API refused the request",
}


def call(
    session: requests.Session,
    method: str,
    url: str,
    description: str,
    *,
    timeout: float,
    headers: Mapping[str, str],
    json_body: Any = None,
    params: Mapping[str, str] | None = None,
    ok_statuses: tuple[int, ...] = (),
) -> requests.Response:
    """Send one API request; return the response when it succeeded, else raise the publish error."""
    policy = NO_RETRY if method.upper() == "POST" else READ_RETRY
    try:
        response = send(
            session, method, url, timeout=timeout, retry=policy, headers=dict(headers), json=json_body, params=params
        )
    except HttpError as error:
        if error.kind in ("timeout", "connection"):
            raise PublishTransient(f"{description}: {error}") from None
        raise PublishDenied(f"{description}: {error}") from None
    status = response.status_code
    if 200 <= status < 300 or status in ok_statuses:
        return response
    if status in (429,) or status >= 500:
        raise PublishTransient(
            f"{description}: {method} answered {status}", retry_after_seconds(response.headers.get("Retry-After"))
        )
    if status == 403 and response.headers.get("x-ratelimit-remaining") == "0":
        # GitHub's secondary rate limit answers 403 with a reset time: wait, do not give up.
        raise PublishTransient(
            f"{description}: rate limited", retry_after_seconds(response.headers.get("Retry-After")) or 60.0
        )
    hint = _DENIED_HINTS.get(status, "the API refused the request")
    raise PublishDenied(f"{description}: {method} answered {status} ({hint})")


class RestClient:
    """A client of one change request's REST resources: the session, timeout and headers of every call,
    the base address of the resources, and the description that names the change request in messages."""

    def __init__(self, description: str, headers: dict[str, str], base: str,
                 session: requests.Session | None = None, timeout: float = 30.0):
        self.session = session or new_session()
        self.timeout = timeout
        self.description = description
        self._headers = headers
        self._base = base


class RestComments(RestClient):
    """Create, update and delete of one change request's comments over REST: GitHub and GitLab
    differ only in where a comment lives and which verb edits it (subclasses set those)."""

    update_method = "PATCH"

    def collection_url(self) -> str:
        """Where comments of this change request are listed and created."""
        raise NotImplementedError

    def comment_url(self, comment_id: int) -> str:
        raise NotImplementedError

    def create(self, body: str) -> Comment:
        response = call(self.session, "POST", self.collection_url(), self.description, timeout=self.timeout,
                        headers=self._headers, json_body={"body": body})
        item = response.json()
        return Comment(id=int(item["id"]), body=str(item.get("body") or body))

    def update(self, comment_id: int, body: str) -> None:
        call(self.session, self.update_method, self.comment_url(comment_id), self.description,
             timeout=self.timeout, headers=self._headers, json_body={"body": body})

    def delete(self, comment_id: int) -> None:
        call(self.session, "DELETE", self.comment_url(comment_id), self.description, timeout=self.timeout,
             headers=self._headers, ok_statuses=(404,))
