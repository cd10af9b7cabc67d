"""`ci-gate serve` over HTTPS with a trustme test CA and an admission configuration (tests/admission, bench/)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.serve import ServeProcess
from tests.support.tiny import TINY_CONFIG, tiny_layers

SECRET_KEY_ID = "AKIAZ7Q3X9LMN2B4K8RT"
"""A made-up AWS access key id planted in the secrets image (a test value, not a secret)."""
SECRET_FIX = "Remove the credential from the image and rotate it; pass secrets at run time."

WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job",
                  "CronJob")
KIND_GROUPS = {"Pod": ("", "v1"), "ReplicationController": ("", "v1"), "Job": ("batch", "v1"),
               "CronJob": ("batch", "v1")}


def build_image(out: Path, label: str, secret: bool = False) -> OciImage:
    """The tiny image plus a layer naming `label` (a distinct digest), with a planted key file if `secret`."""
    extra = [TarItem("etc", kind="dir", mode=0o755), TarItem("etc/variant", f"{label}\n".encode())]
    if secret:
        extra += [TarItem("app", kind="dir", mode=0o755),
                  TarItem("app/.env", f"aws_access_key_id = {SECRET_KEY_ID}\n".encode())]
    layers: list[list[TarItem]] = [*tiny_layers(), extra]
    history = [{"created": "1970-01-01T00:00:00Z", "created_by": f"ADD layer {n} /"} for n in range(len(layers))]
    return build_oci_layout(out, layers, tag=label, config=TINY_CONFIG, history=history)


def admission_policy(document: dict[str, Any]) -> dict[str, Any]:
    """builtin:default as `admission-test`: vulnerability STOP rules dropped (the tiny image's made-up openssl
    advisory would stop every image), and a recommendation on the secrets rule (the fix a denial shows)."""
    rule_set = dict(document["rule_sets"][0])
    rules = []
    for rule in rule_set["rules"]:
        if rule["gate"] == "vulnerabilities" and rule["action"] == "STOP":
            continue
        if rule["id"] == "default-secrets-in-files":
            rule = {**rule, "recommendation": SECRET_FIX}
        rules.append(rule)
    rule_set["rules"] = rules
    return {**document, "id": "admission-test", "name": "admission test", "rule_sets": [rule_set]}


def pod_spec(containers: Sequence[str], init: Sequence[str] = (), ephemeral: Sequence[str] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"init{i}", "image": image} for i, image in enumerate(init)]
    if ephemeral:
        spec["ephemeralContainers"] = [{"name": f"debug{i}", "image": image} for i, image in enumerate(ephemeral)]
    return spec


def workload(kind: str, spec: dict[str, Any], name: str = "app",
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A minimal object of `kind` whose pod (template) spec is `spec`."""
    group, version = KIND_GROUPS.get(kind, ("apps", "v1"))
    metadata = {"name": name, "labels": labels or {"app": name}}
    template = {"metadata": {"labels": {"app": name}}, "spec": spec}
    if kind == "Pod":
        body: dict[str, Any] = {"spec": spec}
    elif kind == "CronJob":
        body = {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    else:
        body = {"spec": {"template": template}}
    return {"apiVersion": f"{group}/{version}" if group else version, "kind": kind, "metadata": metadata, **body}


def review(obj: dict[str, Any], namespace: str = "default", dry_run: bool = False, operation: str = "CREATE",
           uid: str | None = None) -> dict[str, Any]:
    """An AdmissionReview v1 as the API server sends it."""
    kind = obj["kind"]
    group, version = KIND_GROUPS.get(kind, ("apps", "v1"))
    resource = {"group": group, "version": version, "resource": kind.lower() + "s"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid or str(uuid.uuid4()), "kind": {"group": group, "version": version, "kind": kind},
        "resource": resource, "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": resource, "name": obj["metadata"]["name"], "namespace": namespace,
        "operation": operation, "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": obj, "oldObject": None, "dryRun": dry_run, "options": {"apiVersion": "meta.k8s.io/v1",
                                                                         "kind": "CreateOptions"}}}


class TlsServeProcess(ServeProcess):
    """`ci-gate serve --tls-cert --tls-key --admission-config` on 127.0.0.1; the session trusts the test CA."""

    def __init__(self, data_dir: Path, ca_file: Path, cert_file: Path, key_file: Path, admission_config: Path,
                 vuln_db: Path | None = None) -> None:
        super().__init__(data_dir, vuln_db=vuln_db)
        self.ca_file = ca_file
        self.tls_arguments = ["--tls-cert", str(cert_file), "--tls-key", str(key_file),
                              "--admission-config", str(admission_config)]
        self.session.verify = str(ca_file)
        self.session.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, replaces the test CA

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def admit(self, body: Any, **kwargs: Any) -> requests.Response:
        """POST a review as the API server does: HTTPS, no credentials."""
        return requests.post(f"{self.url}/admission/v1/validate", json=body, verify=str(self.ca_file), timeout=60,
                             **kwargs)
