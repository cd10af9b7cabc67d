"""Fixtures for `ci-gate watch` and tag drift: real OCI images, a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.drift_images import DriftImages, build_drift_images


@pytest.fixture(scope="session")
def drift_images(tmp_path_factory: pytest.TempPathFactory) -> DriftImages:
    return build_drift_images(tmp_path_factory.mktemp("drift-images"))


def run_cli(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *arguments], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CI": "true", **(env or {})})


@dataclass
class Receiver:
    """A webhook receiver: records every POST (headers and JSON body) and answers `status`."""

    url: str
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/vuln_update"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def osv_record(identifier: str, package: str, fixed: str, aliases: tuple[str, ...] = (),
               modified: str = "2025-01-02T00:00:00Z", urgency: str = "high") -> dict[str, Any]:
    """A Debian 12 OSV record in the shape OSV's Debian export publishes."""
    return {"id": identifier, "modified": modified, "published": "2025-01-01T00:00:00Z", "aliases": list(aliases),
            "summary": f"{package} flaw",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                          "ecosystem_specific": {"urgency": urgency}}]}
