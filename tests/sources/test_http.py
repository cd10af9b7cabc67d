"""ci_gate.http: retries with Retry-After, errors without secrets, redaction, TLS on by default."""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_gate.http import (
    HttpError,
    RetryPolicy,
    TokenAuth,
    new_session,
    redact_headers,
    redact_url,
    retry_after_seconds,
    send,
)
from tests.sources.servers import refused_port

FAST = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.02)


class Scripted(http.server.ThreadingHTTPServer):
    """Answers each request with the next (status, headers) of a script; records what it got."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]):
        self.script = script
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.seen.append((self.command, self.path, dict(self.headers)))
                status, headers = server.script.pop(0) if server.script else (200, {})
                body = b'{"ok": true}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = answer
            do_POST = answer

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def serve(script: list[tuple[int, dict[str, str]]]) -> Iterator[Scripted]:
    server = Scripted(script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_429_and_503_are_retried_and_retry_after_is_read() -> None:
    for server in serve([(429, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]):
        response = send(new_session(), "GET", f"{server.url}/v2/", timeout=5, retry=FAST)
        assert response.status_code == 200
        assert len(server.seen) == 3


def test_after_the_last_try_the_last_response_is_returned() -> None:
    for server in serve([(503, {})] * 5):
        response = send(new_session(), "GET", f"{server.url}/x", timeout=5, retry=FAST)
        assert response.status_code == 503
        assert response.json() == {"ok": True}  # the body of the last answer is still readable
        assert len(server.seen) == FAST.attempts


def test_client_errors_are_not_retried() -> None:
    for server in serve([(404, {}), (200, {})]):
        assert send(new_session(), "GET", f"{server.url}/x", timeout=5, retry=FAST).status_code == 404
        assert len(server.seen) == 1


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds(date, now=1_000_000) == pytest.approx(30.0)
    assert retry_after_seconds(email.utils.formatdate(10, usegmt=True), now=1_000_000) == 0.0


class Mute:
    """Accepts TCP connections, counts them, holds them open and never answers."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


def test_a_timeout_is_retried_for_get_but_not_for_post() -> None:
    mute = Mute()
    try:
        with pytest.raises(HttpError) as caught:
            send(new_session(), "GET", f"http://127.0.0.1:{mute.port}/v2/", timeout=0.2, retry=FAST)
        assert caught.value.kind == "timeout"
        assert str(caught.value) == f"GET http://127.0.0.1:{mute.port}/v2/: no answer within 0.2s"
        assert len(mute.connections) == FAST.attempts
        with pytest.raises(HttpError) as posted:
            send(new_session(), "POST", f"http://127.0.0.1:{mute.port}/comments", timeout=0.2, retry=FAST,
                 data=b"x")
        assert posted.value.kind == "timeout"
        assert len(mute.connections) == FAST.attempts + 1  # a POST that may have landed is never repeated
    finally:
        mute.close()


def test_errors_and_logs_never_show_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ci_gate.http")
    with refused_port() as port, pytest.raises(HttpError) as caught:
        url = f"http://robot:hunter2@127.0.0.1:{port}/token?service=x&access_token=abc123&scope=repo"
        send(new_session(), "GET", url, timeout=1, retry=FAST, headers={"Authorization": "Bearer abc123"})
    error = caught.value
    assert error.kind == "connection" and error.host == f"127.0.0.1:{port}"
    shown = f"{error} {error!r} {error.url} {caplog.text}"
    assert "hunter2" not in shown and "abc123" not in shown and "robot" not in shown
    assert "connection refused" in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no requests exception chained with the URL


def test_a_webhook_path_secret_is_not_shown_by_errors_or_retry_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A `/hooks/<key>` receiver (Mattermost, n8n, `watch --notify`) carries its credential in the path:
    a failed or retried call must not print it."""
    caplog.set_level(logging.DEBUG, logger="ci_gate.http")
    for server in serve([(503, {"Retry-After": "0"})] * FAST.attempts):
        assert send(new_session(), "GET", f"{server.url}/hooks/k3yXq9Zp2LmW/deliver", timeout=5,
                    retry=FAST).status_code == 503
        assert "retrying" in caplog.text and "/hooks/***/***" in caplog.text
    with refused_port() as port, pytest.raises(HttpError) as caught:
        send(new_session(), "GET", f"http://127.0.0.1:{port}/hooks/k3yXq9Zp2LmW/deliver", timeout=1, retry=FAST)
    shown = f"{caught.value} {caught.value!r} {caught.value.url} {caplog.text}"
    assert "k3yXq9Zp2LmW" not in shown and "deliver" not in shown and "/hooks/***/***" in str(caught.value)
    assert redact_url("https://hooks.slack.com/services/T0/B0/s3cr3t") == "https://hooks.slack.com/services/***/***/***"
    digest = "sha256:" + "a" * 64  # a registry path keeps its digest: only known webhook paths are masked
    assert redact_url(f"https://registry.example/v2/app/blobs/{digest}") == \
        f"https://registry.example/v2/app/blobs/{digest}"


def test_library_debug_logs_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for server in serve([(200, {})]):
        send(new_session(), "GET", f"{server.url}/token?service=s&access_token=abc123&password=pw9", timeout=5)
        assert "/token?service=s" in caplog.text  # urllib3 did log the request line
    assert "abc123" not in caplog.text and "pw9" not in caplog.text


def test_redaction_helpers() -> None:
    assert redact_url("https://u:p@h.example/a?token=t&page=2&X-Amz-Signature=s") == \
        "https://h.example/a?token=***&page=2&X-Amz-Signature=***"
    assert redact_headers({"Authorization": "Bearer t", "PRIVATE-TOKEN": "g", "Accept": "a"}) == \
        {"Authorization": "***", "PRIVATE-TOKEN": "***", "Accept": "a"}
    auth = TokenAuth("glpat-secret", scheme="Bearer")
    assert "glpat-secret" not in repr(auth)
    session = new_session()
    session.auth = auth
    session.headers["Authorization"] = "Bearer glpat-secret"
    assert "glpat-secret" not in repr(session)


def test_token_auth_sets_the_header() -> None:
    for server in serve([(200, {})]):
        send(new_session(), "GET", f"{server.url}/api", timeout=5, auth=TokenAuth("t0k", scheme="token"))
        assert server.seen[0][2]["Authorization"] == "token t0k"


def test_tls_is_verified_by_default_and_a_ca_bundle_can_be_given(tmp_path: Any) -> None:
    assert new_session().verify is True
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert new_session(ca_bundle=str(bundle)).verify == str(bundle)
    # Speaking TLS to a plain-HTTP server fails as a TLS error, not a hang or a traceback.
    for server in serve([(200, {})]):
        with pytest.raises(HttpError) as caught:
            send(new_session(), "GET", server.url.replace("http://", "https://") + "/v2/", timeout=5, retry=FAST)
        assert caught.value.kind in ("tls", "connection")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate from a private CA made here with openssl."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=ci-gate test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    server = Scripted([])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", folder / "ca.pem"
    server.shutdown()
    server.server_close()


def test_a_private_ca_is_rejected_by_default_and_trusted_with_a_ca_bundle(tls_server: tuple[str, Path]) -> None:
    url, ca_bundle = tls_server
    with pytest.raises(HttpError) as caught:
        send(new_session(), "GET", f"{url}/v2/", timeout=5, retry=FAST)
    assert caught.value.kind == "tls"
    assert send(new_session(ca_bundle=str(ca_bundle)), "GET", f"{url}/v2/", timeout=5).status_code == 200
    with pytest.raises(HttpError) as missing:
        send(new_session(ca_bundle="/nonexistent/ca.pem"), "GET", f"{url}/v2/", timeout=5, retry=FAST)
    assert missing.value.kind == "tls" and "cannot use the CA bundle" in str(missing.value)
