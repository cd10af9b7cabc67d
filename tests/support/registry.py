"""A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for tests.

Always our own config in a scratch folder (never the stock /etc/docker/registry/config.yml,
which listens on all interfaces), a free loopback port, a readiness poll on /v2/, and a
terminate-then-kill teardown.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.tools import require_tool

__all__ = ["RegistryServer", "free_port"]

READY_TIMEOUT_SECONDS = 30.0
"""Generous: on a loaded 2-core CI machine the registry can take seconds to answer its first request."""
STOP_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RegistryServer:
    """A docker-registry process serving plain HTTP on 127.0.0.1; optionally with basic auth."""

    workdir: Path
    """Scratch folder holding config.yml, the storage root, htpasswd and registry.log."""
    username: str | None = None
    """Basic-auth user; None serves anonymously."""
    password: str | None = None
    """Basic-auth password (bcrypt-hashed into htpasswd)."""
    port: int = 0
    """Bound port; chosen at start when 0."""
    process: subprocess.Popen[bytes] | None = None
    """The running server."""

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr."""
        return self.workdir / "registry.log"

    @property
    def auth_file(self) -> Path | None:
        """A containers/docker auth file (`{"auths": {HOST: {"auth": b64}}}`), or None without auth."""
        path = self.workdir / "auth.json"
        return path if path.exists() else None

    def _write_auth_file(self) -> None:
        if self.username is None or self.password is None:
            return
        path = self.workdir / "auth.json"
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        path.write_text(json.dumps({"auths": {self.host: {"auth": token}}}))
        path.chmod(0o600)

    @property
    def creds(self) -> tuple[str, str] | None:
        """(username, password) for `push`, or None without auth."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def _write_config(self) -> Path:
        storage = self.workdir / "data"
        storage.mkdir(parents=True, exist_ok=True)
        lines = [
            "version: 0.1",
            "log: {level: info, fields: {service: registry}}",
            "storage:",
            f"  filesystem: {{rootdirectory: {json.dumps(str(storage))}}}",
            "  delete: {enabled: true}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  headers: {X-Content-Type-Options: [nosniff]}",
            "health:",
            "  storagedriver: {enabled: false}",
        ]
        if self.username is not None and self.password is not None:
            hashed = subprocess.run([require_tool("htpasswd"), "-Bbn", self.username, self.password], check=True,
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(hashed)
            lines += ["auth:", f"  htpasswd: {{realm: basic-realm, path: {json.dumps(str(htpasswd))}}}"]
        config = self.workdir / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> RegistryServer:
        """Start the server and wait until /v2/ answers (200, or 401 with auth)."""
        binary = require_tool("docker-registry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):  # the free port may be taken between probe and bind
            self.port = free_port()
            config = self._write_config()
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait_ready():
                self._write_auth_file()
                return self
            if b"address already in use" not in self.log_path.read_bytes():
                break
        log_text = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"docker-registry did not become ready on {self.host}; log tail:\n{log_text}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):
                    return True
            except urllib.error.HTTPError as error:
                if error.code == 401:  # basic auth is on: the server is up
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Terminate, then kill if it has not exited within a few seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
