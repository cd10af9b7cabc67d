"""`ci-gate serve --notifications-config` as an operator meets it: a file with a typo must stop the start.

The real CLI in a fresh process; a bad file must end it with exit 2 and one line on stderr before
the server listens (a server that starts with a mistyped hook silently notifies no one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="ci-gate serve needs the server extra (pip install '.[server]')")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(tmp_path: Path, config_text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "notifications.yaml"
    config.write_text(config_text)
    environment = {**os.environ, "CI_GATE_ADMIN_PASSWORD": "admin-password-for-tests", "XDG_DATA_HOME": str(tmp_path)}
    environment.pop("CI_GATE_ALLOW_NOTIFY_HOSTS", None)
    try:
        return subprocess.run([sys.executable, "-m", "ci_gate.cli", "serve", "--port", str(_free_port()),
                               "--data-dir", str(tmp_path / "data"), "--notifications-config", str(config)],
                              capture_output=True, text=True, timeout=30, env=environment, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("ci-gate serve started with a notifications config it should have refused")


@pytest.mark.parametrize(("config_text", "needles"), [
    ("webhooks: [unclosed\n", ("not valid YAML", "at line")),
    ("webhooks:\n  genral:\n    url: http://127.0.0.1:9/hook\n", ("genral",)),
    ("webhooks:\n  general:\n    urll: http://127.0.0.1:9/hook\n    url: http://127.0.0.1:9/x\n", ("urll",)),
    ("service_dir: /var/lib/anchore\nlog_level: INFO\n", ("webhooks",)),
    ("webhooks:\n  webhook_user: hooks\n", ("no hook",)),
    ("webhooks:\n  ssl_verify: maybe\n  general:\n    url: http://127.0.0.1:9/hook\n", ("ssl_verify", "true or false")),
    ("webhooks:\n  general:\n    url: 'http://[::1/hook?token=tok-in-query-123'\n", ("webhooks.general.url",)),
])
def test_a_bad_notifications_config_stops_the_start_with_one_line(tmp_path: Path, config_text: str,
                                                                  needles: tuple[str, ...]) -> None:
    result = _serve(tmp_path, config_text)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr
    assert "--notifications-config" in line and "Traceback" not in line and "internal error" not in line, line
    assert "\\n" not in line and "<unicode string>" not in line, line  # not the YAML parser's multi-line text
    assert "tok-in-query-123" not in line
    for needle in needles:
        assert needle in line, line
    assert not (tmp_path / "data").exists()  # refused before the data dir was made
