"""The tag_drift gate evaluated by serve: the previous image is the one the tag's history names."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.support.drift_images import build_drift_images
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess

POLICY = {
    "id": "drift-policy", "name": "drift", "version": "2",
    "rule_sets": [{"id": "rs", "name": "drift", "version": "2", "rules": [
        {"id": "added", "gate": "tag_drift", "trigger": "packages_added", "action": "STOP", "params": []}]}],
    "allowlists": [],
    "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                  "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": []}],
}


def _findings(serve: ServeProcess, digest: str, tag: str) -> tuple[str, list[dict[str, Any]]]:
    response = serve.get(f"/v2/images/{digest}/check", params={"tag": tag, "policy_id": POLICY["id"]})
    assert response.status_code == 200, response.text
    result = response.json()["evaluations"][0]
    return result["final_action"], [f for f in result["details"]["findings"] if f["gate"] == "tag_drift"]


def test_serve_compares_a_re_pushed_tag_with_the_digest_it_named_before(
        tmp_path: Path, registry: RegistryServer) -> None:
    images = build_drift_images(tmp_path / "images")
    tag = push(images.app_v1_image, registry.host, f"drift/app-{uuid.uuid4().hex[:8]}:stable")
    with ServeProcess(tmp_path / "data") as serve:
        assert serve.post("/v2/policies", json=POLICY).status_code == 200
        assert serve.add_tag(tag).status_code == 200
        assert serve.wait_status(images.app_v1_image.manifest_digest)["analysis_status"] == "analyzed"

        # The tag's first image has no previous one: the rule cannot be evaluated, which is no pass.
        action, findings = _findings(serve, images.app_v1_image.manifest_digest, tag)
        assert action == "stop"
        assert findings and all("Could not evaluate trigger tag_drift/" in f["message"] for f in findings)

        push(images.app_v2_image, registry.host, tag.split("/", 1)[1])  # the tag now names app:2 (adds curl)
        assert serve.add_tag(tag).status_code == 200
        assert serve.wait_status(images.app_v2_image.manifest_digest)["analysis_status"] == "analyzed"
        action, findings = _findings(serve, images.app_v2_image.manifest_digest, tag)
        assert action == "stop"
        assert len(findings) == 1 and "curl" in findings[0]["message"], findings
        assert "Could not evaluate" not in findings[0]["message"]
        assert images.app_v1_image.manifest_digest in findings[0]["message"] or tag in findings[0]["message"]

        # The older digest is compared with what came before it (nothing), never with the newer one.
        action, findings = _findings(serve, images.app_v1_image.manifest_digest, tag)
        assert findings and all("Could not evaluate trigger tag_drift/" in f["message"] for f in findings)
