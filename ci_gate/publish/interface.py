"""What every comment publisher shares: the comment API shape, the sticky-comment algorithm, errors.

A publisher (GitHub issue comments, GitLab merge-request notes) implements `CommentApi`: list,
create, update, delete. `upsert_comment` keeps exactly ONE comment per image per change request:

1. list every comment (all pages) and pick those carrying the image's hidden marker;
2. if there are some, update the oldest and delete the others (left by an earlier race);
3. otherwise create one, then list again: when a concurrent job created one too, both converge
   on the oldest (update it, delete the rest), so two racing jobs end with a single comment.

A create is never retried blindly: it is sent once, and any transient failure (429, 5xx, timeout,
reset) restarts the whole algorithm from step 1, which finds the comment if the failed create had
in fact gone through. The retries (tenacity) honour Retry-After and stop after a total time budget.
Permission problems (401/403/404: read-only fork tokens, a wrong token, no access) are not
retried: they raise `PublishDenied`, which the caller turns into a warning and a fallback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from ci_gate.errors import PublishError
from ci_gate.http import Backoff

MARKER_PREFIX = "<!-- ci-gate:comment "
ChangeRequest = TypeVar("ChangeRequest")
"""A host's change request (`github.PullRequest`, `gitlab.MergeRequest`)."""


class PublishDenied(PublishError):
    """The API refused us (no token, read-only token, no access): fall back, never fail the build."""


class PublishTransient(PublishError):
    """A failure worth retrying: 429, 5xx, a timeout or a dropped connection."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds the server asked us to wait (Retry-After), if it said."""


@dataclass(frozen=True)
class NoChangeRequest:
    """Why this job has no pull/merge request to comment on."""

    reason: str
    """One sentence for the notes, e.g. "this job is not for a pull request"."""
    expected: bool = False
    """True for a branch or tag pipeline: there is nothing to comment on, and nothing is wrong. False
    when a change request is meant but cannot be reached (no token, a URL that is not one)."""


def require_change_request(found: ChangeRequest | NoChangeRequest, host: str) -> ChangeRequest:
    """The change request found in the environment; PublishDenied saying why there is none (for `host`,
    e.g. GitHub) when there is none."""
    if isinstance(found, NoChangeRequest):
        raise PublishDenied(f"cannot comment on {host}: {found.reason}")
    return found


@dataclass(frozen=True)
class Comment:
    """One existing comment or note on the change request."""

    id: int
    """The API's id of the comment (GitHub comment id, GitLab note id)."""
    body: str
    """The comment's Markdown text."""


class CommentApi(Protocol):
    """The four calls the sticky-comment algorithm needs; each raises PublishDenied or PublishTransient."""

    description: str
    """Where comments go, for messages: e.g. `GitHub pull request owner/repo#12`."""

    def list(self) -> list[Comment]: ...

    def create(self, body: str) -> Comment: ...

    def update(self, comment_id: int, body: str) -> None: ...

    def delete(self, comment_id: int) -> None: ...


def marker_for(image_key: str) -> str:
    """The hidden marker naming the image: HTML comment safe (no `--`, no `>`)."""
    safe = re.sub(r"[^A-Za-z0-9._/:@+-]", "_", image_key).replace("--", "-_")
    return f"{MARKER_PREFIX}image={safe} -->"


@dataclass(frozen=True)
class UpsertResult:
    """What `upsert_comment` did."""

    comment_id: int
    """The id of the one comment that now carries the marker."""
    action: str
    """created, updated or unchanged."""
    removed_duplicates: int = 0
    """Extra marker comments (from a race) that were deleted."""


@dataclass(frozen=True)
class RetryBudget(Backoff):
    """How long the whole publish may keep retrying: at most `attempts` runs of the algorithm, within
    `total_seconds` (a Retry-After is clamped to retry_after_max, and the budget still applies)."""

    total_seconds: float = 120.0
    """Total time budget for all tries."""
    attempts: int = 8
    backoff_initial: float = 1.0
    backoff_max: float = 20.0


def upsert_comment(
    api: CommentApi,
    marker: str,
    body: str,
    budget: RetryBudget = RetryBudget(),
    sleep: Callable[[float], None] = time.sleep,
) -> UpsertResult:
    """Create or update the one comment carrying `marker`; see the module docstring."""
    full_body = body if marker in body else f"{body.rstrip()}\n\n{marker}\n"
    started = time.monotonic()

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = error.retry_after if isinstance(error, PublishTransient) else None
        remaining = budget.total_seconds - (time.monotonic() - started)
        return max(min(budget.pause(state.attempt_number, retry_after), remaining), 0.0)

    retrying = Retrying(
        stop=stop_after_attempt(budget.attempts) | stop_after_delay(budget.total_seconds),
        wait=wait,
        retry=retry_if_exception_type(PublishTransient),
        sleep=sleep,
        reraise=True,
    )
    result: UpsertResult = retrying(_upsert_once, api, marker, full_body)
    return result


def _upsert_once(api: CommentApi, marker: str, body: str) -> UpsertResult:
    mine = [comment for comment in api.list() if marker in comment.body]
    if mine:
        return _converge(api, mine, body, created=None)
    created = api.create(body)
    # A job racing us may have created its own comment between our list and our create.
    mine = [comment for comment in api.list() if marker in comment.body]
    if not any(comment.id == created.id for comment in mine):
        mine.append(created)
    return _converge(api, mine, body, created=created)


def _converge(api: CommentApi, mine: list[Comment], body: str, created: Comment | None) -> UpsertResult:
    keep = min(mine, key=lambda comment: comment.id)
    action = "created" if created is not None and keep.id == created.id else "updated"
    if keep.body != body and not (created is not None and keep.id == created.id):
        api.update(keep.id, body)
    elif action == "updated":
        action = "unchanged"
    removed = 0
    for comment in mine:
        if comment.id != keep.id:
            api.delete(comment.id)
            removed += 1
    return UpsertResult(comment_id=keep.id, action=action, removed_duplicates=removed)
