"""API key lifetimes and management rights; the activate-versus-delete race on policies."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from ci_gate.server.keys import MAX_LIFETIME, effective_status, expiry
from ci_gate.server.store import key_hash
from tests.support.serve import ServeProcess


def _in(**delta: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("serve-keys") / "data", workers=0) as process:
        yield process


@pytest.mark.parametrize("expires_at", [
    "9999-12-31T23:59:59Z", "99999999999999999999", "zzzz", 5, 1.5, True, ["2030-01-01T00:00:00Z"],
    "2001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2027-01-01", "2027-01-01T00:00:00", "next week",
    "2027-01-01T25:00:00Z",
])
def test_key_expiry_must_be_rfc3339_within_the_maximum_lifetime(keyed_server: ServeProcess, expires_at: Any) -> None:
    answer = keyed_server.post("/v2/user/api-keys", json={"name": "bad-expiry", "expires_at": expires_at})
    assert answer.status_code == 400, answer.text
    assert "expires_at" in answer.json()["message"]
    assert all(k["name"] != "bad-expiry" for k in keyed_server.get("/v2/user/api-keys").json())


def test_key_expiry_is_normalised_to_utc() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    assert expiry("2027-01-01T01:30:00+02:00", now) == "2026-12-31T23:30:00Z"
    assert expiry("2026-12-03t00:00:00.123456789z", now) == "2026-12-03T00:00:00Z"
    assert expiry(None, now) == "2027-01-01T12:00:00Z"
    assert expiry((now + MAX_LIFETIME).isoformat(), now) == "2027-12-02T12:00:00Z"
    # Rows written before expiries were checked fail closed.
    for stored in ("zzzz", "9999-12-31T23:59:59Z", "5", ""):
        assert effective_status("active", stored, "2026-12-01T00:00:00Z", now) == "expired"
    assert effective_status("active", "2026-12-31T00:00:00Z", "2026-12-01T00:00:00Z", now) == "active"
    assert effective_status("revoked", "2026-12-31T00:00:00Z", "2026-12-01T00:00:00Z", now) == "revoked"


def test_only_a_password_login_manages_keys(keyed_server: ServeProcess) -> None:
    key = keyed_server.post("/v2/user/api-keys", json={"name": "runner", "expires_at": _in(days=7)}).json()
    as_key = requests.Session()
    as_key.auth = ("_api_key", key["value"])
    url = keyed_server.url
    assert as_key.get(f"{url}/v2/policies", timeout=10).status_code == 200
    minted = as_key.post(f"{url}/v2/user/api-keys", json={"name": "successor"}, timeout=10)
    assert minted.status_code == 403 and minted.json()["error_type"] == "access_denied"
    assert as_key.delete(f"{url}/v2/user/api-keys/runner", timeout=10).status_code == 403
    assert as_key.patch(f"{url}/v2/user/api-keys/runner", json={"status": "revoked"}, timeout=10).status_code == 403
    assert [k["name"] for k in keyed_server.get("/v2/user/api-keys").json()].count("successor") == 0
    assert as_key.get(f"{url}/v2/user/api-keys/runner", timeout=10).json()["value"] is None


def test_delete_and_patch_revoke_a_key_at_once(keyed_server: ServeProcess) -> None:
    url = keyed_server.url
    first = keyed_server.post("/v2/user/api-keys", json={"name": "to-delete", "expires_at": _in(days=1)}).json()
    second = keyed_server.post("/v2/user/api-keys", json={"name": "to-revoke", "expires_at": _in(days=1)}).json()
    for key in (first, second):
        assert requests.get(f"{url}/v2/images", auth=("_api_key", key["value"]), timeout=10).status_code == 200
    assert keyed_server.delete("/v2/user/api-keys/to-delete").status_code == 204
    assert requests.get(f"{url}/v2/images", auth=("_api_key", first["value"]), timeout=10).status_code == 401
    assert keyed_server.get("/v2/user/api-keys/to-delete").status_code == 404
    assert keyed_server.delete("/v2/user/api-keys/to-delete").status_code == 404
    revoked = keyed_server.session.patch(f"{url}/v2/user/api-keys/to-revoke", json={"status": "revoked"}, timeout=10)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert requests.get(f"{url}/v2/images", auth=("_api_key", second["value"]), timeout=10).status_code == 401
    assert keyed_server.session.patch(f"{url}/v2/user/api-keys/to-revoke", json={"status": "active"},
                                      timeout=10).status_code == 400


def test_keys_stored_with_unchecked_expiries_do_not_work(fresh_server: ServeProcess) -> None:
    fresh_server.start(workers=0)
    fresh_server.stop()
    connection = sqlite3.connect(fresh_server.data_dir / "ci-gate-serve.sqlite")
    for name, expires_at in (("forever", "9999-12-31T23:59:59Z"), ("letters", "zzzz"), ("number", "5")):
        connection.execute("INSERT INTO api_keys (name, account, value_hash, expires_at, created_at, updated_at) "
                           "VALUES (?, 'admin', ?, ?, '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')",
                           (name, key_hash(f"value-of-{name}"), expires_at))
    connection.commit()
    connection.close()
    fresh_server.start(workers=0)
    for name in ("forever", "letters", "number"):
        answer = requests.get(f"{fresh_server.url}/v2/images", auth=("_api_key", f"value-of-{name}"), timeout=10)
        assert answer.status_code == 401, name
    assert {k["status"] for k in fresh_server.get("/v2/user/api-keys").json()} == {"expired"}


POLICY: dict[str, Any] = {
    "version": "2", "description": "race", "rule_sets": [{"id": "rs1", "name": "warn", "version": "2", "rules": [
        {"id": "r1", "gate": "always", "trigger": "always", "action": "warn", "params": []}]}],
    "allowlists": [], "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                                    "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs1"],
                                    "allowlist_ids": []}],
}


def _active(server: ServeProcess) -> list[str]:
    return [p["policy_id"] for p in server.get("/v2/policies").json() if p["active"]]


def test_activate_and_delete_racing_always_leave_exactly_one_active_policy(fresh_server: ServeProcess) -> None:
    fresh_server.start(workers=0)
    names = [f"race-{n}" for n in range(4)]
    for name in names:
        assert fresh_server.post("/v2/policies", json={**POLICY, "id": name, "name": name}).status_code == 200
    stop = threading.Event()
    seen_wrong: list[list[str]] = []

    def watch() -> None:
        while not stop.is_set():
            active = _active(fresh_server)
            if len(active) != 1:
                seen_wrong.append(active)

    def act(job: tuple[str, str]) -> int:
        kind, name = job
        session = requests.Session()
        session.auth = fresh_server.session.auth
        if kind == "activate":
            return session.put(f"{fresh_server.url}/v2/policies/{name}", params={"active": "true"},
                               json={}, timeout=30).status_code
        return session.delete(f"{fresh_server.url}/v2/policies/{name}", timeout=30).status_code

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            for _ in range(30):
                jobs = [(kind, name) for name in names for kind in ("activate", "delete")] * 2
                statuses = list(pool.map(act, jobs))
                assert set(statuses) <= {200, 404, 500}, statuses
                active = _active(fresh_server)
                assert len(active) == 1, active
                present = {p["policy_id"] for p in fresh_server.get("/v2/policies").json()}
                for name in names:
                    if name not in present:
                        assert fresh_server.post("/v2/policies", json={**POLICY, "id": name, "name": name}
                                                 ).status_code == 200
    finally:
        stop.set()
        watcher.join()
    assert seen_wrong == []
    # The refusal of an active policy's delete keeps Anchore's answer.
    refused = fresh_server.delete(f"/v2/policies/{_active(fresh_server)[0]}")
    assert refused.status_code == 500 and "cannot delete an active policy" in refused.json()["message"]
