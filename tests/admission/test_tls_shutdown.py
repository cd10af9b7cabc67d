"""serve over HTTPS stops promptly on SIGTERM while a client holds an idle keep-alive connection.

asyncio waits 30 s for a TLS peer's close_notify by default; a client that keeps its connection
open and silent (requests' pool does) held serve for those 30 s, a pod's whole default grace period.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from ci_gate.server.app import SHUTDOWN_GRACE_SECONDS
from tests.admission.conftest import ADMISSION_CONFIG, TlsFiles
from tests.admission.support import TlsServeProcess


def test_sigterm_with_an_idle_tls_keep_alive_connection_stops_within_the_grace(tmp_path: Path,
                                                                               tls_files: TlsFiles) -> None:
    config = tmp_path / "admission.yaml"
    config.write_text(yaml.safe_dump(ADMISSION_CONFIG))
    server = TlsServeProcess(tmp_path / "data", tls_files.ca, tls_files.cert, tls_files.key, config)
    server.start()
    try:
        assert server.get("/v2/policies").status_code == 200  # the session's connection stays open
        assert server.process is not None
        sent = time.monotonic()
        server.process.terminate()
        try:
            server.process.wait(timeout=SHUTDOWN_GRACE_SECONDS + 15)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve still running {SHUTDOWN_GRACE_SECONDS + 15} s after SIGTERM") from None
        waited = time.monotonic() - sent
        assert waited < 25, waited  # asyncio's TLS shutdown wait is 30 s
    finally:
        server.stop()
