"""HTTP receivers on 127.0.0.1 that answer as the real services document, and record what they get.

- generic webhook: any POST, 200;
- Slack incoming webhook (api.slack.com/messaging/webhooks): 200 `ok` (text/plain); 400
  `invalid_payload` without text/blocks, `invalid_blocks` for a header over 150 characters; 404
  `no_service` for an unknown hook path; 429 with Retry-After when rate limited;
- Microsoft Teams workflow webhook ("Post to a channel when a webhook request is received"): 202
  Accepted for a `message` with one Adaptive Card attachment, 400 otherwise;
- Jira REST v2: basic auth; `POST /rest/api/2/issue` 201 `{id, key, self}`, 400 `{errorMessages,
  errors}` on a missing field; `GET /rest/api/2/search?jql=labels = "…"`; `POST
  /rest/api/2/issue/{key}/comment` 201;
- GitHub REST: bearer token; `GET /repos/{o}/{r}/issues?labels=&state=all`; `POST` 201 with the
  issue; `PATCH /repos/{o}/{r}/issues/{n}` 200.

Outages are scripted per receiver: `outage` is a list of actions taken by the next requests, in
order: an HTTP status (answered with Retry-After `retry_after` when set), "hang" (no answer until
the client gave up), "drop" (the connection closes without an answer) or "lost" (the service does
the work, a proxy answers 502).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0
    """What the receiver answered (0: it hung or dropped)."""
    signature_ok: bool | None = None
    """None when the receiver has no secret; else whether X-CI-Gate-Signature-256 matched the body."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str:
        return self.headers.get("x-ci-gate-idempotency-key", "")


@dataclass
class Receiver:
    kind: str
    secret: str | None = None
    retry_after: str | None = None
    hang_seconds: float = 3.0
    outage: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    jira_user: tuple[str, str] = ("bot@example.test", "jira-api-token-test")
    github_token: str = "ghp_testtoken"
    slack_path: str = "/services/T0001/B0001/hooksecret"
    redirect_to: str | None = None
    """Answer every request 302 with this Location (a receiver sending the server elsewhere)."""
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    tls: ssl.SSLContext | None = None
    """Serve HTTPS with this server context (its certificate names the host the test connects by)."""

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                record = Received(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                                  {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                if receiver.secret is not None:
                    expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    record.signature_ok = hmac.compare_digest(expected, record.headers.get("x-ci-gate-signature-256",
                                                                                           ""))
                with receiver.lock:
                    receiver.received.append(record)
                    action = receiver.outage.pop(0) if receiver.outage else None
                if action == "hang":
                    time.sleep(receiver.hang_seconds)
                    return
                if action == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if action == "lost":  # the service did the work, and the answer is lost on the way back
                    receiver.respond(record)
                    self._answer(record, 502, b"bad gateway", {})
                    return
                if isinstance(action, int):
                    headers = {"Retry-After": receiver.retry_after} if receiver.retry_after else {}
                    self._answer(record, action, b"rate_limited" if action == 429 else b"unavailable", headers)
                    return
                if receiver.redirect_to is not None:
                    self._answer(record, 302, b"", {"Location": receiver.redirect_to})
                    return
                status, payload, content_type = receiver.respond(record)
                self._answer(record, status, payload, {"Content-Type": content_type})

            def _answer(self, record: Received, status: int, payload: bytes, headers: dict[str, str]) -> None:
                record.status = status
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def answered(self) -> list[Received]:
        """Requests answered 2xx."""
        return [r for r in self.received if 200 <= r.status < 300]

    # --- the services' documented answers ------------------------------------------------------------

    def respond(self, record: Received) -> tuple[int, bytes, str]:
        return getattr(self, f"_{self.kind}")(record)

    def _webhook(self, record: Received) -> tuple[int, bytes, str]:
        return 200, b"{}", "application/json"

    def _slack(self, record: Received) -> tuple[int, bytes, str]:
        if record.path != self.slack_path:
            return 404, b"no_service", "text/plain"
        try:
            message = record.json()
        except ValueError:
            return 400, b"invalid_payload", "text/plain"
        if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
            return 400, b"invalid_payload", "text/plain"
        for block in message.get("blocks") or []:
            if block.get("type") == "header" and len(block["text"]["text"]) > 150:
                return 400, b"invalid_blocks", "text/plain"
        return 200, b"ok", "text/plain"

    def _teams(self, record: Received) -> tuple[int, bytes, str]:
        try:
            message = record.json()
            attachment = message["attachments"][0]
            valid = (message["type"] == "message"
                     and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
                     and attachment["content"]["type"] == "AdaptiveCard" and attachment["content"]["body"])
        except (ValueError, KeyError, IndexError, TypeError):
            valid = False
        return (202, b"", "text/plain") if valid else (400, b'{"error":{"code":"InvalidRequestContent"}}',
                                                       "application/json")

    def _jira(self, record: Received) -> tuple[int, bytes, str]:
        expected = "Basic " + base64.b64encode(":".join(self.jira_user).encode()).decode()
        if record.headers.get("authorization") != expected:
            return 401, b'{"errorMessages":["You are not authenticated."],"errors":{}}', "application/json"
        if record.method == "GET" and record.path == "/rest/api/2/search":
            label = record.query.get("jql", "").split('"')[1]
            with self.lock:
                found = [{"id": i["id"], "key": k, "self": f"{self.url}/rest/api/2/issue/{i['id']}"}
                         for k, i in self.issues.items() if label in i["fields"]["labels"]]
            page = {"startAt": 0, "maxResults": 1, "total": len(found), "issues": found[:1]}
            return 200, json.dumps(page).encode(), "application/json"
        if record.method == "POST" and record.path == "/rest/api/2/issue":
            fields = record.json().get("fields", {})
            errors = {name: f"{name} is required." for name in ("project", "summary", "issuetype")
                      if not fields.get(name)}
            if errors:
                return 400, json.dumps({"errorMessages": [], "errors": errors}).encode(), "application/json"
            with self.lock:
                number = len(self.issues) + 1
                key = f"{fields['project']['key']}-{number}"
                self.issues[key] = {"id": str(10000 + number), "fields": fields}
            return 201, json.dumps({"id": str(10000 + number), "key": key,
                                    "self": f"{self.url}/rest/api/2/issue/{10000 + number}"}).encode(), \
                "application/json"
        if record.method == "POST" and record.path.endswith("/comment"):
            key = record.path.split("/")[-2]
            with self.lock:
                if key not in self.issues:
                    return 404, b'{"errorMessages":["Issue does not exist"],"errors":{}}', "application/json"
                self.comments.setdefault(key, []).append(record.json()["body"])
            return 201, json.dumps({"id": "1", "body": record.json()["body"]}).encode(), "application/json"
        return 404, b'{"errorMessages":["not found"]}', "application/json"

    def _github(self, record: Received) -> tuple[int, bytes, str]:
        if record.headers.get("authorization") != f"Bearer {self.github_token}":
            return 401, b'{"message":"Bad credentials"}', "application/json"
        parts = record.path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "repos" or parts[3] != "issues":
            return 404, b'{"message":"Not Found"}', "application/json"
        if record.method == "GET":
            label = record.query.get("labels", "")
            with self.lock:
                found = [i for i in self.issues.values() if label in [x["name"] for x in i["labels"]]]
            return 200, json.dumps(found).encode(), "application/json"
        if record.method == "POST" and len(parts) == 4:
            payload = record.json()
            if not payload.get("title"):
                return 422, b'{"message":"Validation Failed"}', "application/json"
            with self.lock:
                number = len(self.issues) + 1
                issue = {"number": number, "title": payload["title"], "body": payload.get("body", ""),
                         "state": "open", "labels": [{"name": n} for n in payload.get("labels", [])], "updates": 0}
                self.issues[str(number)] = issue
            return 201, json.dumps(issue).encode(), "application/json"
        if record.method == "PATCH" and len(parts) == 5:
            with self.lock:
                issue = self.issues.get(parts[4])
                if issue is None:
                    return 404, b'{"message":"Not Found"}', "application/json"
                issue.update({k: v for k, v in record.json().items() if k in ("title", "body", "state")})
                issue["updates"] += 1
            return 200, json.dumps(issue).encode(), "application/json"
        return 404, b'{"message":"Not Found"}', "application/json"


def start_receiver(receivers: list[Receiver], kind: str, **options: Any) -> Receiver:
    """Start a receiver and keep it in `receivers` (the `receivers` fixture stops them all)."""
    started = Receiver(kind, **options).start()
    receivers.append(started)
    return started


class SmtpInbox:
    """What an aiosmtpd receiver accepted; `refuse_next` answers the next message with a 451."""

    def __init__(self, refuse_next: bool = False) -> None:
        self.messages: list[Any] = []
        self.refuse_next = refuse_next

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next:
            self.refuse_next = False
            return "451 4.3.0 try again later"
        self.messages.append(envelope)
        return "250 OK"


@contextmanager
def smtp_receiver(refuse_next: bool = False) -> Iterator[tuple[SmtpInbox, int]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: its inbox and port, stopped on exit."""
    from aiosmtpd.controller import Controller

    from tests.support.serve import free_port

    inbox = SmtpInbox(refuse_next)
    for attempt in range(3):
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        try:
            controller.start()
            break
        except OSError:  # another process took the free port before the bind: draw another
            if attempt == 2:
                raise
    try:
        yield inbox, port
    finally:
        controller.stop()
