"""The notification host check judges the address a connection really goes to, not only the name.

Real senders (ci_gate.notify.senders) against real receivers on 127.0.0.1. Names the tests control
(`*.rebind.test`, which no DNS server answers) are pointed at the receivers through the sender's
resolver hook (`hosts.resolve`); `localhost` goes through the system resolver as it is.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from ci_gate.notify import hosts
from ci_gate.notify.endpoints import Endpoint, parse_endpoint
from ci_gate.notify.senders import Delivery, Refused, RetryLater, send
from tests.notify.receivers import Receiver, smtp_receiver, start_receiver

EVENT = {"id": "e" * 32, "type": "user.image.tag_updated", "level": "INFO", "message": "tag updated",
         "notification_type": "tag_update", "subscription_key": "registry.example.test/app:1",
         "details": {"last_eval": [], "curr_eval": ["sha256:" + "a" * 64]}, "timestamp": "2026-01-01T00:00:00.000000Z"}
"""An event as the outbox holds it (ci_gate.server.events.add_event)."""


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_NOTIFY_TIMEOUT_SECONDS", "2")


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The resolver: name -> the addresses it answers; every lookup is counted in `answers["looked up"]`."""
    table: dict[str, list[str]] = {"looked up": []}
    system: Callable[[str, int], list[str]] = hosts.resolve

    def resolve(host: str, port: int) -> list[str]:
        table["looked up"].append(host)
        return table[host] if host in table else system(host, port)

    monkeypatch.setattr(hosts, "resolve", resolve)
    return table


def webhook(url: str) -> Endpoint:
    return parse_endpoint("webhook", {"url": url})


def deliver(endpoint: Endpoint, allowed: tuple[str, ...]) -> int | None:
    return send(endpoint, Delivery("k" * 32, EVENT, "admin", 1, 2_000_000_000, allowed)).status


def test_any_host_does_not_reach_loopback_or_metadata_addresses(receivers: list[Receiver],
                                                                answers: dict[str, list[str]]) -> None:
    hook = start_receiver(receivers, "webhook")
    with pytest.raises(Refused, match=r"resolves to 127\.0\.0\.1.*--allow-notify-host 127\.0\.0\.1$"):
        deliver(webhook(hook.url + "/in"), ("*",))
    answers["metadata.rebind.test"] = ["169.254.169.254"]
    with pytest.raises(Refused, match=r"169\.254\.169\.254"):
        deliver(webhook("http://metadata.rebind.test/latest/meta-data/"), ("*",))
    assert hook.received == []


def test_an_allowed_name_that_resolves_to_loopback_needs_the_address_allowed(receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook")
    port = hook.url.rsplit(":", 1)[1]
    by_name = webhook(f"http://localhost:{port}/in")  # the system resolver: localhost is a loopback address
    with pytest.raises(Refused, match="resolves to"):
        deliver(by_name, ("localhost",))
    assert hook.received == []
    assert deliver(by_name, ("localhost", f"127.0.0.1:{port}")) == 200
    assert deliver(by_name, ("localhost", "127.0.0.0/8")) == 200
    with pytest.raises(Refused):
        deliver(by_name, ("localhost", "127.0.0.1:1"))  # the address allowed on another port only
    assert [r.headers["host"] for r in hook.received] == [f"localhost:{port}"] * 2


def test_a_rebinding_name_is_resolved_once_and_the_checked_address_is_the_one_connected(
        receivers: list[Receiver], answers: dict[str, list[str]]) -> None:
    hook = start_receiver(receivers, "webhook")
    port = int(hook.url.rsplit(":", 1)[1])
    endpoint = webhook(f"http://hooks.rebind.test:{port}/in")
    answers["hooks.rebind.test"] = ["127.0.0.1"]
    with pytest.raises(Refused, match=r"resolves to 127\.0\.0\.1"):
        deliver(endpoint, ("hooks.rebind.test",))  # allowed by name, but now pointing inside
    # allowed with its address: delivered to that address, though no real resolver knows the name
    assert deliver(endpoint, ("hooks.rebind.test", "127.0.0.1")) == 200
    assert answers["looked up"] == ["hooks.rebind.test"] * 2
    assert [r.headers["host"] for r in hook.received] == [f"hooks.rebind.test:{port}"]
    # an answer with an internal address first is skipped for the one the list allows
    answers["hooks.rebind.test"] = ["10.9.9.9", "127.0.0.1"]
    assert deliver(endpoint, ("hooks.rebind.test", "127.0.0.1")) == 200
    answers["hooks.rebind.test"] = []
    with pytest.raises(RetryLater, match="cannot resolve"):
        deliver(endpoint, ("hooks.rebind.test", "127.0.0.1"))


def test_a_pinned_https_connection_still_verifies_the_certificate_against_the_name(
        receivers: list[Receiver], answers: dict[str, list[str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hooks.rebind.test").configure_cert(context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    hook = start_receiver(receivers, "webhook", tls=context)
    port = int(hook.url.rsplit(":", 1)[1])
    answers["hooks.rebind.test"] = answers["other.rebind.test"] = ["127.0.0.1"]
    assert deliver(webhook(f"https://hooks.rebind.test:{port}/in"), ("hooks.rebind.test", "127.0.0.1")) == 200
    with pytest.raises(RetryLater):  # the certificate names hooks.rebind.test, not this name
        deliver(webhook(f"https://other.rebind.test:{port}/in"), ("other.rebind.test", "127.0.0.1"))
    assert [r.path for r in hook.received] == ["/in"]


def test_email_connects_to_the_checked_address(answers: dict[str, list[str]]) -> None:
    with smtp_receiver() as (handler, port):
        email = parse_endpoint("email", {"smtp_host": "mail.rebind.test", "smtp_port": port,
                                         "from": "ci-gate@example.test", "to": ["sec@example.test"]})
        answers["mail.rebind.test"] = ["127.0.0.1"]
        with pytest.raises(Refused, match=r"resolves to 127\.0\.0\.1"):
            deliver(email, ("mail.rebind.test",))
        assert handler.messages == []
        assert deliver(email, ("mail.rebind.test", "127.0.0.1")) == 250
        assert len(handler.messages) == 1


@pytest.mark.parametrize(("url", "allowlist", "allowed"), [
    ("http://169.254.169.254/latest/meta-data/", ("*",), False),
    ("http://[::ffff:169.254.169.254]/x", ("*",), False),
    ("http://10.1.2.3:8080/x", ("10.0.0.0/8",), True),
    ("http://10.1.2.3:8080/x", ("10.1.2.3:8080",), True),
    ("http://10.1.2.3:8080/x", ("*",), False),
    ("http://hooks.example.test/x", ("*",), True),  # a name is resolved, and judged, at send time
])
def test_saving_an_endpoint_judges_an_address_written_in_it(url: str, allowlist: tuple[str, ...],
                                                            allowed: bool) -> None:
    entries = tuple(hosts.parse_entry(entry) for entry in allowlist)
    if allowed:
        hosts.check_endpoint(webhook(url), entries)
    else:
        with pytest.raises(hosts.HostNotAllowed):
            hosts.check_endpoint(webhook(url), entries)


def test_an_address_block_is_an_entry_and_a_url_still_is_not() -> None:
    assert hosts.parse_entry("10.0.0.1/8") == "10.0.0.0/8"
    assert hosts.parse_entry("fd00::/8") == "fd00::/8"
    for wrong in ("http://hooks.example.test/x", "hooks.example.test/x", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="--allow-notify-host takes"):
            hosts.parse_entry(wrong)


def test_a_pinned_request_does_not_go_through_a_proxy(receivers: list[Receiver], answers: dict[str, list[str]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    hook = start_receiver(receivers, "webhook")
    proxy = start_receiver(receivers, "webhook")  # a proxy would resolve the name again, unchecked
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    answers["hooks.rebind.test"] = ["127.0.0.1"]
    port = int(hook.url.rsplit(":", 1)[1])
    assert deliver(webhook(f"http://hooks.rebind.test:{port}/in"), ("hooks.rebind.test", "127.0.0.1")) == 200
    assert len(hook.received) == 1 and proxy.received == []


def test_a_bare_ipv6_address_is_an_entry_and_the_refusal_suggests_one_that_parses() -> None:
    """`--allow-notify-host ::1` was refused though the refusal of a delivery to [::1] suggested `::1`."""

    class Ipv6Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = Ipv6Server(("::1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = webhook(f"http://[::1]:{server.server_address[1]}/in")
        with pytest.raises(Refused) as refused:
            deliver(hook, ("*",))
        suggested = str(refused.value).rsplit(" ", 1)[1]
        assert suggested == "[::1]"
        for entry in (suggested, "::1", " ::1 "):
            allowed = (hosts.parse_entry(entry),)
            assert allowed == ("[::1]",)
            hosts.check_endpoint(hook, allowed)
            assert deliver(hook, allowed) == 200
        with pytest.raises(ValueError, match="--allow-notify-host takes"):
            hosts.parse_entry("::1::2")
    finally:
        server.shutdown()
        server.server_close()
