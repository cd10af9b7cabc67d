"""Notification endpoints added over serve's API, as a user meets them: a malformed URL is a 400.

The real `ci-gate serve` in a subprocess; every kind whose configuration holds a URL is given one
that `urllib.parse` cannot split (an unclosed IPv6 bracket).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="ci-gate serve needs the server extra (pip install '.[server]')")

from tests.support.serve import ServeProcess

MALFORMED = "http://[::1/hook?token=tok-in-query-456"

BODIES = {
    "webhook": {"name": "hook", "url": MALFORMED},
    "jira": {"name": "jira", "url": MALFORMED, "username": "bot", "password": "api-token", "project_key": "SEC"},
    "github": {"name": "gh", "owner": "acme", "repository": "app", "token": "ghp_test", "api_url": MALFORMED},
}


def test_a_malformed_endpoint_url_is_a_400_naming_the_field(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "data", extra_args=["--allow-notify-host", "*"]) as serve:
        for kind, body in BODIES.items():
            answer = serve.post(f"/v2/notifications/endpoints/{kind}/configurations", json=body)
            assert answer.status_code == 400, (kind, answer.status_code, answer.text)
            message = answer.json()["message"]
            assert "url" in message and "tok-in-query-456" not in message, message
