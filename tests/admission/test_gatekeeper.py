"""The OPA Gatekeeper external-data provider on the same service, checked against the documented
ProviderRequest/ProviderResponse shapes (open-policy-agent.github.io/gatekeeper, "External Data")."""

from __future__ import annotations

from typing import Any

import jsonschema
import requests

from tests.admission.conftest import Images
from tests.admission.support import TlsServeProcess

PROVIDER_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "response"],
    "properties": {
        "apiVersion": {"const": "externaldata.gatekeeper.sh/v1beta1"},
        "kind": {"const": "ProviderResponse"},
        "response": {
            "type": "object", "additionalProperties": False, "required": ["idempotent", "items", "systemError"],
            "properties": {
                "idempotent": {"type": "boolean"},
                "systemError": {"type": "string"},
                "items": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["key", "value", "error"],
                    "properties": {"key": {"type": "string"}, "value": {}, "error": {"type": "string"}}}},
            },
        },
    },
}


def provide(server: TlsServeProcess, keys: Any) -> requests.Response:
    body = {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": keys}}
    return requests.post(f"{server.url}/admission/v1/gatekeeper", json=body, verify=str(server.ca_file), timeout=60)


def test_one_item_per_image_in_the_documented_shape(admission_server: TlsServeProcess,
                                                    admission_images: Images) -> None:
    keys = [admission_images.compliant, admission_images.secrets, "registry.k8s.io/pause:3.9"]
    response = provide(admission_server, keys)
    assert response.status_code == 200, response.text
    document = response.json()
    jsonschema.validate(document, PROVIDER_RESPONSE_SCHEMA)
    items = {item["key"]: item for item in document["response"]["items"]}
    assert list(items) == keys
    assert items[admission_images.compliant]["error"] == ""
    assert items[admission_images.compliant]["value"]["allowed"] is True
    assert items[admission_images.compliant]["value"]["digest"] == admission_images.compliant_digest
    assert items[admission_images.secrets]["error"].startswith("denied: secret_scans/content_regex_checks")
    assert items[admission_images.secrets]["value"]["allowed"] is False
    assert items["registry.k8s.io/pause:3.9"]["error"] == ""
    assert document["response"]["idempotent"] is True  # every answer is final: Gatekeeper may cache it


def test_a_pending_image_is_not_idempotent(admission_server: TlsServeProcess, admission_images: Images) -> None:
    repository = admission_images.compliant.rsplit(":", 1)[0]
    unknown = f"{repository}@sha256:{'0' * 64}"
    document = provide(admission_server, [unknown]).json()
    jsonschema.validate(document, PROVIDER_RESPONSE_SCHEMA)
    assert document["response"]["idempotent"] is False
    assert document["response"]["items"][0]["error"].startswith("denied: not analysed yet")


def test_malformed_provider_requests_answer_400(admission_server: TlsServeProcess) -> None:
    for keys in (None, "nginx", [1], [""]):
        assert provide(admission_server, keys).status_code == 400
    for body in ({}, {"apiVersion": "v1", "kind": "ProviderRequest", "request": {"keys": []}}, []):
        response = requests.post(f"{admission_server.url}/admission/v1/gatekeeper", json=body,
                                 verify=str(admission_server.ca_file), timeout=60)
        assert response.status_code == 400 and "ProviderRequest" in response.json()["message"]
