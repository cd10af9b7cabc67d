"""Run the real `ci-gate serve` in a subprocess on 127.0.0.1 (shared by tests/server and bench/).

Also builds the small distinct images those tests push to the local registry, and a tiny OSV
vulnerability store that matches them.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.tiny import TINY_CONFIG, tiny_layers

PASSWORD = "serve-test-password-7f3a"
"""The admin password the test servers run with (a test value, not a secret)."""

OPENSSL_ADVISORY = {
    "schema_version": "1.6.0", "id": "DSA-9999-1", "modified": "2024-01-02T00:00:00Z",
    "published": "2024-01-01T00:00:00Z", "aliases": ["CVE-2099-0001"], "summary": "openssl - security update",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]}],
    "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2099/dsa-9999"}],
}
"""A made-up Debian advisory that the tiny image's openssl 3.0.11-1~deb12u2 is affected by."""

DEMO_ADVISORY = {
    "schema_version": "1.6.0", "id": "GHSA-test-demo-0001", "modified": "2024-01-02T00:00:00Z",
    "published": "2024-01-01T00:00:00Z", "aliases": ["CVE-2099-0002"], "summary": "demo: a made-up flaw",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"}],
    "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}],
}
"""A made-up PyPI advisory for the tiny image's python package `demo` 1.0 (a non-os match)."""


def build_vuln_db(directory: Path) -> Path:
    """A vulnerability store holding the two advisories above."""
    from ci_gate.vulns.importers.osv import import_paths

    tree = directory / "osv"
    (tree / "Debian").mkdir(parents=True, exist_ok=True)
    (tree / "PyPI").mkdir(parents=True, exist_ok=True)
    (tree / "Debian" / "DSA-9999-1.json").write_text(json.dumps(OPENSSL_ADVISORY))
    (tree / "PyPI" / "GHSA-test-demo-0001.json").write_text(json.dumps(DEMO_ADVISORY))
    path = directory / "vulns.sqlite"
    import_paths([tree], path)
    return path


def build_variant(out: Path, index: int) -> OciImage:
    """The tiny image plus a layer naming `index`: a distinct digest per index, same packages."""
    layers: list[list[TarItem]] = [*tiny_layers(), [TarItem("etc", kind="dir", mode=0o755),
                                                    TarItem("etc/variant", f"variant {index}\n".encode())]]
    history = [{"created": "1970-01-01T00:00:00Z", "created_by": f"ADD layer {n} /"} for n in range(len(layers))]
    return build_oci_layout(out, layers, tag=f"v{index}", config=TINY_CONFIG, history=history)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(RuntimeError):
    """The server could not listen: another process took the port between free_port() and start."""


class ServeProcess:
    """`ci-gate serve` on a free port of 127.0.0.1 with its own data dir; start, kill, start again."""

    def __init__(self, data_dir: Path, vuln_db: Path | None = None, workers: int = 2,
                 environment: dict[str, str] | None = None, allow_registries: tuple[str, ...] = ("127.0.0.1",),
                 extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.allow_registries = allow_registries
        """`--allow-registry` values: by default the test registries on this machine's loopback."""
        self.extra_args = list(extra_args or [])
        """More command-line options (timeouts, insecure registries)."""
        self.environment = dict(environment or {})
        self.vuln_db = vuln_db
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-serve.log"
        self.session = requests.Session()
        self.session.auth = ("admin", PASSWORD)
        self.tls_arguments: list[str] = []
        """`--tls-cert`/`--tls-key` and friends when the server speaks HTTPS."""
        self.ca_file: Path | None = None
        """The CA that signed the server's certificate, when it speaks HTTPS."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, workers: int | None = None, same_port: bool = False) -> ServeProcess:
        """Start (again); when the port was taken meanwhile (by another process on this machine), move
        to a fresh one unless `same_port` (a client test that restarts a server under its feet)."""
        for _ in range(3):
            try:
                return self._start_once(workers)
            except PortTaken:
                if same_port:
                    raise
                self.port = free_port()
        return self._start_once(workers)

    def _start_once(self, workers: int | None) -> ServeProcess:
        if workers is not None:
            self.workers = workers
        command = [sys.executable, "-m", "ci_gate.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", str(self.data_dir), "--workers", str(self.workers), *self.tls_arguments]
        if self.vuln_db is not None:
            command += ["--vuln-db", str(self.vuln_db)]
        for allowed in self.allow_registries:
            command += ["--allow-registry", allowed]
        command += self.extra_args
        environment = {**os.environ, **self.environment, "CI_GATE_ADMIN_PASSWORD": PASSWORD}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if f"cannot listen on 127.0.0.1:{self.port}" in self.log():
                    raise PortTaken(self.port)
                raise RuntimeError(f"ci-gate serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                verify: str | bool = str(self.ca_file) if self.ca_file is not None else True
                if requests.get(f"{self.url}/health", timeout=1, verify=verify).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"ci-gate serve did not answer /health within 30 s:\n{self.log()}")

    def log(self) -> str:
        """The log's last 4000 characters: for failure messages."""
        return self.full_log()[-4000:]

    def full_log(self) -> str:
        """Everything the server logged (every start): for assertions on what it logged, or never did."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crash or an OOM kill would leave it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=60, **kwargs)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url + path, timeout=30, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(self.url + path, timeout=30, **kwargs)

    def add_tag(self, tag: str, force: bool = False, dockerfile: str | None = None) -> requests.Response:
        source: dict[str, Any] = {"pull_string": tag}
        if dockerfile is not None:
            source["dockerfile"] = base64.b64encode(dockerfile.encode()).decode()
        return self.post("/v2/images", params={"force": str(force).lower()}, json={"source": {"tag": source}})

    def wait_status(self, digest: str, wanted: tuple[str, ...] = ("analyzed", "analysis_failed"),
                    timeout: float = 120) -> dict[str, Any]:
        """Poll GET /v2/images/{digest} until its analysis_status is one of `wanted`; the record."""
        deadline = time.monotonic() + timeout
        record: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self.get(f"/v2/images/{digest}")
            response.raise_for_status()
            record = response.json()
            if record["analysis_status"] in wanted:
                return record
            time.sleep(0.1)
        raise AssertionError(f"{digest} still {record.get('analysis_status')} after {timeout} s:\n{self.log()}")

    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
        """Poll `condition` until it is truthy (its value) or `timeout` seconds passed (an AssertionError
        with the server's log): a generous deadline, as CI's 2 cores may be busy with other tests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"{what} did not happen within {timeout} s:\n{self.log()}")

    def vuln_watch_images(self) -> int:
        """Images in the vulnerability watcher's committed state (0 while it is absent or being written).
        A subscribed tag's image counted here has its baseline: a later store import is a change to it."""
        state = self.data_dir / "vuln-watch.sqlite"
        if not state.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=0.1) as connection:
                return int(connection.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        except sqlite3.Error:
            return 0

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
