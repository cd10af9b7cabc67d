"""`ci-gate watch` and `gate --save-sbom` as a user meets them: the inputs a nightly job gets wrong.

Real parts only: the CLI in a fresh process, a real OCI image gated with `--save-sbom`, a real OSV
import into a real store, and a real HTTP receiver on 127.0.0.1. Each bad input must give one line on
stderr and exit 2, never a traceback, never a "delivered" that was not, never a write outside the
outputs asked for.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.sources.servers import refused_port
from tests.support.devices import NULL_DEVICE, make_null_device
from tests.support.oci import OciImage
from tests.watch.conftest import osv_record


def _cli(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CI": "true", "CI_GATE_CACHE_DIR": str(cwd / "cache"), "CI_GATE_VULN_DB": ""}
    environment.pop("CI_GATE_NOTIFY_URL", None)
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *arguments], capture_output=True, text=True,
                          timeout=300, env=environment, cwd=cwd)


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@dataclass
class Receiver:
    """A webhook receiver: records each POST body and answers `status` (with `location` on a redirect)."""

    url: str = ""
    status: int = 200
    location: str = ""
    posts: list[Any] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.posts.append(json.loads(body))
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # where a redirected POST would land as a GET
            state.gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/vuln_update"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Pending:
    """A folder with one saved SBOM, its baseline recorded, and a store with a new advisory for it."""

    sboms: Path
    store: Path
    state: Path


@pytest.fixture
def pending(tmp_path: Path, tiny_oci: OciImage) -> Pending:
    sboms, store, state = tmp_path / "sboms", tmp_path / "vulns.sqlite", tmp_path / "watch.sqlite"
    first = tmp_path / "osv0" / "DLA-0000-1.json"
    first.parent.mkdir()
    first.write_text(json.dumps(osv_record("DLA-0000-1", "glibc", "2.36-9+deb12u4")))
    assert _cli(tmp_path, "db", "import", str(first.parent), "--vuln-db", str(store)).returncode == 0
    gated = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", "--vuln-db", str(store), "--tag",
                 "registry.example/tiny:1", "--save-sbom", str(sboms), "--fail-on", "never")
    assert gated.returncode == 0, gated.stderr
    baseline = _cli(tmp_path, "watch", "--sbom-dir", str(sboms), "--vuln-db", str(store), "--state", str(state))
    assert baseline.returncode == 0 and "baseline recorded for 1 image(s)" in baseline.stdout, baseline.stderr
    delta = tmp_path / "osv1" / "DSA-9998-1.json"
    delta.parent.mkdir()
    delta.write_text(json.dumps(osv_record("DSA-9998-1", "openssl", "3.0.13-1~deb12u1")))
    assert _cli(tmp_path, "db", "import", str(delta.parent), "--vuln-db", str(store)).returncode == 0
    return Pending(sboms, store, state)


def _watch(tmp_path: Path, pending: Pending, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli(tmp_path, "watch", "--sbom-dir", str(pending.sboms), "--vuln-db", str(pending.store), *extra)


# --- --notify ----------------------------------------------------------------------------------------


def test_a_notify_url_that_does_not_parse_is_one_line(tmp_path: Path, pending: Pending) -> None:
    result = _watch(tmp_path, pending, "--state", str(pending.state), "--notify", "http://[::1/hook?token=abc123")
    _one_line(result, "--notify")
    assert "abc123" not in result.stderr


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirecting_receiver_is_not_counted_as_delivered(tmp_path: Path, pending: Pending, receiver: Receiver,
                                                           status: int) -> None:
    # An http→https redirect at a load balancer answers the POST with 301: requests would re-send it as a
    # GET, get 200 and call the event delivered; the receiver never processed it and the next run is silent.
    receiver.status, receiver.location = status, "/landing?token=elsewhere-secret"
    failed = _watch(tmp_path, pending, "--state", str(pending.state), "--notify", receiver.url)
    _one_line(failed, f"HTTP {status}", "redirect")
    assert "/landing" not in failed.stderr and "elsewhere-secret" not in failed.stderr
    assert receiver.gets == []  # not followed
    receiver.status, receiver.location, receiver.posts = 200, "", []
    again = _watch(tmp_path, pending, "--state", str(pending.state), "--notify", receiver.url)
    assert again.returncode == 0, again.stderr
    assert [body["data"]["notification_payload"]["subscription_key"] for body in receiver.posts] == [
        "registry.example/tiny:1"]  # the state was kept: the event came again


# --- --state -----------------------------------------------------------------------------------------


def test_state_on_a_device_is_refused_and_the_device_left_alone(tmp_path: Path, pending: Pending) -> None:
    device = make_null_device(tmp_path / "null")
    result = _watch(tmp_path, pending, "--state", str(device))
    _one_line(result, "--state", "regular file")
    status = device.stat()
    assert stat.S_ISCHR(status.st_mode) and status.st_rdev == NULL_DEVICE
    assert not list(tmp_path.glob("null-*"))  # no journal beside it


def test_state_on_stdout_never_writes_the_database_to_stdout(tmp_path: Path, pending: Pending) -> None:
    result = _watch(tmp_path, pending, "--state", "/dev/stdout")
    _one_line(result, "--state", "regular file")
    assert result.stdout == ""


def test_state_under_a_file_names_the_parent(tmp_path: Path, pending: Pending) -> None:
    (tmp_path / "plain").write_text("x")
    result = _watch(tmp_path, pending, "--state", str(tmp_path / "plain" / "watch.sqlite"))
    _one_line(result, "--state", "not a folder")
    assert "Errno" not in result.stderr


# --- gate --save-sbom ----------------------------------------------------------------------------------


def test_save_sbom_into_an_unusable_folder_fails_before_any_report(tmp_path: Path, tiny_oci: OciImage) -> None:
    # The folder is checked before the gate runs: a report written, then exit 2 without a verdict,
    # would leave an evaluation behind for a run that failed.
    (tmp_path / "plain").write_text("x")
    report = tmp_path / "out" / "evaluation.json"
    for folder in (tmp_path / "plain" / "sboms", Path("/proc/ci-gate-sboms")):
        result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", "--json", str(report), "--save-sbom", str(folder))
        _one_line(result, "--save-sbom")
        assert not report.exists() and not report.parent.exists()


def test_a_compare_to_that_cannot_be_read_names_the_flag(tmp_path: Path, tiny_oci: OciImage) -> None:
    # "cannot read x.json" or "could not connect to registry …" alone reads as if the gated image failed.
    (tmp_path / "corrupt.json").write_text('{"broken')
    for previous in (f"sbom:{tmp_path / 'missing.json'}", f"sbom:{tmp_path / 'corrupt.json'}",
                     f"oci-dir:{tmp_path / 'no-layout'}"):
        result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", "--compare-to", previous)
        _one_line(result, f"--compare-to {previous}")


def test_sigterm_while_a_receiver_hangs_keeps_the_state_and_leaves_no_journal(tmp_path: Path, pending: Pending,
                                                                              receiver: Receiver) -> None:
    hanging = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
        before = pending.state.read_bytes()
        environment = {**os.environ, "CI": "true", "CI_GATE_CACHE_DIR": str(tmp_path / "cache")}
        process = subprocess.Popen([sys.executable, "-m", "ci_gate.cli", "watch", "--sbom-dir", str(pending.sboms),
                                    "--vuln-db", str(pending.store), "--state", str(pending.state), "--notify", url],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        connection, _ = hanging.accept()  # the POST is under way
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        connection.close()
    finally:
        hanging.close()
    assert process.returncode == 143 and stderr.strip() == "ci-gate: interrupted", stderr
    assert pending.state.read_bytes() == before
    assert sorted(path.name for path in pending.state.parent.glob(pending.state.name + "*")) == [pending.state.name]
    again = _watch(tmp_path, pending, "--state", str(pending.state), "--notify", receiver.url)
    assert again.returncode == 0, again.stderr
    assert len(receiver.posts) == 1  # the event interrupted mid-delivery is sent by the next run


def test_a_missing_ca_bundle_fails_on_a_quiet_night_too(tmp_path: Path, pending: Pending) -> None:
    # Only the night an event must go out would have found the typo, and then lost the event's night.
    fresh = tmp_path / "fresh.sqlite"  # a baseline run: nothing to send, the bundle is never opened
    result = _watch(tmp_path, pending, "--state", str(fresh), "--ca-bundle", str(tmp_path / "typo.pem"))
    _one_line(result, "--ca-bundle")
    (tmp_path / "bundle-folder").mkdir()
    _one_line(_watch(tmp_path, pending, "--state", str(fresh), "--ca-bundle", str(tmp_path / "bundle-folder")),
              "--ca-bundle")
    assert not fresh.exists()


def test_an_unreachable_receiver_names_only_its_origin(tmp_path: Path, pending: Pending) -> None:
    with refused_port() as port:  # nothing listens there, nor can anything start to meanwhile
        url = f"http://hookuser:basic-pass-789@127.0.0.1:{port}/services/T0/B0/path-secret-321?token=query-secret-654"
        result = _watch(tmp_path, pending, "--state", str(pending.state), "--notify", url)
    _one_line(result, f"http://127.0.0.1:{port}", "the next run sends it again")
    for secret in ("hookuser", "basic-pass-789", "path-secret-321", "query-secret-654"):
        assert secret not in result.stderr and secret not in result.stdout


def test_events_without_a_receiver_name_the_variable_the_pipelines_use(tmp_path: Path, pending: Pending) -> None:
    # The nightly templates pass the URL as CI_GATE_NOTIFY_URL from a secret: an unset secret is an empty value.
    environment = {**os.environ, "CI": "true", "CI_GATE_CACHE_DIR": str(tmp_path / "cache"), "CI_GATE_NOTIFY_URL": ""}
    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "watch", "--sbom-dir", str(pending.sboms),
                             "--vuln-db", str(pending.store), "--state", str(pending.state)],
                            capture_output=True, text=True, timeout=300, env=environment)
    _one_line(result, "CI_GATE_NOTIFY_URL", "state was kept")
