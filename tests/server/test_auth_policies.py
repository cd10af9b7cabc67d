"""Auth (basic, API keys, the account header), policies and the error body shapes."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from ci_gate.server.app import create_app
from ci_gate.server.config import ServerConfig
from tests.support.serve import PASSWORD, ServeProcess


def _in(**delta: float) -> str:
    """An RFC 3339 time `delta` from now."""
    return (datetime.now(timezone.utc) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_wrong_password_is_401_with_the_documented_body(server: ServeProcess) -> None:
    answer = requests.get(f"{server.url}/v2/images", auth=("admin", "attempted-pw-123"), timeout=10)
    assert answer.status_code == 401
    body = answer.json()
    assert set(body) == {"code", "error_type", "message", "detail"} and body["code"] == 401
    assert body["error_type"] == "unauthorized" and "attempted-pw-123" not in answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    legacy = requests.get(f"{server.url}/v1/images", auth=("admin", "wrong"), timeout=10)
    assert legacy.status_code == 401 and set(legacy.json()) == {"message", "httpcode", "detail"}
    assert legacy.json()["httpcode"] == 401
    assert requests.get(f"{server.url}/v2/images", timeout=10).status_code == 401
    assert PASSWORD not in answer.text


def test_api_key_works_and_is_stored_hashed(server: ServeProcess) -> None:
    others = {k["name"] for k in server.get("/v2/user/api-keys").json()}  # other tests' keys on this server
    created = server.post("/v2/user/api-keys", json={"name": "ci-runner", "description": "tests",
                                                     "expires_at": _in(days=30)})
    assert created.status_code == 200, created.text
    key = created.json()
    assert key["name"] == "ci-runner" and key["status"] == "active" and key["value"]
    with_key = requests.get(f"{server.url}/v2/images", auth=("_api_key", key["value"]), timeout=10)
    assert with_key.status_code == 200 and "items" in with_key.json()
    bad_key = requests.get(f"{server.url}/v2/images", auth=("_api_key", key["value"] + "x"), timeout=10)
    assert bad_key.status_code == 401
    listed = server.get("/v2/user/api-keys").json()
    assert {k["name"] for k in listed} == others | {"ci-runner"} and all(k["value"] is None for k in listed)
    assert key["value"].encode() not in (server.data_dir / "ci-gate-serve.sqlite").read_bytes()
    assert server.post("/v2/user/api-keys", json={"name": "ci-runner"}).status_code == 409


def test_expired_api_key_is_refused(server: ServeProcess) -> None:
    # Whole seconds, as the API takes them: the key lives 4 to 5 s, time for its first use on a busy machine
    # (2 s from now, truncated, could leave it barely one second).
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
    key = server.post("/v2/user/api-keys", json={"name": "short-lived",
                                                 "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}).json()
    assert key["status"] == "active"
    assert requests.get(f"{server.url}/v2/images", auth=("_api_key", key["value"]), timeout=10).status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.5)  # just past its expiry
    assert requests.get(f"{server.url}/v2/images", auth=("_api_key", key["value"]), timeout=10).status_code == 401
    assert server.get("/v2/user/api-keys/short-lived").json()["status"] == "expired"


def test_account_header(server: ServeProcess) -> None:
    assert server.get("/v2/images", headers={"x-anchore-account": "admin"}).status_code == 200
    other = server.get("/v2/images", headers={"x-anchore-account": "team-b"})
    assert other.status_code == 403
    body = other.json()
    assert body["code"] == 403 and body["error_type"] == "access_denied" and "team-b" in body["message"]
    assert body["detail"]["permission_required"]


def test_health_version_and_unknown_paths(server: ServeProcess) -> None:
    health = requests.get(f"{server.url}/health", timeout=10)
    assert health.status_code == 200 and health.content == b""
    version = requests.get(f"{server.url}/version", timeout=10).json()
    assert set(version) == {"service", "api", "db"} and version["service"]["version"]
    assert server.get("/v2/version").status_code == 200
    assert requests.get(f"{server.url}/v1/", timeout=10).json() == "v1"
    missing = server.get("/v2/no-such-thing")
    assert missing.status_code == 404 and missing.json()["code"] == 404
    assert server.get("/v2/images/sha256:" + "0" * 64).json()["error_type"] == "not_found"
    assert server.get("/v2/images/not-a-digest").status_code == 400


POLICY = {
    "id": "team-policy", "name": "team policy", "version": "2", "description": "deny everything",
    "rule_sets": [{"id": "rs1", "name": "always", "version": "2", "rules": [
        {"id": "r1", "gate": "always", "trigger": "always", "action": "stop", "params": []}]}],
    "allowlists": [], "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                                    "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs1"],
                                    "allowlist_ids": []}],
}


def test_policies_add_select_activate(server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    added = server.post("/v2/policies", json=POLICY)
    assert added.status_code == 200, added.text
    record = added.json()
    assert record["policy_id"] == "team-policy" and record["active"] is False and record["policy"]["id"] == POLICY["id"]
    assert server.post("/v2/policies", json=POLICY).status_code == 409
    invalid = server.post("/v2/policies", json={**POLICY, "id": "bad", "rule_sets": [
        {"id": "rs1", "name": "x", "version": "2", "rules": [{"id": "r", "gate": "nope", "trigger": "x",
                                                               "action": "stop", "params": []}]}]})
    assert invalid.status_code == 400 and invalid.json()["detail"]["validation_details"]

    tag, digest = pushed_images[0]
    server.add_tag(tag)
    server.wait_status(digest)
    chosen = server.get(f"/v2/images/{digest}/check", params={"tag": tag, "policy_id": "team-policy"}).json()
    assert chosen["policy_id"] == "team-policy" and chosen["evaluations"][0]["final_action"] == "stop"
    assert [f["gate"] for f in chosen["evaluations"][0]["details"]["findings"]] == ["always"]

    activated = server.put("/v2/policies/team-policy", params={"active": "true"}, json=record)
    assert activated.status_code == 200 and activated.json()["active"] is True
    listed = server.get("/v2/policies").json()
    assert [p["policy_id"] for p in listed if p["active"]] == ["team-policy"]
    by_default = server.get(f"/v2/images/{digest}/check", params={"tag": tag}).json()
    assert by_default["policy_id"] == "team-policy"
    assert server.get("/v2/policies/team-policy").json()["policy"]["name"] == "team policy"
    assert server.get("/v2/policies/nope").status_code == 404
    server.put("/v2/policies/ci-gate-default", params={"active": "true"}, json={})


V1_BUNDLE = {
    "id": "legacy-bundle", "version": "1_0", "name": "Legacy", "comment": "an anchore-engine bundle",
    "whitelisted_images": [], "blacklisted_images": [], "whitelists": [],
    "mappings": [{"id": "m1", "name": "default", "registry": "*", "repository": "*",
                  "image": {"type": "tag", "value": "*"}, "policy_id": "p1", "whitelist_ids": []}],
    "policies": [{"id": "p1", "version": "1_0", "name": "warn on missing healthcheck", "rules": [
        {"id": "r1", "action": "WARN", "gate": "dockerfile", "trigger": "instruction",
         "params": [{"name": "instruction", "value": "HEALTHCHECK"}, {"name": "check", "value": "not_exists"}]}]}],
}


def test_v1_bundle_add_check_and_delete_rules(server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    added = server.post("/v1/policies", json=V1_BUNDLE)
    assert added.status_code == 200, added.text
    record = added.json()
    assert record["policyId"] == "legacy-bundle" and record["policybundle"]["version"] == "1_0"
    assert server.get("/v1/policies/legacy-bundle").json()[0]["active"] is False
    tag, digest = pushed_images[0]
    server.add_tag(tag)
    server.wait_status(digest)
    check = server.get(f"/v1/images/{digest}/check", params={"tag": tag, "policyId": "legacy-bundle"}).json()
    entry = check[0][digest][tag][0]
    document = entry["detail"]["result"]
    rows = document["result"][document["image_id"]]["result"]["rows"]
    assert [(row[3], row[4], row[6]) for row in rows] == [("dockerfile", "instruction", "warn")]
    assert document["final_action"] == "warn" and entry["status"] == "pass"  # WARN passes (v1's status column)

    active = server.session.delete(f"{server.url}/v2/policies/ci-gate-default", timeout=10)
    assert active.status_code == 500
    assert active.json()["message"].startswith("cannot delete an active policy")
    assert server.session.delete(f"{server.url}/v1/policies/legacy-bundle", timeout=10).status_code == 200
    assert server.get("/v1/policies/legacy-bundle").status_code == 404


def test_oversized_body_is_refused(server: ServeProcess) -> None:
    answer = server.post("/v2/policies", data=b"{" + b" " * (17 * 1024 * 1024) + b"}",
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error_type"] == "payload_too_large"


def test_a_policy_replaced_within_the_same_second_is_evaluated_by_its_new_rules(tmp_path: Path,
                                                                                 serve_vuln_db: Path) -> None:
    """The parsed-policy cache is keyed by the document, not by `last_updated` (one-second resolution):
    a policy replaced twice in one second must not be judged by its old rules."""
    app = create_app(ServerConfig(data_dir=tmp_path / "data", admin_password=PASSWORD, vuln_db=serve_vuln_db,
                                  workers=0))
    service = app.state.service
    document = {"id": "same-second", "name": "same-second", "version": "2",
                "rule_sets": [{"id": "rs", "name": "rs", "version": "2", "rules": [
                    {"id": "r1", "action": "WARN", "gate": "dockerfile", "trigger": "no_dockerfile_provided",
                     "params": []}]}],
                "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                              "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": []}],
                "allowlists": []}
    service.store.add_policy("same-second", "same-second", "", document, active=True)
    before = service.store.get_policy("same-second")
    assert [rule.action for rule in service.parsed_policy(before).rule_sets[0].rules] == ["WARN"]
    stricter = json.loads(json.dumps(document))
    stricter["rule_sets"][0]["rules"][0]["action"] = "STOP"
    assert service.store.update_policy("same-second", stricter, activate=False) is not None
    after = replace(service.store.get_policy("same-second"), last_updated=before.last_updated)
    assert [rule.action for rule in service.parsed_policy(after).rule_sets[0].rules] == ["STOP"]
