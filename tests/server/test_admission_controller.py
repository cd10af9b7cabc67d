"""The Anchore Kubernetes admission controller's request sequence, replayed against `ci-gate serve`.

Replayed from anchore/kubernetes-admission-controller `cmd/kubernetes-admission-controller/anchore/
anchore_api_image_backend_v1.go` (engine client, API v1) and `anchore_api_image_backend.go` (Enterprise
client, API v2), with the query parameter and JSON field names of the generated Go clients it uses
(anchore/enterprise-client-go `pkg/engine`, `pkg/enterprise`):

1. `GET {url}/version`: v1 requires `api` to carry no version, v2 requires `api.version == "2"`.
2. Get: `GET /images?fulltag=` (v1) / `?full_tag=` (v2); a 404 means "not in Anchore"; otherwise the
   images are sorted by `created_at` and the first one is used.
3. Analyze: `POST /images?autosubscribe=false` (v1, body `source.tag.pullstring`, `created_at`,
   `annotations`) / `?auto_subscribe=false` (v2, `source.tag.pull_string`, `annotations`).
4. DoesPolicyCheckPass: `GET /images/{digest}/check?tag=&interactive=true[&policyId=|&policy_id=]`;
   v1 reads `[{digest: {tag: [{status}]}}]`, v2 reads `evaluations[].status` (any fail fails).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.server.anchore_cli import build_app_image
from tests.support.oci import OciImage, push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess

REQUESTOR = {"requestor": "anchore-admission-controller"}


class ControllerV1:
    """What APIImageBackendV1 sends and reads."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        version = server.get("/v1/version")
        assert version.status_code == 200
        assert not version.json()["api"].get("version"), version.json()  # "For v1 API the api struct is returned empty"

    def get(self, reference: str) -> tuple[str, str] | None:
        response = self.server.get("/v1/images", params={"fulltag": reference})
        if response.status_code == 404:
            return None  # ErrImageDoesNotExist
        assert response.status_code == 200, response.text
        images = sorted(response.json(), key=lambda i: _time(i["created_at"]))
        assert images, f"no images found with tag {reference!r}"
        return images[0]["imageDigest"], images[0]["analysis_status"]

    def analyze(self, reference: str) -> str:
        body = {"source": {"tag": {"pullstring": reference}}, "annotations": REQUESTOR,
                "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        response = self.server.post("/v1/images", params={"autosubscribe": "false"}, json=body)
        assert response.status_code == 200, response.text
        images = response.json()
        assert images, "no image record received in successful response to image add request"
        return str(images[0]["imageDigest"])

    def check_passes(self, digest: str, tag: str, policy_id: str = "") -> bool:
        params = {"tag": tag, "interactive": "true", **({"policyId": policy_id} if policy_id else {})}
        response = self.server.get(f"/v1/images/{digest}/check", params=params)
        assert response.status_code == 200, response.text
        evaluations = response.json()
        if not evaluations:
            return False
        result = evaluations[0]
        first_digest = next(iter(result))
        first_tag = next(iter(result[first_digest]))
        return str(result[first_digest][first_tag][0]["status"]).lower() == "pass"


class ControllerV2:
    """What APIImageBackend sends and reads."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        version = server.get("/v2/version")
        assert version.status_code == 200 and version.json()["api"]["version"] == "2", version.text

    def get(self, reference: str) -> tuple[str, str] | None:
        response = self.server.get("/v2/images", params={"full_tag": reference})
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        images = sorted(response.json().get("items") or [], key=lambda i: _time(i["created_at"]))
        if not images:
            return None  # the controller reports "no images found with tag" and admits nothing
        return images[0]["image_digest"], images[0]["analysis_status"]

    def analyze(self, reference: str) -> str:
        body = {"source": {"tag": {"pull_string": reference}}, "annotations": REQUESTOR}
        response = self.server.post("/v2/images", params={"auto_subscribe": "false"}, json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["image_digest"])

    def check_passes(self, digest: str, tag: str, policy_id: str = "") -> bool:
        params = {"tag": tag, "interactive": "true", **({"policy_id": policy_id} if policy_id else {})}
        response = self.server.get(f"/v2/images/{digest}/check", params=params)
        assert response.status_code == 200, response.text
        status = ""
        for evaluation in response.json()["evaluations"]:
            status = evaluation["status"]
            if status.lower() == "fail":
                return False
        return status.lower() == "pass"


def _time(text: str) -> datetime:
    """Go's time.Time JSON decoding accepts RFC 3339 only."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def admission_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OciImage]:
    root = tmp_path_factory.mktemp("admission-images")
    return {"clean": build_app_image(root / "clean", leaky=False), "leaky": build_app_image(root / "leaky", leaky=True)}


PERMISSIVE_V2 = {
    "id": "admission-permissive", "name": "permissive", "version": "2", "rule_sets": [
        {"id": "rs", "name": "rs", "version": "2", "rules": [
            {"id": "r", "gate": "dockerfile", "trigger": "instruction", "action": "WARN",
             "params": [{"name": "instruction", "value": "HEALTHCHECK"}, {"name": "check", "value": "not_exists"}]}]}],
    "allowlists": [], "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                                    "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"],
                                    "allowlist_ids": []}],
}


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_admission_controller_sequence(api: str, tmp_path: Path, demo_vuln_db: Path, registry: RegistryServer,
                                       admission_images: dict[str, OciImage]) -> None:
    repo = f"admission/app-{uuid.uuid4().hex[:8]}"
    tags = {name: push(image, registry.host, f"{repo}:{name}") for name, image in admission_images.items()}
    with ServeProcess(tmp_path / "data", vuln_db=demo_vuln_db) as server:
        controller: Any = ControllerV1(server) if api == "v1" else ControllerV2(server)
        assert server.post(f"/{api}/policies", json=PERMISSIVE_V2).status_code == 200

        for name in ("leaky", "clean"):  # the leaky image first: the clean one must not be answered with it
            assert controller.get(tags[name]) is None  # not in Anchore yet: the controller asks for analysis
            assert controller.analyze(tags[name]) == admission_images[name].manifest_digest
        for name in ("leaky", "clean"):
            server.wait_status(admission_images[name].manifest_digest)
            found = controller.get(tags[name])
            assert found == (admission_images[name].manifest_digest, "analyzed")

        digest = {name: image.manifest_digest for name, image in admission_images.items()}
        # the active policy (ci-gate-default) stops the planted credentials; the clean image passes
        assert controller.check_passes(digest["leaky"], tags["leaky"]) is False
        assert controller.check_passes(digest["clean"], tags["clean"]) is True
        # policyBundleId selects a policy for this check only
        assert controller.check_passes(digest["leaky"], tags["leaky"], "admission-permissive") is True
        assert controller.check_passes(digest["leaky"], tags["leaky"]) is False

        # the add asked for no autosubscribe and carried the controller's annotations
        record = server.get(f"/v2/images/{digest['leaky']}").json()
        assert record["annotations"] == REQUESTOR
        subscriptions = server.get(f"/{api}/subscriptions", params={"subscription_key": tags["leaky"]}).json()
        active = {s["subscription_type"]: s["active"] for s in subscriptions}
        assert active == {"analysis_update": True, "tag_update": False, "policy_eval": False, "vuln_update": False}

        # a tag nobody added is never answered with another image
        assert controller.get(f"{registry.host}/{repo}:unknown") is None
        if api == "v1":
            response = server.get("/v1/images", data=json.dumps({"tag": f"{registry.host}/{repo}:unknown"}),
                                  headers={"Content-Type": "application/json"})
            assert response.status_code == 404 and "sha256:" not in response.text
