"""Stand-ins for the GitHub and GitLab comment APIs on 127.0.0.1, following the documented endpoints.

GitHub (docs.github.com/rest/issues/comments): issue comments listed ascending by id, `per_page`
(max 100) and `page`, a `Link` header with rel="next"/"last"; POST 201, PATCH 200, DELETE 204; 401
without a token, 403 "Resource not accessible by integration" for a read-only (fork) token.
GitLab (docs api/notes.md): notes with `sort`/`order_by`/`per_page` (default 20, max 100)/`page`,
`X-Next-Page`/`X-Page`/`X-Per-Page`/`X-Total`/`X-Total-Pages` headers, system notes mixed in;
`PRIVATE-TOKEN`; 401 "401 Unauthorized", 403 "403 Forbidden".

Faults are queued per method: a status with headers (429/5xx with Retry-After), a delay (slow
answers), or "commit then fail" (the comment is created, then the answer is a 502 or arrives after
the client's timeout) — the case that makes naive retries post duplicates.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Fault:
    method: str
    status: int = 0
    """Answer with this status instead (0: answer normally)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""
    commit: bool = False
    """Do the work (e.g. create the comment) before answering with `status` / after `delay`."""


class _Server:
    FORK_TOKEN = "fork-read-only-token"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.comments: dict[int, dict[str, Any]] = {}
        self.next_id = 1000
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.list_barrier: threading.Barrier | None = None
        self.max_per_page = 100
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_comment(self, body: str, author: str = "someone", system: bool = False) -> int:
        with self.lock:
            self.next_id += 1
            self.comments[self.next_id] = self._new(self.next_id, body, author, system)
            return self.next_id

    def bodies_with(self, text: str) -> list[str]:
        with self.lock:
            return [c["body"] for c in self.comments.values() if text in c["body"]]

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.requests if m == method)

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.method == method:
                    return self.faults.pop(index)
        return None

    # to be provided by subclasses
    def _new(self, comment_id: int, body: str, author: str, system: bool) -> dict[str, Any]:
        raise NotImplementedError

    def route(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                # Read the request body first, whatever the answer: on a kept-alive connection an
                # unread body would be parsed as the next request.
                length = int(self.headers.get("Content-Length") or 0)
                self._raw = self.rfile.read(length) if length else b""
                server.requests.append((method, self.path))
                fault = server.take_fault(method)
                if fault is not None and fault.delay and not fault.commit:
                    time.sleep(fault.delay)
                if fault is not None and fault.status and not fault.commit:
                    self._send(fault.status, fault.headers, {"message": f"injected {fault.status}"})
                    return
                status, headers, payload = server.route(self, method)
                if fault is not None and fault.commit:
                    time.sleep(fault.delay)
                    if fault.status:
                        status, headers, payload = fault.status, fault.headers, {"message": "injected"}
                # The client may have given up waiting (a timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(status, headers, payload)

            def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> dict[str, Any]:
                return json.loads(self._raw) if self._raw else {}

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler

    def _wait_list_barrier(self) -> None:
        barrier = self.list_barrier
        if barrier is not None:
            # Generous: on a loaded CI machine one job's thread can lag the other by many seconds, and
            # a broken barrier lets the jobs run one after the other (no race left to test).
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)


def _right_side_lines(patch: str) -> set[int]:
    """New-file lines of a unified diff a review comment may sit on (GitHub: added or context lines of a hunk)."""
    lines: set[int] = set()
    number = None
    for text in patch.split("\n"):
        header = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", text)
        if header:
            number = int(header.group(1))
        elif number is not None and text[:1] in (" ", "+"):
            lines.add(number)
            number += 1
    return lines


class FakeGitHub(_Server):
    """`/repos/{owner}/{repo}/issues/{number}/comments` and `/repos/{owner}/{repo}/issues/comments/{id}`, and
    for review comments (docs.github.com/rest/pulls): `/pulls/{number}`, `/pulls/{number}/files`,
    `/pulls/{number}/comments` (GET, POST) and `/pulls/comments/{id}` (PATCH). A review comment is accepted
    only on the head commit, on a file of the pull request and on a line of one of its hunks (422 otherwise)."""

    TOKEN = "ghs_write_token_for_tests_0123456789"

    def __init__(self, repository: str = "acme/app", number: int = 7) -> None:
        super().__init__()
        self.repository = repository
        self.number = number
        self.head_sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
        self.pull_files: list[dict[str, Any]] = []
        """The pull request's files: {"filename", "status", "patch"}."""
        self.review_comments: dict[int, dict[str, Any]] = {}

    def _new(self, comment_id: int, body: str, author: str, system: bool) -> dict[str, Any]:
        return {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "body": body,
            "user": {"login": author},
            "created_at": "2026-11-29T02:00:00Z",
            "updated_at": "2026-11-29T02:00:00Z",
            "html_url": f"https://github.com/{self.repository}/pull/{self.number}#issuecomment-{comment_id}",
        }

    def route(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(handler.path)
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return (
                401,
                {},
                {"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"},
            )
        token = auth.removeprefix("Bearer ")
        if handler.headers.get("Accept") != "application/vnd.github+json":
            return 415, {}, {"message": "Unsupported 'Accept' header"}
        if token not in (self.TOKEN, self.FORK_TOKEN):
            return (
                401,
                {},
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        pulls = f"/repos/{self.repository}/pulls"
        if parts.path.startswith(pulls + "/"):
            return self._pulls(handler, method, parts.path[len(pulls):], parse_qs(parts.query), token)
        list_path = f"/repos/{self.repository}/issues/{self.number}/comments"
        item = re.fullmatch(rf"/repos/{self.repository}/issues/comments/(\d+)", parts.path)
        if parts.path == list_path and method == "GET":
            query = parse_qs(parts.query)
            per_page = min(int(query.get("per_page", ["30"])[0]), self.max_per_page)
            page = int(query.get("page", ["1"])[0])
            self._wait_list_barrier()
            with self.lock:
                ordered = [self.comments[k] for k in sorted(self.comments)]
            chunk = ordered[(page - 1) * per_page : page * per_page]
            last = max((len(ordered) + per_page - 1) // per_page, 1)
            headers = {}
            links = []
            if page < last:
                links.append(f'<{self.url}{list_path}?per_page={per_page}&page={page + 1}>; rel="next"')
                links.append(f'<{self.url}{list_path}?per_page={per_page}&page={last}>; rel="last"')
            if links:
                headers["Link"] = ", ".join(links)
            return 200, headers, chunk
        if token == self.FORK_TOKEN and method != "GET":
            return (
                403,
                {},
                {
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest/issues/comments",
                },
            )
        if parts.path == list_path and method == "POST":
            body = handler.body()  # type: ignore[attr-defined]
            if not body.get("body"):
                return 422, {}, {"message": "Validation Failed"}
            if len(body["body"]) > 65_536:
                return (
                    422,
                    {},
                    {
                        "message": "Validation Failed",
                        "errors": [{"message": "body is too long (maximum is 65536 characters)"}],
                    },
                )
            comment_id = self.add_comment(body["body"], author="github-actions[bot]")
            return (
                201,
                {"Location": f"{self.url}/repos/{self.repository}/issues/comments/{comment_id}"},
                self.comments[comment_id],
            )
        if item and method == "PATCH":
            comment_id = int(item.group(1))
            body = handler.body()  # type: ignore[attr-defined]
            with self.lock:
                if comment_id not in self.comments:
                    return 404, {}, {"message": "Not Found"}
                self.comments[comment_id]["body"] = body["body"]
                return 200, {}, self.comments[comment_id]
        if item and method == "DELETE":
            comment_id = int(item.group(1))
            with self.lock:
                if self.comments.pop(comment_id, None) is None:
                    return 404, {}, {"message": "Not Found"}
            return 204, {}, None
        return 404, {}, {"message": "Not Found"}


    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]], path: str
              ) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.max_per_page)
        page = int(query.get("page", ["1"])[0])
        last = max((len(items) + per_page - 1) // per_page, 1)
        headers = {}
        if page < last:
            headers["Link"] = f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"'
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _pulls(self, handler: BaseHTTPRequestHandler, method: str, rest: str, query: dict[str, list[str]],
               token: str) -> tuple[int, dict[str, str], Any]:
        path = f"/repos/{self.repository}/pulls{rest}"
        if rest == f"/{self.number}" and method == "GET":
            return 200, {}, {"number": self.number, "state": "open", "head": {"sha": self.head_sha, "ref": "feature"}}
        if rest == f"/{self.number}/files" and method == "GET":
            return self._page(list(self.pull_files), query, path)
        if rest == f"/{self.number}/comments" and method == "GET":
            with self.lock:
                ordered = [self.review_comments[k] for k in sorted(self.review_comments)]
            return self._page(ordered, query, path)
        if token == self.FORK_TOKEN and method != "GET":
            return 403, {}, {"message": "Resource not accessible by integration"}
        if rest == f"/{self.number}/comments" and method == "POST":
            body = handler.body()  # type: ignore[attr-defined]
            problem = self._review_problem(body)
            if problem:
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequestReviewComment", "code": "custom", "field": problem[0],
                     "message": problem[1]}]}
            with self.lock:
                self.next_id += 1
                comment = {"id": self.next_id, "body": body["body"], "path": body["path"], "line": body["line"],
                           "start_line": body.get("start_line"), "side": body["side"],
                           "commit_id": body["commit_id"], "user": {"login": "github-actions[bot]"}}
                self.review_comments[self.next_id] = comment
            return 201, {}, comment
        item = re.fullmatch(r"/comments/(\d+)", rest)
        if item and method == "PATCH":
            body = handler.body()  # type: ignore[attr-defined]
            with self.lock:
                comment = self.review_comments.get(int(item.group(1)))
                if comment is None:
                    return 404, {}, {"message": "Not Found"}
                comment["body"] = body["body"]
                return 200, {}, comment
        return 404, {}, {"message": "Not Found"}

    def _review_problem(self, body: dict[str, Any]) -> tuple[str, str] | None:
        if not body.get("body"):
            return "body", "can't be blank"
        if body.get("commit_id") != self.head_sha:
            return "commit_id", "commit_sha is not part of the pull request"
        files = {f["filename"]: f for f in self.pull_files}
        if body.get("path") not in files:
            return "pull_request_review_thread.path", "could not be resolved"
        if body.get("side") not in ("RIGHT", "LEFT") or not isinstance(body.get("line"), int):
            return "pull_request_review_thread.line", "could not be resolved"
        allowed = _right_side_lines(files[body["path"]].get("patch", ""))
        lines = [body["line"]] + ([body["start_line"]] if "start_line" in body else [])
        if "start_line" in body and (body["start_line"] >= body["line"] or body.get("start_side") != "RIGHT"):
            return "pull_request_review_thread.start_line", "must precede the end line"
        if any(line not in allowed for line in lines):
            return "pull_request_review_thread.line", "must be part of the diff"
        return None


class FakeGitLab(_Server):
    """`/api/v4/projects/:id/merge_requests/:iid/notes[/:note_id]`."""

    TOKEN = "glpat-write-token-for-tests-0123"

    def __init__(self, project: str = "group/app", iid: int = 3) -> None:
        super().__init__()
        self.project = project
        self.iid = iid
        self.default_per_page = 20

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    def _new(self, comment_id: int, body: str, author: str, system: bool) -> dict[str, Any]:
        return {
            "id": comment_id,
            "type": None,
            "body": body,
            "author": {"username": author},
            "system": system,
            "noteable_type": "MergeRequest",
            "noteable_iid": self.iid,
            "created_at": "2026-11-29T02:00:00Z",
        }

    def route(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(handler.path)
        token = handler.headers.get("PRIVATE-TOKEN", "")
        if token not in (self.TOKEN, self.FORK_TOKEN):
            return 401, {}, {"message": "401 Unauthorized"}
        match = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?", parts.path)
        if not match or unquote(match.group(1)) != self.project or int(match.group(2)) != self.iid:
            return 404, {}, {"message": "404 Not found"}
        note_id = int(match.group(3)) if match.group(3) else None
        if note_id is None and method == "GET":
            query = parse_qs(parts.query)
            per_page = min(int(query.get("per_page", [str(self.default_per_page)])[0]), self.max_per_page)
            page = int(query.get("page", ["1"])[0])
            descending = query.get("sort", ["desc"])[0] == "desc"
            self._wait_list_barrier()
            with self.lock:
                ordered = [self.comments[k] for k in sorted(self.comments, reverse=descending)]
            chunk = ordered[(page - 1) * per_page : page * per_page]
            pages = max((len(ordered) + per_page - 1) // per_page, 1)
            headers = {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Total": str(len(ordered)),
                "X-Total-Pages": str(pages),
                "X-Next-Page": str(page + 1) if page < pages else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
            }
            return 200, headers, chunk
        if token == self.FORK_TOKEN:
            return 403, {}, {"message": "403 Forbidden"}
        if note_id is None and method == "POST":
            body = handler.body()  # type: ignore[attr-defined]
            if not body.get("body"):
                return 400, {}, {"message": {"body": ["can't be blank"]}}
            new_id = self.add_comment(body["body"], author="project_7_bot")
            return 201, {}, self.comments[new_id]
        if note_id is not None and method == "PUT":
            body = handler.body()  # type: ignore[attr-defined]
            with self.lock:
                if note_id not in self.comments:
                    return 404, {}, {"message": "404 Not found"}
                self.comments[note_id]["body"] = body["body"]
                return 200, {}, self.comments[note_id]
        if note_id is not None and method == "DELETE":
            with self.lock:
                if self.comments.pop(note_id, None) is None:
                    return 404, {}, {"message": "404 Not found"}
            return 204, {}, None
        return 405, {}, {"message": "405 Method Not Allowed"}
