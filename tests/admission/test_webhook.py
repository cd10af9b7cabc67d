"""The validating webhook over real HTTPS (trustme CA) against `ci-gate serve` as a process, with real
images analysed from the local registry: reviews as the API server sends them, for every workload kind
and every container list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.admission.conftest import Images, TlsFiles
from tests.admission.support import (
    SECRET_FIX,
    SECRET_KEY_ID,
    WORKLOAD_KINDS,
    TlsServeProcess,
    build_image,
    pod_spec,
    review,
    workload,
)
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD


def answer(server: TlsServeProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = server.admit(body)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["apiVersion"] == "admission.k8s.io/v1" and document["kind"] == "AdmissionReview"
    assert document["response"]["uid"] == body["request"]["uid"]
    return dict(document["response"])


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
def test_compliant_image_is_admitted_with_its_warnings(admission_server: TlsServeProcess,
                                                      admission_images: Images, kind: str) -> None:
    result = answer(admission_server, review(workload(kind, pod_spec([admission_images.compliant]))))
    assert result["allowed"] is True
    assert "status" not in result
    # the test policy keeps builtin:default's WARN rules; the tiny image runs as root
    assert any(w.startswith(f"{admission_images.compliant}: WARN image_user/runs_as_root") for w in result["warnings"])


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
def test_secrets_image_is_denied_with_reasons_and_fix(admission_server: TlsServeProcess, admission_images: Images,
                                                     kind: str) -> None:
    spec = pod_spec([admission_images.compliant, admission_images.secrets])
    result = answer(admission_server, review(workload(kind, spec)))
    assert result["allowed"] is False
    assert result["status"]["code"] == 403
    message = result["status"]["message"]
    assert f"{admission_images.secrets} in containers[1] (c1) (policy mode, policy admission-test)" in message
    assert "secret_scans/content_regex_checks" in message
    assert f"(fix: {SECRET_FIX})" in message
    assert admission_images.compliant + " in" not in message  # only the denied image is named
    assert SECRET_KEY_ID[4:12] not in json.dumps(result)


@pytest.mark.parametrize("list_name", ["initContainers", "ephemeralContainers"])
def test_noncompliant_init_or_ephemeral_container_is_denied(admission_server: TlsServeProcess,
                                                           admission_images: Images, list_name: str) -> None:
    extra = {"init": [admission_images.secrets]} if list_name == "initContainers" else \
        {"ephemeral": [admission_images.secrets]}
    result = answer(admission_server, review(workload("Pod", pod_spec([admission_images.compliant], **extra))))
    assert result["allowed"] is False
    assert f"{admission_images.secrets} in {list_name}[0]" in result["status"]["message"]


def test_digest_reference_and_selected_policy(admission_server: TlsServeProcess, admission_images: Images) -> None:
    repository = admission_images.compliant.rsplit(":", 1)[0]
    pinned = f"{repository}@{admission_images.compliant_digest}"
    assert answer(admission_server, review(workload("Pod", pod_spec([pinned]))))["allowed"] is True
    # a resource labelled tier=strict is checked against builtin:default, whose vulnerability rules stop the
    # tiny image's openssl (the made-up critical advisory in the test store)
    strict = workload("Deployment", pod_spec([pinned]), labels={"tier": "strict"})
    result = answer(admission_server, review(strict))
    assert result["allowed"] is False
    assert "policy ci-gate-default" in result["status"]["message"]
    assert "vulnerabilities/package" in result["status"]["message"]


def test_analysis_mode_admits_analysed_images(admission_server: TlsServeProcess, admission_images: Images) -> None:
    result = answer(admission_server, review(workload("Pod", pod_spec([admission_images.secrets])),
                                             namespace="scan-only"))
    assert result["allowed"] is True


def test_breakglass_admits_with_warnings(admission_server: TlsServeProcess, admission_images: Images) -> None:
    result = answer(admission_server, review(workload("Pod", pod_spec([admission_images.secrets])),
                                             namespace="emergency"))
    assert result["allowed"] is True
    breakglass = [w for w in result["warnings"] if w.startswith("breakglass:")]
    assert len(breakglass) == 1 and admission_images.secrets in breakglass[0]
    assert "secret_scans/content_regex_checks" in breakglass[0]


def test_allowlisted_registry_is_admitted_unchecked(admission_server: TlsServeProcess) -> None:
    result = answer(admission_server, review(workload("Pod", pod_spec(["registry.k8s.io/pause:3.9"]))))
    assert result["allowed"] is True


def test_unknown_image_is_queued_denied_then_admitted(admission_server: TlsServeProcess, registry: RegistryServer,
                                                      tmp_path: Path) -> None:
    oci = build_image(tmp_path / "unknown", "unknown-1")
    tag = push(oci, registry.host, "admission/unknown:v1")
    body = review(workload("Pod", pod_spec([tag])))
    first = answer(admission_server, body)
    assert first["allowed"] is False
    assert "queued for analysis" in first["status"]["message"]
    records = admission_server.get("/v2/images", params={"full_tag": tag}).json()["items"]
    assert [r["image_digest"] for r in records] == [oci.manifest_digest]
    assert records[0]["annotations"] == {"requestor": "ci-gate-admission"}
    admission_server.wait_status(oci.manifest_digest)
    assert answer(admission_server, body)["allowed"] is True


def test_dry_run_has_no_side_effect(admission_server: TlsServeProcess, registry: RegistryServer,
                                    tmp_path: Path) -> None:
    oci = build_image(tmp_path / "dry", "dry-run-1")
    tag = push(oci, registry.host, "admission/dry:v1")
    result = answer(admission_server, review(workload("Pod", pod_spec([tag])), dry_run=True))
    assert result["allowed"] is False
    assert "dry run: not queued" in result["status"]["message"]
    assert admission_server.get(f"/v2/images/{oci.manifest_digest}").status_code == 404


def test_image_from_a_registry_serve_may_not_pull_is_denied_not_queued(admission_server: TlsServeProcess) -> None:
    digest = "sha256:" + "ab" * 32
    for reference in (f"registry.example.invalid/app@{digest}", "registry.example.invalid/app:v1"):
        result = answer(admission_server, review(workload("Pod", pod_spec([reference]))))
        assert result["allowed"] is False
        assert "registry.example.invalid" in result["status"]["message"]
    assert admission_server.get(f"/v2/images/{digest}").status_code == 404


def test_moved_tag_is_evaluated_again(admission_server: TlsServeProcess, registry: RegistryServer,
                                      tmp_path: Path) -> None:
    """A tag gated clean, then pushed over with the secrets image: the new digest is what runs."""
    clean = build_image(tmp_path / "clean", "moving-clean")
    tag = push(clean, registry.host, "admission/moving:v1")
    admission_server.wait_status(admission_server.add_tag(tag).json()["image_digest"])
    body = review(workload("Pod", pod_spec([tag])))
    assert answer(admission_server, body)["allowed"] is True
    dirty = build_image(tmp_path / "dirty", "moving-dirty", secret=True)
    push(dirty, registry.host, "admission/moving:v1")
    moved = answer(admission_server, review(workload("Pod", pod_spec([tag]))))
    assert moved["allowed"] is False
    assert f"the tag pointed at {clean.manifest_digest} when it was gated" in moved["status"]["message"]
    admission_server.wait_status(dirty.manifest_digest)
    again = answer(admission_server, review(workload("Pod", pod_spec([tag]))))
    assert again["allowed"] is False and "secret_scans/content_regex_checks" in again["status"]["message"]


def test_delete_is_allowed_and_unknown_kinds_are_refused(admission_server: TlsServeProcess,
                                                         admission_images: Images) -> None:
    obj = workload("Pod", pod_spec([admission_images.secrets]))
    assert answer(admission_server, review(obj, operation="DELETE"))["allowed"] is True
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}}
    refused = answer(admission_server, review(service))
    assert refused["allowed"] is False and "does not check Service objects" in refused["status"]["message"]


def _malformed(images: Images) -> list[Any]:
    good = review(workload("Pod", pod_spec([images.compliant])))
    bodies: list[Any] = [None, [], "review", {}, {**good, "apiVersion": "admission.k8s.io/v1beta1"},
                         {**good, "kind": "Review"}, {**good, "request": None}]
    for mutate in (lambda r: r.pop("uid"), lambda r: r.update(uid=7), lambda r: r.update(kind="Pod"),
                   lambda r: r.update(operation="PATCH"), lambda r: r.update(object=None),
                   lambda r: r.update(object={"kind": "Pod", "metadata": {"name": "x"}}),
                   lambda r: r["object"]["spec"].update(containers={"image": images.compliant}),
                   lambda r: r["object"]["spec"]["containers"][0].update(image=""),
                   lambda r: r["object"]["spec"]["containers"][0].update(image=["x"]),
                   lambda r: r["object"]["spec"].update(initContainers=[None]),
                   lambda r: r["object"]["metadata"].update(labels={"a": 1}),
                   lambda r: r.update(namespace=["default"]),
                   lambda r: r["object"]["spec"].pop("containers")):
        body = json.loads(json.dumps(good))
        mutate(body["request"])
        bodies.append(body)
    deployment = review(workload("Deployment", pod_spec([images.compliant])))
    deployment["request"]["object"]["spec"]["template"] = "nope"
    bodies.append(deployment)
    return bodies


def test_malformed_reviews_answer_400_never_allow(admission_server: TlsServeProcess, admission_images: Images) -> None:
    for body in _malformed(admission_images):
        response = admission_server.admit(body)
        assert response.status_code == 400, (body, response.text)
        assert "allowed" not in response.text and response.json()["message"]
    for raw, content_type in ((b"{not json", "application/json"), (b"\xff\xfe", "application/json"),
                              (b"[" * 100_000 + b"]" * 100_000, "application/json"),
                              (b"{}", "text/plain")):
        response = requests.post(f"{admission_server.url}/admission/v1/validate", data=raw, timeout=60,
                                 headers={"Content-Type": content_type}, verify=admission_server.session.verify)
        assert response.status_code == 400, response.text
    oversized = b'{"apiVersion": "admission.k8s.io/v1", "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = requests.post(f"{admission_server.url}/admission/v1/validate", data=oversized, timeout=60,
                             headers={"Content-Type": "application/json"}, verify=admission_server.session.verify)
    assert response.status_code == 400 and "larger than 3 MiB" in response.json()["message"]
    assert "Traceback" not in admission_server.full_log()


def test_webhook_needs_no_api_credentials_but_the_api_still_does(admission_server: TlsServeProcess,
                                                                 admission_images: Images, tls_files: TlsFiles) -> None:
    assert requests.get(f"{admission_server.url}/v2/images", verify=str(tls_files.ca), timeout=30).status_code == 401
    with pytest.raises(requests.exceptions.SSLError):  # the server's certificate is checked against the CA
        requests.post(f"{admission_server.url}/admission/v1/validate", json={}, timeout=30)


def test_decision_log_line_per_request(admission_server: TlsServeProcess, admission_images: Images) -> None:
    body = review(workload("Job", pod_spec([admission_images.secrets]), name="nightly"), namespace="batch-ns")
    answer(admission_server, body)
    deadline = time.monotonic() + 30  # the server logs after it answered: on a busy machine, a while after
    while time.monotonic() < deadline and body["request"]["uid"] not in admission_server.full_log():
        time.sleep(0.05)
    line = next(line for line in admission_server.full_log().splitlines() if body["request"]["uid"] in line)
    decision = json.loads(line.split("admission decision ", 1)[1])
    assert decision["namespace"] == "batch-ns" and decision["kind"] == "Job" and decision["name"] == "nightly"
    assert decision["decision"] == "deny" and 0 < decision["elapsed_ms"] < 30_000
    assert decision["images"][0]["image"] == admission_images.secrets
    assert decision["images"][0]["digest"] == admission_images.secrets_digest
    assert "secret_scans/content_regex_checks" in decision["reasons"][0]


def test_an_image_gated_in_ci_is_admitted_without_a_second_analysis(admission_server: TlsServeProcess,
                                                                    registry: RegistryServer, tmp_path: Path) -> None:
    """`ci-gate gate --backend anchore` against this serve fills the record the webhook answers from."""
    oci = build_image(tmp_path / "gated", "gated-in-ci")
    tag = push(oci, registry.host, "admission/gated:v1")
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("ANCHORE", "CI_GATE_", "GITHUB_", "GITLAB", "CI_"))}
    environment.update(CI="true", ANCHORE_URL=admission_server.url, ANCHORE_USER="admin", ANCHORE_PASS=PASSWORD,
                       REQUESTS_CA_BUNDLE=str(admission_server.ca_file))
    gate = subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", f"registry:{tag}", "--backend", "anchore",
                           "--poll-interval", "0.2"], capture_output=True, text=True, cwd=tmp_path, env=environment,
                          timeout=300)
    assert gate.returncode in (0, 1), gate.stderr
    assert admission_server.get(f"/v2/images/{oci.manifest_digest}").json()["analysis_status"] == "analyzed"
    assert answer(admission_server, review(workload("Deployment", pod_spec([tag]))))["allowed"] is True
    analyses = admission_server.get("/status").json()["detail"]["analyses_by_digest"]
    assert analyses[oci.manifest_digest] == 1
