"""`ci-gate admission manifests` and the Helm chart: valid against the Kubernetes schemas
(kubernetes-validate, strict), and the same objects from the same values. helm is not packaged in
Debian, so the chart's templates are rendered by a renderer that knows exactly the template syntax
the chart uses and fails on anything else (tests/support/chart.py)."""

from __future__ import annotations

import base64
import copy
import os
import subprocess
import sys
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ci_gate.cli.admission import ManifestOptions, build_manifests
from ci_gate.server.admission import parse_config
from tests.admission.conftest import TlsFiles
from tests.support.chart import CHART, default_values, render_chart

KUBERNETES_VERSION = kubernetes_validate.latest_version()


def run_manifests(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "admission", "manifests", *arguments],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def chart_values(options: ManifestOptions) -> dict[str, Any]:
    values = default_values()
    values.update(image=options.image, caBundle=options.ca_bundle, failurePolicy=options.failure_policy,
                  timeoutSeconds=options.timeout_seconds, tls={"crt": options.tls_crt, "key": options.tls_key},
                  allowRegistries=options.allow_registries)
    return dict(values)


def test_printed_objects_are_valid_and_register_the_webhook(tls_files: TlsFiles) -> None:
    result = run_manifests("--namespace", "security", "--ca-bundle", str(tls_files.ca),
                           "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key))
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["Secret", "ConfigMap", "Deployment", "Service",
                                              "ValidatingWebhookConfiguration"]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    secret, config_map, deployment, service, configuration = documents
    assert base64.b64decode(secret["data"]["tls.crt"]) == tls_files.cert.read_bytes()
    assert base64.b64decode(secret["data"]["tls.key"]) == tls_files.key.read_bytes()
    parse_config(yaml.safe_load(config_map["data"]["admission.yaml"]), "ConfigMap")
    assert {d["metadata"].get("namespace") for d in documents[:4]} == {"security"}
    (webhook,) = configuration["webhooks"]
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["sideEffects"] == "NoneOnDryRun" and webhook["failurePolicy"] == "Fail"
    assert webhook["timeoutSeconds"] == 10
    assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == tls_files.ca.read_bytes()
    assert webhook["clientConfig"]["service"] == {"name": service["metadata"]["name"], "namespace": "security",
                                                  "path": "/admission/v1/validate", "port": 443}
    assert webhook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "security"]}]
    resources = {r for rule in webhook["rules"] for r in rule["resources"]}
    assert resources == {"pods", "pods/ephemeralcontainers", "replicationcontrollers", "deployments",
                         "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"}
    arguments = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert arguments[arguments.index("--admission-config") + 1].startswith("/etc/ci-gate/admission/")


def test_the_validator_rejects_a_broken_object() -> None:
    """The schema check is real: a misspelt field and a wrong type are caught."""
    configuration = build_manifests(ManifestOptions())[-1]
    broken = copy.deepcopy(configuration)
    broken["webhooks"][0]["timeoutSecond"] = 10
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(configuration)
    broken["webhooks"][0]["admissionReviewVersions"] = "v1"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("namespace", ["ci-gate", "security"])
def test_the_chart_renders_the_same_objects(tls_files: TlsFiles, namespace: str) -> None:
    options = ManifestOptions(namespace=namespace, ca_bundle=base64.b64encode(tls_files.ca.read_bytes()).decode(),
                              failure_policy="Ignore", timeout_seconds=5,
                              allow_registries="" if namespace == "ci-gate" else "registry.example.com:5000 ghcr.io")
    rendered = render_chart(chart_values(options), namespace)
    for document in rendered:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    assert rendered == build_manifests(options)


def test_chart_defaults_equal_the_command_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defaults = ManifestOptions()
    # The many-replicas values (tests/server/test_fleet_chart.py) are off by default: one replica, as printed.
    assert not values.pop("database")["existingSecret"]
    values.pop("fleet")
    assert values == {"image": defaults.image, "caBundle": "", "tls": {"crt": "", "key": ""},
                      "failurePolicy": defaults.failure_policy, "timeoutSeconds": defaults.timeout_seconds,
                      "admissionConfig": defaults.admission_config, "allowRegistries": defaults.allow_registries}


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--failure-policy", "Maybe"], "--failure-policy must be Fail or Ignore"),
    (["--namespace", "Not_Valid"], "not a valid namespace name"),
    (["--ca-bundle", "pyproject.toml"], "is not a PEM file"),
    (["--ca-bundle", "/nonexistent/ca.pem"], "cannot read --ca-bundle"),
])
def test_bad_options_are_one_line_exit_2(arguments: list[str], expected: str) -> None:
    result = run_manifests(*arguments)
    assert result.returncode == 2 and expected in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
