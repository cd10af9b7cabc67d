"""`check?history=true` on the real `ci-gate serve` after deletes: a deleted image's stored checks go with
it (re-added, it does not show the checks of before), and a deleted policy's go with the policy (a new
policy under the same id does not show the deleted one's verdicts as its own history)."""

from __future__ import annotations

from typing import Any

from tests.support.serve import ServeProcess


def _bundle(action: str) -> dict[str, Any]:
    return {"id": "history-bundle", "version": "1_0", "name": "history", "comment": "one rule",
            "whitelisted_images": [], "blacklisted_images": [],
            "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                          "image": {"type": "tag", "value": "*"}, "policy_id": "p1", "whitelist_ids": []}],
            "whitelists": [],
            "policies": [{"id": "p1", "version": "1_0", "name": "always", "rules": [
                {"id": "r1", "action": action, "gate": "always", "trigger": "always", "params": []}]}]}


def _history(serve: ServeProcess, digest: str, tag: str) -> list[str]:
    answer = serve.get(f"/v2/images/{digest}/check", params={"tag": tag, "policy_id": "history-bundle",
                                                              "history": "true"})
    assert answer.status_code == 200, answer.text
    return [e["final_action"] for e in answer.json()["evaluations"]]


def test_deleted_images_and_policies_take_their_stored_checks_with_them(
        fresh_server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    serve = fresh_server.start()
    tag, digest = pushed_images[0]
    assert serve.add_tag(tag).status_code == 200
    serve.wait_status(digest)
    assert serve.post("/v1/policies", json=_bundle("STOP")).status_code == 200
    assert _history(serve, digest, tag) == ["stop"]
    assert serve.post("/v1/policies", json=_bundle("WARN")).status_code == 200  # replaced (the engine)
    assert _history(serve, digest, tag) == ["warn", "stop"]  # one stored check per final action

    assert serve.delete(f"/v1/images/{digest}", params={"force": "true"}).status_code == 200
    assert serve.add_tag(tag).status_code == 200
    serve.wait_status(digest)
    assert _history(serve, digest, tag) == ["warn"]  # not the stop of the image deleted before

    assert serve.delete("/v1/policies/history-bundle").status_code == 200
    assert serve.post("/v1/policies", json=_bundle("GO")).status_code == 200
    assert _history(serve, digest, tag) == ["go"]  # not the deleted policy's warn
    v1 = serve.get(f"/v1/images/{digest}/check", params={"tag": tag, "policyId": "history-bundle",
                                                          "history": "true", "detail": "false"}).json()
    assert [entry["status"] for entry in v1[0][digest][tag]] == ["pass"]
