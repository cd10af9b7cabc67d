"""Two accounts on one server: neither can read or change the other's images, policies, keys,
registries or subscriptions, by listing, by id, or by guessing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

from tests.support.serve import PASSWORD, ServeProcess

BOB_PASSWORD = "bob-password-0a9c4e"  # a test value, not a secret

POLICY = {
    "id": "admin-only-policy", "name": "admin only", "version": "2", "description": "the admin account's",
    "rule_sets": [{"id": "rs1", "name": "always", "version": "2", "rules": [
        {"id": "r1", "gate": "always", "trigger": "always", "action": "stop", "params": []}]}],
    "allowlists": [], "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                                    "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs1"],
                                    "allowlist_ids": []}],
}


def _session(user: str, password: str) -> requests.Session:
    session = requests.Session()
    session.auth = (user, password)
    return session


def _expiry() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_accounts_cannot_see_or_touch_each_other(fresh_server: ServeProcess,
                                                  pushed_images: list[tuple[str, str]]) -> None:
    server = fresh_server.start(workers=1)
    url = server.url
    admin = server.session
    assert admin.post(f"{url}/v2/accounts", json={"name": "team-b", "email": "b@example.test"},
                      timeout=10).status_code == 200
    assert admin.post(f"{url}/v2/accounts", json={"name": "team-b"}, timeout=10).status_code == 409
    assert admin.post(f"{url}/v2/accounts/team-b/users", json={"username": "bob", "password": BOB_PASSWORD},
                      timeout=10).status_code == 200
    bob = _session("bob", BOB_PASSWORD)
    assert _session("bob", "wrong-password-123").get(f"{url}/v2/images", timeout=10).status_code == 401

    # The admin account's things.
    tag, digest = pushed_images[0]
    assert server.add_tag(tag).status_code == 200
    server.wait_status(digest)
    assert admin.post(f"{url}/v2/policies", json=POLICY, timeout=10).status_code == 200
    assert admin.put(f"{url}/v2/policies/admin-only-policy", params={"active": "true"}, json={},
                     timeout=10).status_code == 200
    admin_key = admin.post(f"{url}/v2/user/api-keys", json={"name": "admin-key", "expires_at": _expiry()},
                           timeout=10).json()
    registry = admin.post(f"{url}/v2/registries", json={"registry": "registry.admin-only.test",
                                                        "registry_user": "u", "registry_pass": "p",
                                                        "registry_type": "docker_v2"}, timeout=10)
    subscription = admin.post(f"{url}/v2/subscriptions", json={
        "subscription_key": tag, "subscription_type": "policy_eval", "active": True}, timeout=10)

    # Bob sees none of it ...
    assert bob.get(f"{url}/v2/images", timeout=10).json()["items"] == []
    assert bob.get(f"{url}/v1/images", timeout=10).json() == []
    assert bob.get(f"{url}/v2/images", params={"full_tag": tag}, timeout=10).json()["items"] == []
    for path in ("", "/check", "/vuln/all", "/content", "/content/os", "/vuln"):
        answer = bob.get(f"{url}/v2/images/{digest}{path}", params={"tag": tag}, timeout=30)
        assert answer.status_code == 404, (path, answer.text)
    policies = bob.get(f"{url}/v2/policies", timeout=10).json()
    assert "admin-only-policy" not in {p["policy_id"] for p in policies}
    assert len([p for p in policies if p["active"]]) == 1  # its own built-in default, seeded for the account
    assert bob.get(f"{url}/v2/policies/admin-only-policy", timeout=10).status_code == 404
    assert bob.get(f"{url}/v2/user/api-keys", timeout=10).json() == []
    assert bob.get(f"{url}/v2/user/api-keys/admin-key", timeout=10).status_code == 404
    for path in ("/v2/registries", "/v1/registries", "/v2/subscriptions", "/v1/subscriptions"):
        answer = bob.get(f"{url}{path}", timeout=10)
        assert "registry.admin-only.test" not in answer.text and tag not in answer.text, path

    # ... and changes none of it.
    assert bob.delete(f"{url}/v2/images/{digest}", timeout=10).status_code == 404
    assert bob.put(f"{url}/v2/policies/admin-only-policy", params={"active": "true"}, json={},
                   timeout=10).status_code == 404
    assert bob.delete(f"{url}/v2/policies/admin-only-policy", timeout=10).status_code == 404
    assert bob.delete(f"{url}/v2/user/api-keys/admin-key", timeout=10).status_code == 404
    bob.delete(f"{url}/v2/registries/registry.admin-only.test", timeout=10)
    assert bob.post(f"{url}/v2/accounts", json={"name": "team-c"}, timeout=10).status_code == 403
    assert bob.get(f"{url}/v2/images", headers={"x-anchore-account": "admin"}, timeout=10).status_code == 403

    # Bob's own work stays in his account: the same image, his own policy, his own key.
    assert bob.post(f"{url}/v2/images", json={"source": {"tag": {"pull_string": tag}}}, timeout=60).status_code == 200
    assert bob.post(f"{url}/v2/policies", json={**POLICY, "id": "bob-policy", "name": "bob"},
                    timeout=10).status_code == 200
    assert bob.put(f"{url}/v2/policies/bob-policy", params={"active": "true"}, json={}, timeout=10).status_code == 200
    bob_key = bob.post(f"{url}/v2/user/api-keys", json={"name": "bob-key", "expires_at": _expiry()},
                       timeout=10).json()
    as_bob_key = _session("_api_key", bob_key["value"])
    assert [i["image_digest"] for i in as_bob_key.get(f"{url}/v2/images", timeout=10).json()["items"]] == [digest]
    assert bob.delete(f"{url}/v2/images/{digest}", timeout=10).status_code == 200

    # The admin account is as it was.
    assert [i["image_digest"] for i in admin.get(f"{url}/v2/images", timeout=10).json()["items"]] == [digest]
    assert admin.get(f"{url}/v2/images/{digest}", timeout=10).json()["analysis_status"] == "analyzed"
    admin_policies = admin.get(f"{url}/v2/policies", timeout=10).json()
    assert [p["policy_id"] for p in admin_policies if p["active"]] == ["admin-only-policy"]
    assert "bob-policy" not in {p["policy_id"] for p in admin_policies}
    assert [k["name"] for k in admin.get(f"{url}/v2/user/api-keys", timeout=10).json()] == ["admin-key"]
    assert _session("_api_key", admin_key["value"]).get(f"{url}/v2/images", timeout=10).status_code == 200
    if registry.status_code == 200:  # the registries endpoint exists: bob's delete did not reach admin's entry
        assert "registry.admin-only.test" in admin.get(f"{url}/v2/registries", timeout=10).text
    if subscription.status_code == 200:
        assert tag in admin.get(f"{url}/v2/subscriptions", timeout=10).text
    # The admin user may act in team-b explicitly, as in Anchore.
    scoped = admin.get(f"{url}/v2/policies", headers={"x-anchore-account": "team-b"}, timeout=10).json()
    assert "bob-policy" in {p["policy_id"] for p in scoped}
    accounts = admin.get(f"{url}/v2/accounts", timeout=10).json()
    assert [a["name"] for a in accounts] == ["admin", "team-b"]
    assert PASSWORD not in str(accounts) and BOB_PASSWORD not in str(accounts)
    # Bob's data lives in its own private database.
    bob_database = server.data_dir / "accounts" / "team-b" / "ci-gate-serve.sqlite"
    assert bob_database.stat().st_mode & 0o077 == 0
    assert BOB_PASSWORD.encode() not in (server.data_dir / "ci-gate-accounts.sqlite").read_bytes()
