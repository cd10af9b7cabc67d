"""Slow and hostile registries: adds have a deadline, other answers never wait, errors are no oracle."""

from __future__ import annotations

import contextlib
import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.sources.servers import refused_port
from tests.support.serve import PASSWORD, ServeProcess

DEADLINE = 2.0


@contextlib.contextmanager
def hanging_registry() -> Iterator[int]:
    """A port that accepts every connection (a large backlog, accepted in a thread) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


@contextlib.contextmanager
def http_stand_in(answer: Any) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 whose every GET is answered by `answer(handler)`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            answer(self)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _redirect_to(location: str) -> Any:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location.replace("{path}", handler.path))
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return answer


def _status(code: int) -> Any:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        body = b'{"admin-panel": "internal service v1.2"}'
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def _add(server: ServeProcess, pull_string: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = requests.post(f"{server.url}/v2/images", auth=("admin", PASSWORD), timeout=60,
                           json={"source": {"tag": {"pull_string": pull_string}}})
    return answer, time.monotonic() - started


def test_a_hanging_registry_never_slows_other_answers(tmp_path: Path) -> None:
    with hanging_registry() as port, ServeProcess(
            tmp_path / "data", workers=0,
            extra_args=["--registry-timeout", str(DEADLINE), "--insecure-registry", f"127.0.0.1:{port}"]) as server:
        latencies: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            session = requests.Session()
            session.auth = ("admin", PASSWORD)
            while not stop.is_set():
                started = time.monotonic()
                assert session.get(f"{server.url}/v2/policies", timeout=30).status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            with ThreadPoolExecutor(40) as pool:
                answers = list(pool.map(lambda n: _add(server, f"127.0.0.1:{port}/app{n}:v1"), range(60)))
        finally:
            stop.set()
            poller.join()
        statuses = {a.status_code for a, _ in answers}
        assert statuses <= {400, 503}, statuses
        assert max(elapsed for _, elapsed in answers) < DEADLINE + 4
        for answer, _ in answers:
            if answer.status_code == 400:  # an operator-named registry: the real reason
                assert f"did not answer within {DEADLINE:g} s" in answer.json()["message"]
            else:
                assert answer.headers["Retry-After"].isdigit()
        print(f"60 adds to a hanging registry: slowest answer {max(e for _, e in answers):.1f} s; "
              f"GET /v2/policies meanwhile: {len(latencies)} answers, slowest {max(latencies):.2f} s")
        assert len(latencies) >= 5 and max(latencies) < 1.0


def test_a_redirect_loop_is_reported_as_one(tmp_path: Path) -> None:
    with http_stand_in(_redirect_to("{path}")) as port, ServeProcess(
            tmp_path / "data", workers=0, extra_args=["--insecure-registry", f"127.0.0.1:{port}"]) as server:
        answer, _ = _add(server, f"127.0.0.1:{port}/app:v1")
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert re.search(r"redirected too often \(a redirect loop\)", message) and "TLS" not in message


def test_errors_for_registries_nobody_named_are_all_alike(tmp_path: Path) -> None:
    """No port-scan oracle: for registries the operator did not name (pulls allowed by '*'), refused,
    hanging, a web service's 200/404/500 and a redirect to an internal port all read the same,
    naming neither the status nor the redirect target."""
    messages: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        # Refused ports are held (bound, never listening) to the end: no stand-in or server started below
        # can be given one of them, and the internal port stays distinct from every target.
        internal = stack.enter_context(refused_port())
        targets: list[tuple[str, Any]] = [("refused", None), ("hanging", None),
                                          ("ok", _status(200)), ("not found", _status(404)), ("error", _status(500)),
                                          ("redirect", _redirect_to(f"http://127.0.0.1:{internal}/secret")),
                                          ("loop", _redirect_to("{path}"))]
        ports: dict[str, int] = {}
        for name, answer in targets:
            if name == "refused":
                ports[name] = stack.enter_context(refused_port())
            elif name == "hanging":
                ports[name] = stack.enter_context(hanging_registry())
            else:
                ports[name] = stack.enter_context(http_stand_in(answer))
        # '*' lets the server pull from any registry, but names none: their errors stay generic.
        server = stack.enter_context(ServeProcess(tmp_path / "data", workers=0, allow_registries=("*",),
                                                  extra_args=["--registry-timeout", str(DEADLINE)]))
        for name, port in ports.items():
            answer, _ = _add(server, f"127.0.0.1:{port}/app:v1")
            assert answer.status_code == 400, (name, answer.text)
            text = answer.json()["message"]
            assert str(internal) not in text and "internal service" not in text
            messages[name] = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
        log = server.full_log()
    assert len(set(messages.values())) == 1, messages
    assert not re.search(r"refused|404|500|timed out|within|redirect|TLS", next(iter(messages.values())))
    assert re.search(r"redirected too often \(a redirect loop\)", log)  # the operator still learns what happened
    assert "did not answer with an image manifest" in log
