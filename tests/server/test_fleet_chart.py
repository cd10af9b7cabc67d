"""The Helm chart's many-replicas deployment (docs/serve.md, "Many replicas"): with an external
PostgreSQL named by a Secret, separate api and worker Deployments; valid against the Kubernetes
schemas (kubernetes-validate, strict) and started with arguments the real `ci-gate serve` and
`ci-gate db update` accept. helm is not packaged in Debian: tests/support/chart.py renders it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest

from ci_gate.cli import load_command
from tests.support.chart import default_values, render_chart

KUBERNETES_VERSION = kubernetes_validate.latest_version()


def fleet_values(api: int = 3, worker: int = 4) -> dict[str, Any]:
    values = default_values()
    values["database"] = {"existingSecret": "ci-gate-postgres", "secretKey": "database-url"}
    values["fleet"].update(apiReplicas=api, workerReplicas=worker, workersPerReplica="3")
    return values


def by_name(documents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def parse(command: click.Command, arguments: list[str], environment: dict[str, str],
          monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The options the real command would run with (parsed by its own click parser, env vars included)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with command.make_context(command.name or "", list(arguments)) as context:
        return dict(context.params)


def container_environment(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's environment, each secretKeyRef resolved from `secrets` (name -> key -> value)."""
    environment = {}
    for entry in container.get("env", []):
        if "value" in entry:
            environment[entry["name"]] = entry["value"]
            continue
        reference = entry["valueFrom"]["secretKeyRef"]
        environment[entry["name"]] = secrets[reference["name"]][reference["key"]]
    return environment


def test_default_values_render_the_one_sqlite_replica_only() -> None:
    objects = by_name(render_chart(default_values(), "ci-gate"))
    assert ("Deployment", "ci-gate") in objects
    assert not {name for kind, name in objects if kind == "Deployment"} - {"ci-gate"}


@pytest.mark.parametrize(("api", "worker"), [(3, 4), (1, 1)])
def test_fleet_values_render_api_and_worker_deployments_on_the_database(
        api: int, worker: int, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = render_chart(fleet_values(api, worker), "security")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    objects = by_name(documents)
    deployments = {name: d for (kind, name), d in objects.items() if kind == "Deployment"}
    assert set(deployments) == {"ci-gate-api", "ci-gate-worker"}  # no SQLite replica beside them
    assert deployments["ci-gate-api"]["spec"]["replicas"] == api
    assert deployments["ci-gate-worker"]["spec"]["replicas"] == worker

    service = objects[("Service", "ci-gate")]
    webhook = objects[("ValidatingWebhookConfiguration", "ci-gate-admission")]["webhooks"][0]
    assert webhook["clientConfig"]["service"]["name"] == "ci-gate"
    selected = {name for name, d in deployments.items()
                if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()}
    assert selected == {"ci-gate-api"}, "the Service (and the admission webhook) must reach the API replicas only"

    database_url = "postgresql://ci_gate:s3cret@db.example:5432/ci_gate"
    secrets = {"ci-gate-admin": {"password": "admin-password"}, "ci-gate-postgres": {"database-url": database_url}}
    serve = load_command("serve")
    update = load_command("db").commands["update"]  # type: ignore[attr-defined]
    roles = {}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        arguments = container["args"]
        assert database_url not in " ".join(arguments), "the URL (with its password) comes from the Secret only"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert arguments[0] == "serve"
        options = parse(serve, arguments[1:], container_environment(container, secrets), monkeypatch)
        assert options["database"] == database_url, f"{name}: serve does not read the database URL from the env"
        roles[name] = str(options["role"])
        # The vulnerability store stays per pod: an init container fills the file serve reads.
        (init,) = pod["initContainers"]
        assert init["args"][:2] == ["db", "update"]
        fetched = parse(update, init["args"][2:], {}, monkeypatch)
        assert str(fetched["vuln_db"]) == str(options["vuln_db"])
        data_mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
        directory = str(Path(options["vuln_db"]).parent)
        assert data_mounts[directory] == init_mounts[directory]
        port = container["readinessProbe"]["httpGet"]["port"]
        assert port in [p["name"] for p in container["ports"]]
        assert options["port"] == next(p["containerPort"] for p in container["ports"] if p["name"] == port)
    assert roles == {"ci-gate-api": "api", "ci-gate-worker": "worker"}
    (worker_container,) = deployments["ci-gate-worker"]["spec"]["template"]["spec"]["containers"]
    worker_options = parse(serve, worker_container["args"][1:], container_environment(worker_container, secrets),
                           monkeypatch)
    assert worker_options["workers"] == 3
