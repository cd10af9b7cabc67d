"""`ci-gate admission manifests`: the Kubernetes objects that run serve as an admission webhook (docs/admission.md).

The Helm chart under integrations/kubernetes/ci-gate renders the same objects from the same values;
tests/admission/test_manifests.py holds the two together.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ci_gate import __version__
from ci_gate.errors import UsageError

app = typer.Typer(help="Kubernetes admission: deploy serve as a validating webhook (docs/admission.md).",
                  no_args_is_help=True)

NAME = "ci-gate"
PORT = 8443
WEBHOOK_PATH = "/admission/v1/validate"
DEFAULT_ADMISSION_CONFIG = """\
# docs/admission.md: modes per selector, first match wins; no match = defaultMode
defaultMode: policy
requestAnalysis: true
policySelectors: []
allowlist:
  registries: []
  digests: []
"""


@dataclass(frozen=True)
class ManifestOptions:
    """What the printed objects are parameterised by (the chart's values.yaml has the same)."""

    namespace: str = NAME
    image: str = f"ghcr.io/ci-gate/ci-gate:{__version__}"
    ca_bundle: str = ""
    """Base64 of the PEM CA that signed serve's certificate; empty = the API server's trust roots."""
    tls_crt: str = ""
    """Base64 of serve's PEM certificate chain (empty: create the Secret with kubectl create secret tls)."""
    tls_key: str = ""
    """Base64 of its PEM key."""
    failure_policy: str = "Fail"
    timeout_seconds: int = 10
    admission_config: str = DEFAULT_ADMISSION_CONFIG
    allow_registries: str = ""
    """HOST[:PORT] serve may pull from, space-separated (serve's $CI_GATE_ALLOW_REGISTRIES): without one,
    and without registry credentials, serve can resolve no tag, so the webhook denies every image."""


def build_manifests(options: ManifestOptions) -> list[dict[str, Any]]:
    """Secret, ConfigMap, Deployment, Service, ValidatingWebhookConfiguration, in apply order."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "admission"}
    namespace = options.namespace
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": {"name": f"{NAME}-tls", "namespace": namespace, "labels": labels},
              "data": {"tls.crt": options.tls_crt, "tls.key": options.tls_key}}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{NAME}-admission", "namespace": namespace, "labels": labels},
                  "data": {"admission.yaml": options.admission_config}}
    container = {
        "name": "serve", "image": options.image,
        "args": ["serve", "--host", "0.0.0.0", "--port", str(PORT), "--data-dir", "/var/lib/ci-gate",
                 "--tls-cert", "/etc/ci-gate/tls/tls.crt", "--tls-key", "/etc/ci-gate/tls/tls.key",
                 "--admission-config", "/etc/ci-gate/admission/admission.yaml"],
        "env": [{"name": "CI_GATE_ADMIN_PASSWORD",
                 "valueFrom": {"secretKeyRef": {"name": f"{NAME}-admin", "key": "password"}}},
                *([{"name": "CI_GATE_ALLOW_REGISTRIES", "value": options.allow_registries}]
                  if options.allow_registries else [])],
        "ports": [{"name": "https", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "https", "scheme": "HTTPS"}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "https", "scheme": "HTTPS"}},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "tls", "mountPath": "/etc/ci-gate/tls", "readOnly": True},
                         {"name": "admission", "mountPath": "/etc/ci-gate/admission", "readOnly": True},
                         {"name": "data", "mountPath": "/var/lib/ci-gate"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        # one replica: serve's records live in one SQLite data dir
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [container], "automountServiceAccountToken": False, "volumes": [
                {"name": "tls", "secret": {"secretName": f"{NAME}-tls"}},
                {"name": "admission", "configMap": {"name": f"{NAME}-admission"}},
                {"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532}}}},
    }
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
               "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": "https"}]}}
    operations = ["CREATE", "UPDATE"]
    webhook = {
        "name": "images.ci-gate.dev",
        "admissionReviewVersions": ["v1"],
        # queuing an unknown image's analysis is an out-of-band change, suppressed for dry-run requests
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": options.timeout_seconds,
        "failurePolicy": options.failure_policy,
        "matchPolicy": "Equivalent",
        "clientConfig": {"service": {"name": NAME, "namespace": namespace, "path": WEBHOOK_PATH, "port": 443},
                         "caBundle": options.ca_bundle},
        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                    "values": ["kube-system", namespace]}]},
        "rules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": operations,
             "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"], "scope": "Namespaced"},
            {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": operations,
             "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "scope": "Namespaced"},
            {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": operations,
             "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
        ],
    }
    configuration = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                     "metadata": {"name": f"{NAME}-admission", "labels": labels}, "webhooks": [webhook]}
    return [secret, config_map, deployment, service, configuration]


def _base64_file(path: Path | None, option: str) -> str:
    if path is None:
        return ""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {option} {path}: {error.strerror or error}") from None
    if b"-----BEGIN " not in data:
        raise UsageError(f"{option} {path} is not a PEM file (no -----BEGIN line)")
    return base64.b64encode(data).decode()


@app.command("manifests")
def manifests(
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace serve runs in (excluded from checks).")]
    = NAME,
    ca_bundle: Annotated[
        Path | None, typer.Option("--ca-bundle", help="PEM CA that signed serve's certificate (the caBundle).")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate for the TLS Secret.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM key for the TLS Secret.")] = None,
    image: Annotated[str, typer.Option("--image", help="The ci-gate container image.")] = ManifestOptions.image,
    failure_policy: Annotated[
        str, typer.Option("--failure-policy", help="Fail (default: no pod without an answer) or Ignore.")
    ] = "Fail",
    timeout_seconds: Annotated[int, typer.Option("--timeout-seconds", min=1, max=30)] = 10,
    admission_config: Annotated[
        Path | None, typer.Option("--admission-config", help="The admission YAML to put in the ConfigMap.")
    ] = None,
    allow_registry: Annotated[
        list[str] | None,
        typer.Option("--allow-registry", help="HOST[:PORT] serve may pull from and resolve tags on (repeatable; "
                     "'*' any registry): without one serve resolves no tag and the webhook denies every image "
                     "not on the admission allowlist."),
    ] = None,
) -> None:
    """Print the Kubernetes objects (YAML) that run serve and register it as a validating webhook."""
    import re

    import yaml

    if failure_policy not in ("Fail", "Ignore"):
        raise UsageError(f"--failure-policy must be Fail or Ignore, not {failure_policy!r}")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
        raise UsageError(f"--namespace {namespace!r} is not a valid namespace name (RFC 1123 label)")
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("give --tls-cert and --tls-key together")
    registries = [entry.strip() for entry in allow_registry or [] if entry.strip()]
    for entry in registries:
        if not re.fullmatch(r"\*|[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", entry):
            raise UsageError(f"--allow-registry takes HOST[:PORT] or '*', not {entry[:80]!r}")
    config_text = DEFAULT_ADMISSION_CONFIG
    if admission_config is not None:
        from ci_gate.server.admission import load_config

        load_config(admission_config)  # a broken file fails here, not in the cluster
        config_text = admission_config.read_text(encoding="utf-8")
    options = ManifestOptions(namespace=namespace, image=image, ca_bundle=_base64_file(ca_bundle, "--ca-bundle"),
                              tls_crt=_base64_file(tls_cert, "--tls-cert"), tls_key=_base64_file(tls_key, "--tls-key"),
                              failure_policy=failure_policy, timeout_seconds=timeout_seconds,
                              admission_config=config_text, allow_registries=" ".join(registries))
    typer.echo(yaml.safe_dump_all(build_manifests(options), sort_keys=False), nl=False)


def register(root: typer.Typer) -> None:
    """Mount the `admission` group on the root app (ci_gate.cli.COMMANDS)."""
    root.add_typer(app, name="admission")
