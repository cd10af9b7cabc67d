"""anchore-engine compatibility endpoints over real HTTP: swagger, versions, tag lookups, system, feeds,
policy spec, v1 bundles of v2 documents, registries' input checks; the event store's paging and filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from ci_gate.policy.documents import check_text
from ci_gate.policy.gates import registry as gate_registry
from ci_gate.server import records
from ci_gate.server.store import Store, add_event
from tests.support.serve import ServeProcess


def test_swagger_tells_anchore_cli_to_use_the_fulltag_query(server: ServeProcess) -> None:
    for path in ("/swagger.json", "/v1/swagger.json"):
        response = requests.get(server.url + path, timeout=10)  # anchore-cli sends credentials; none needed
        assert response.status_code == 200, path
        document = response.json()
        version = tuple(int(part) for part in document["info"]["version"].split("."))
        assert version >= (0, 1, 6)  # anchore-cli's api_version_query_support
        assert document["basePath"] == "/v1" and document["swagger"] == "2.0"
        assert {"get", "post"} <= set(document["paths"]["/images"])
        assert "get" in document["paths"]["/images/{digest}/metadata/{mtype}"]
        assert "/registries/{registry}" in document["paths"] and "/v2/images" not in document["paths"]
    v2 = requests.get(server.url + "/v2/swagger.json", timeout=10).json()
    assert v2["basePath"] == "/v2" and "/images" in v2["paths"]


def test_versions_tell_v1_from_v2(server: ServeProcess) -> None:
    assert server.get("/v1/version").json()["api"] == {}
    assert server.get("/v2/version").json()["api"] == {"version": "2"}
    assert requests.get(server.url + "/version", timeout=10).json()["api"] == {"version": "2"}


def test_tag_lookup_by_query_or_body_never_answers_another_image(server: ServeProcess,
                                                                 pushed_images: list[tuple[str, str]]) -> None:
    (first_tag, first), (second_tag, second) = pushed_images[2], pushed_images[3]
    for tag in (first_tag, second_tag):
        assert server.add_tag(tag).status_code == 200
    by_body = server.get("/v1/images", data=json.dumps({"tag": second_tag}),
                         headers={"Content-Type": "application/json"})
    assert [r["imageDigest"] for r in by_body.json()] == [second]
    by_query = server.get("/v1/images", params={"fulltag": first_tag, "history": "false"})
    assert [r["imageDigest"] for r in by_query.json()] == [first]
    unknown = first_tag.rsplit(":", 1)[0] + ":absent"
    for response in (server.get("/v1/images", params={"fulltag": unknown}),
                     server.get("/v1/images", data=json.dumps({"tag": unknown}),
                                headers={"Content-Type": "application/json"})):
        assert response.status_code == 404 and response.json()["message"] == "image data not found in DB"
    assert server.get("/v2/images", params={"full_tag": unknown}).json() == {"items": []}
    bad = server.get("/v1/images", data=json.dumps({"tag": 5}), headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert server.get("/v1/images", params={"fulltag": "Not A Tag!"}).status_code == 400
    by_id = server.get(f"/v1/images/by_id/{'0' * 64}")
    assert by_id.status_code == 404


@pytest.mark.parametrize("policy_id", ["ci-gate-default", "ci-gate-cis", "ci-gate-dod"])
def test_builtin_packs_read_back_as_v1_bundles_with_the_same_rules(server: ServeProcess, policy_id: str) -> None:
    v2 = server.get(f"/v2/policies/{policy_id}").json()["policy"]
    bundle = server.get(f"/v1/policies/{policy_id}", params={"detail": "true"}).json()[0]["policybundle"]
    assert bundle["version"] == "1_0" and "rule_sets" not in bundle and "allowlists" not in bundle
    assert all("policy_ids" in m and "whitelist_ids" in m for m in bundle["mappings"])
    policy, problems = check_text(json.dumps(bundle), f"{policy_id}-v1.json", strict=False)
    assert policy is not None and policy.original_format == "v1"
    assert not [p for p in problems if p.severity == "error"], problems

    def canonical(rules: list[dict[str, object]]) -> list[tuple[object, ...]]:
        out = []
        for rule in rules:
            gate = gate_registry.gates()[str(rule["gate"]).lower()]
            trigger = gate.trigger(str(rule["trigger"]))
            assert trigger is not None, rule
            params = []
            for param in rule.get("params") or []:  # type: ignore[attr-defined]
                spec = trigger.parameter(param["name"])
                assert spec is not None, (rule, param)
                params.append((spec.name, param["value"].replace("whitelist", "allowlist")
                               .replace("blacklist", "denylist")))
            out.append((rule["id"], gate.name, trigger.name, rule["action"], tuple(sorted(params))))
        return sorted(out)

    image_sets = [r for r in v2["rule_sets"] if r.get("artifact_type", "image") == "image"]
    assert canonical([r for s in image_sets for r in s["rules"]]) == \
        canonical([r for p in bundle["policies"] for r in p["rules"]])


def test_system_feeds_and_policy_spec(tmp_path: Path, demo_vuln_db: Path) -> None:
    with ServeProcess(tmp_path / "queue-only", vuln_db=demo_vuln_db, workers=0) as server:
        states = {s["servicename"]: s for s in server.get("/v1/system").json()["service_states"]}
        assert set(states) == {"apiext", "catalog", "policy_engine", "simplequeue", "analyzer"}
        assert states["analyzer"]["status"] is False and states["analyzer"]["service_detail"]["up"] is False
        assert states["apiext"]["service_detail"]["up"] is True
        feed = server.get("/v1/system/feeds").json()
        assert [f["name"] for f in feed] == ["vulnerabilities"] and feed[0]["last_full_sync"]
        assert [(g["name"], g["record_count"]) for g in feed[0]["groups"]] == [("pypi", 1)]
        assert all(g["last_sync"] == feed[0]["last_full_sync"] for g in feed[0]["groups"])
        spec = server.get("/v1/system/policy_spec").json()
        assert server.get("/v2/system/policy-spec").json() == spec
        by_name = {g["name"]: g for g in spec}
        assert set(gate_registry.gates()) <= set(by_name)
        assert by_name["anchoresec"]["state"] == "eol" and by_name["anchoresec"]["superceded_by"] == "vulnerabilities"
        ports = next(t for t in by_name["dockerfile"]["triggers"] if t["name"] == "exposed_ports")
        assert {p["name"] for p in ports["parameters"]} >= {"ports", "type"}
    no_store = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "CI_GATE_VULN_DB": ""}  # the default store, absent
    with ServeProcess(tmp_path / "no-store", environment=no_store) as server:
        assert server.get("/v1/system").json()["service_states"][-1]["status"] is True
        assert server.get("/v1/system/feeds").json() == [
            {"name": "vulnerabilities", "enabled": True, "created_at": None, "updated_at": None,
             "last_full_sync": None, "groups": []}]


def test_registry_requests_are_checked_as_the_engine_does(server: ServeProcess) -> None:
    body = {"registry": "https://registry.example", "registry_user": "u", "registry_pass": "p",
            "registry_type": "docker_v2", "registry_verify": True}
    assert server.post("/v1/registries", params={"validate": "false"}, json=body).status_code == 409
    body["registry"] = "registry.example/"
    assert server.post("/v1/registries", params={"validate": "false"}, json=body).status_code == 409
    body["registry"] = "registry.example:5000"
    added = server.post("/v1/registries", params={"validate": "false"}, json=body)
    assert added.status_code == 200 and "registry_pass" not in added.json()[0] and "p" not in added.json()[0].values()
    again = server.post("/v1/registries", params={"validate": "false"}, json=body)
    assert again.status_code == 500 and again.json()["message"] == "registry already exists in DB"
    mismatch = server.put("/v1/registries/registry.example:5000", params={"validate": "false"},
                          json={**body, "registry": "other.example"})
    assert mismatch.status_code == 409
    missing = server.put("/v1/registries/absent.example", params={"validate": "false"},
                         json={**body, "registry": "absent.example"})
    assert missing.status_code == 404
    assert server.session.delete(server.url + "/v1/registries/registry.example:5000", timeout=10).json() is True
    assert server.get("/v1/registries").json() == []


def test_event_store_pages_and_filters(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        with store._transaction() as connection:
            for index in range(5):
                add_event(connection, "admin", "analysis_update", f"h/r:{index}",
                          {"analysis_status": "analyzed" if index % 2 else "analysis_failed"})
            add_event(connection, "admin", "tag_update", "h/r:0", {"last_eval": ["a"], "curr_eval": ["b"]})
        first = records.list_events(store, {}, page=1, limit=4)
        second = records.list_events(store, {}, page=2, limit=4)
        assert first["next_page"] is True and second["next_page"] is False
        assert first["item_count"] == 4 and second["item_count"] == 2
        ids = [e["generated_uuid"] for e in first["results"] + second["results"]]
        assert len(set(ids)) == 6
        failed = records.list_events(store, {"event_type": "user.image.analysis.*", "level": "error"}, 1, 100)
        assert sorted(e["event"]["resource"]["id"] for e in failed["results"]) == ["h/r:0", "h/r:2", "h/r:4"]
        assert {e["event"]["type"] for e in failed["results"]} == {"user.image.analysis.failed"}
        tag = records.list_events(store, {"resource_id": "h/r:0", "event_type": "user.image.tag.update"}, 1, 100)
        assert [e["event"]["details"]["curr_eval"] for e in tag["results"]] == [["b"]]
        assert records.list_events(store, {"event_type": "user.image.analysis_%"}, 1, 100)["results"] == []
        assert records.delete_events(store, identifier=ids[0]) == [ids[0]]
        assert records.get_event(store, ids[0]) is None
    finally:
        store.close()


def test_a_tag_moving_within_one_second_names_its_newest_digest(tmp_path: Path) -> None:
    """Tag detection times have one-second resolution; the order comes from the tag history, not the clock."""
    store = Store(tmp_path)
    first, second = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    tag = "registry.example/app:latest"

    def add(digest: str) -> None:
        store.add_image(digest, f"registry.example/app@{digest}", tag, {}, None, False)

    try:
        add(first)
        add(second)  # the tag was pushed again and re-added within the same second
        assert [r.digest for r in store.images_for_tag(tag)] == [second]
        add(first)  # and moved back
        assert [r.digest for r in store.images_for_tag(tag)] == [first]
        assert [r.digest for r in store.images_for_tag(tag, history=True)] == [first, second]
        add(first)  # re-adding what the tag already names is no move
        moves = records.list_events(store, {"event_type": "user.image.tag.update"}, 1, 100)["results"]
        assert sorted(e["event"]["details"]["curr_eval"][0] for e in moves) == [first, second]
        assert store.images_for_tag("registry.example/app:other") == []
    finally:
        store.close()
