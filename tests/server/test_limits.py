"""What an unauthenticated or misbehaving client can cost the server: memory, connections, guesses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ci_gate.server.limits import CLIENT_FAILURE_LIMIT, MAX_BODY_BYTES, USER_FAILURE_LIMIT, LoginThrottle, Throttled
from tests.server.raw_http import basic, connect, read_answer, request, seconds_until_closed
from tests.support.serve import PASSWORD, ServeProcess

REQUEST_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server whose clients have REQUEST_TIMEOUT seconds to send a request."""
    with ServeProcess(tmp_path_factory.mktemp("serve-limits") / "data", workers=0,
                      extra_args=["--request-timeout", str(REQUEST_TIMEOUT)]) as process:
        yield process


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_sixty_unauthenticated_16_mib_posts_do_not_grow_memory(strict_server: ServeProcess) -> None:
    payload = b"x" * MAX_BODY_BYTES  # at the cap, so only authentication can refuse it
    before = _memory_kib(strict_server.pid, "VmHWM")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: request(strict_server.port, "POST", "/v2/policies",
                                                  {"Content-Type": "application/json"}, payload,
                                                  source=f"127.0.1.{n + 1}"), range(60)))
    peak = _memory_kib(strict_server.pid, "VmHWM")
    # The server answers 401 at once and closes; the client sees the 401 or, when the kernel
    # reset the half-sent upload, nothing. Either way it could not send the body.
    assert all(a.status in (401, 0) for a in answers), [a.status for a in answers]
    assert any(a.status == 401 for a in answers)
    assert max(a.sent for a in answers) < MAX_BODY_BYTES
    print(f"server peak RSS {before // 1024} MiB -> {peak // 1024} MiB after 60 unauthenticated 16 MiB posts")
    assert peak - before < 64 * 1024, f"peak RSS grew {(peak - before) // 1024} MiB"
    assert strict_server.get("/v2/policies").status_code == 200


def test_a_declared_length_over_the_cap_is_refused_before_any_body_byte(strict_server: ServeProcess) -> None:
    with connect(strict_server.port) as sock:
        sock.sendall((f"POST /v2/policies HTTP/1.1\r\nHost: x\r\nAuthorization: {basic('admin', PASSWORD)}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode())
        answer = read_answer(sock)
    assert answer.status == 413 and answer.json()["error_type"] == "payload_too_large"


def test_a_streamed_body_over_the_cap_is_cut_off(strict_server: ServeProcess) -> None:
    chunk = b"x" * (1 << 20)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(24)) + b"0\r\n\r\n"
    before = _memory_kib(strict_server.pid, "VmHWM")
    with connect(strict_server.port) as sock:
        sock.sendall((f"POST /v2/policies HTTP/1.1\r\nHost: x\r\nAuthorization: {basic('admin', PASSWORD)}\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        sent = 0
        try:
            while sent < len(chunked):
                sock.sendall(chunked[sent:sent + (1 << 20)])
                sent += 1 << 20
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock, sent)
    assert answer.status in (413, 0)
    assert sent < len(chunked) or answer.status == 413  # never the whole 24 MiB taken and answered otherwise
    assert _memory_kib(strict_server.pid, "VmHWM") - before < 64 * 1024


def test_a_body_that_stops_arriving_is_a_408(strict_server: ServeProcess) -> None:
    with connect(strict_server.port) as sock:
        sock.sendall((f"POST /v2/policies HTTP/1.1\r\nHost: x\r\nAuthorization: {basic('admin', PASSWORD)}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\": ").encode())
        started = time.monotonic()
        answer = read_answer(sock)
    assert answer.status == 408 and answer.json()["code"] == 408
    assert REQUEST_TIMEOUT - 0.5 <= time.monotonic() - started < REQUEST_TIMEOUT + 3


def test_partial_headers_and_idle_connections_are_closed(strict_server: ServeProcess) -> None:
    with connect(strict_server.port) as sock:  # half a request head, then nothing
        sock.sendall(b"GET /v2/policies HTTP/1.1\r\nHost: x\r\nAuthoriz")
        assert seconds_until_closed(sock, 20) < REQUEST_TIMEOUT + 3
    with connect(strict_server.port) as sock:  # connects and never speaks
        assert seconds_until_closed(sock, 20) < REQUEST_TIMEOUT + 3
    with connect(strict_server.port) as sock:  # one good request, then a trickle that never ends the head
        sock.sendall(f"GET /v2/policies HTTP/1.1\r\nHost: x\r\nAuthorization: {basic('admin', PASSWORD)}\r\n\r\n"
                     .encode())
        assert read_answer(sock).status == 200
        started = time.monotonic()
        try:
            for byte in b"GET /v2/policies HTTP/1.1\r\nHost: x\r\n":
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - started > REQUEST_TIMEOUT + 3:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert seconds_until_closed(sock, 20) + (time.monotonic() - started) < 2 * REQUEST_TIMEOUT + 6
    # A client that sends its request in time is not affected.
    assert strict_server.get("/v2/policies").status_code == 200


def _login(port: int, source: str, password: str, path: str = "/v2/images") -> tuple[int, dict[str, str], bytes]:
    answer = request(port, "GET", path, {"Authorization": basic("admin", password)}, source=source)
    return answer.status, answer.headers, answer.body


def test_wrong_passwords_are_throttled_per_client_with_a_429(fresh_server: ServeProcess) -> None:
    fresh_server.start(workers=0)
    port = fresh_server.port
    statuses = [_login(port, "127.0.2.1", f"guess-{n}")[0] for n in range(CLIENT_FAILURE_LIMIT)]
    assert statuses == [401] * CLIENT_FAILURE_LIMIT
    status, headers, body = _login(port, "127.0.2.1", "guess-again")
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 60
    assert requests.models.complexjson.loads(body) == {
        "code": 429, "error_type": "too_many_requests",
        "message": f"Too many failed logins for this client address; retry after {headers['retry-after']} s",
        "detail": {"retry_after_seconds": int(headers["retry-after"])}}
    # The right password does not help the throttled address (the guesses are not checked at all) ...
    assert _login(port, "127.0.2.1", PASSWORD)[0] == 429
    status, _, body = _login(port, "127.0.2.1", PASSWORD, "/v1/images")
    assert status == 429 and requests.models.complexjson.loads(body)["httpcode"] == 429
    # ... while another address logs in as usual.
    assert _login(port, "127.0.2.2", PASSWORD)[0] == 200


def test_a_distributed_guess_locks_the_user_but_not_its_known_clients(fresh_server: ServeProcess) -> None:
    fresh_server.start(workers=0)
    port = fresh_server.port
    assert _login(port, "127.0.3.1", PASSWORD)[0] == 200  # the CI runner that uses the account
    per_address = CLIENT_FAILURE_LIMIT - 1  # each address stays under its own limit
    addresses = [f"127.0.4.{n + 1}" for n in range(-(-USER_FAILURE_LIMIT // per_address))]
    failures = 0
    for address in addresses:
        for n in range(per_address):
            if failures < USER_FAILURE_LIMIT:
                assert _login(port, address, f"guess-{n}")[0] == 401
                failures += 1
    status, headers, body = _login(port, "127.0.5.1", PASSWORD)
    assert status == 429 and "for this user" in requests.models.complexjson.loads(body)["message"]
    assert int(headers["retry-after"]) >= 1
    assert _login(port, "127.0.3.1", PASSWORD)[0] == 200
    # No credentials at all is a challenge, not a guess (clients that wait for WWW-Authenticate).
    for _ in range(CLIENT_FAILURE_LIMIT + 2):
        assert request(port, "GET", "/v2/images", source="127.0.6.1").status == 401
    wrong_key = request(port, "GET", "/v2/images", {"Authorization": basic("_api_key", "not-a-key")},
                        source="127.0.6.1")
    assert wrong_key.status == 401  # a wrong key names no user: counted against the address only


def test_the_throttle_window_slides() -> None:
    now = [1000.0]
    throttle = LoginThrottle(client_limit=3, user_limit=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("10.0.0.1", "admin")
        throttle.failed("10.0.0.1", "admin")
        now[0] += 10
    with pytest.raises(Throttled) as caught:
        throttle.check("10.0.0.1", "admin")
    assert caught.value.scope == "client" and caught.value.retry_after == 30  # the first failure ages out at 1060
    now[0] += 30
    throttle.check("10.0.0.1", "admin")  # one slot free again
    throttle.check("10.0.0.2", "admin")
    for address in ("10.0.0.2", "10.0.0.3", "10.0.0.5"):
        throttle.failed(address, "admin")
    with pytest.raises(Throttled) as caught:
        throttle.check("10.0.0.4", "admin")
    assert caught.value.scope == "user"
    throttle.check("10.0.0.4", "someone-else")


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle()

    def fail(n: int) -> None:
        throttle.failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", f"user-{n}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fail, range(25_000)))
    assert len(throttle._by_client) <= 10_000 and len(throttle._by_user) <= 10_000
