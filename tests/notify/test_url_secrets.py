"""Credentials in notification endpoint URLs: what is masked, and that the full URL is sealed in the store
(the served API and dashboard are checked in tests/server/test_notifications.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.notify import endpoints
from ci_gate.secrets.urls import masked
from ci_gate.server.records import CredentialBox
from ci_gate.server.store import Store, now_text


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example.test/in?token=t0k3n&team=a", "https://hooks.example.test/in?token=***&team=a"),
    ("https://hooks.example.test/in?API_KEY=k&access_token=a&X-Signature=s&code=c",
     "https://hooks.example.test/in?API_KEY=***&access_token=***&X-Signature=***&code=***"),
    ("https://prod-1.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01"
     "&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbC123",
     "https://prod-1.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01"
     "&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=***"),
    ("https://hooks.slack.com/services/T0001/B0001/XXXXsecret", "https://hooks.slack.com/services/***/***/***"),
    ("https://acme.webhook.office.com/webhookb2/g1@g2/IncomingWebhook/abc/g3",
     "https://acme.webhook.office.com/webhookb2/***/***/***/***"),
    ("https://discord.com/api/webhooks/123/tok", "https://discord.com/api/webhooks/***/***"),
    ("https://chat.example.test/hooks/abc", "https://chat.example.test/hooks/***"),
    ("https://u:p@hooks.example.test:8443/x", "https://***@hooks.example.test:8443/x"),
    ("https://hooks.example.test/in/Zq8vR2kLm9Xw4Tb7Yc1Nd5", "https://hooks.example.test/in/***"),
    ("https://hooks.example.test/in/" + "ab" * 16, "https://hooks.example.test/in/***"),
    ("https://hooks.example.test/in#frag", "https://hooks.example.test/in#***"),
    # nothing to hide: shown as given, placeholders of the engine's URL included
    ("https://hooks.example.test/ci-gate/<notification_type>/<userId>?format=v2",
     "https://hooks.example.test/ci-gate/<notification_type>/<userId>?format=v2"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("https://jira.example.test", "https://jira.example.test"),
])
def test_what_is_masked(url: str, shown: str) -> None:
    assert masked(url) == shown
    assert masked(shown) == shown  # masking what is shown changes nothing


def test_the_full_url_is_sealed_and_delivered_and_a_read_back_url_keeps_it(store: Store, box: CredentialBox) -> None:
    url = "https://hooks.example.test/in?token=sealed-hook-token"
    saved = endpoints.parse_endpoint("webhook", {"url": url})
    endpoints.save_endpoint(store, box, saved, now_text())
    [loaded] = endpoints.list_endpoints(store, box)
    assert loaded.address("url") == url and loaded.public()["url"] == "https://hooks.example.test/in?token=***"
    if store.database.dialect == "sqlite":
        wal = Path(str(store.path) + "-wal")
        raw = store.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    else:
        raw = repr([tuple(row) for row in store._query("SELECT * FROM notification_endpoints")]).encode()
    assert b"sealed-hook-token" not in raw
    kept = endpoints.parse_endpoint("webhook", loaded.public(), loaded.endpoint_id, loaded)
    assert kept.address("url") == url
    moved = endpoints.parse_endpoint("webhook", {"url": "https://hooks.example.test/plain"}, loaded.endpoint_id,
                                     loaded)
    assert moved.address("url") == "https://hooks.example.test/plain" and "url" not in moved.secrets
    github = endpoints.parse_endpoint("github", {"owner": "o", "repository": "r", "token": "ghp_x",
                                                 "api_url": "https://ghe.example.test/api/v3?access_token=a1"})
    assert github.address("api_url").endswith("access_token=a1") and "a1" not in str(github.public())


def test_the_engine_style_file_keeps_the_full_url_for_delivery_only() -> None:
    [hook] = endpoints.webhooks_endpoints({"general": {"url": "https://hooks.example.test/<userId>?key=file-key"}})
    assert hook.address("url") == "https://hooks.example.test/<userId>?key=file-key"
    assert "file-key" not in str(hook.public()) and "file-key" not in repr(hook)
