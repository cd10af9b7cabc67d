"""The Helm chart and `ci-gate admission manifests` name the registries serve may pull from.

serve pulls only from registries it was told about (`--allow-registry`, $CI_GATE_ALLOW_REGISTRIES) or
has credentials for. The chart passed neither, so every serve it started (one replica, or the api and
worker replicas of the fleet) refused every image added over the API and resolved no tag for the
admission webhook, which then denied every pod not on its allowlist. `allowRegistries` reaches every
serve container; checked with serve's own parser and by starting the real serve with the environment
the rendered Deployment gives it, against a real registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from ci_gate.cli import load_command
from tests.support.chart import default_values, render_chart
from tests.support.oci import OciImage, push
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD, ServeProcess

pytest.importorskip("uvicorn", reason="ci-gate serve needs the server extra (pip install '.[server]')")

KUBERNETES_VERSION = kubernetes_validate.latest_version()
SECRETS = {"ci-gate-admin": {"password": PASSWORD}, "ci-gate-postgres": {"url": "postgresql://ci@db:5432/ci"}}


def _values(allow: str, fleet: bool) -> dict[str, Any]:
    values = default_values()
    values["allowRegistries"] = allow
    if fleet:
        values["database"] = {"existingSecret": "ci-gate-postgres", "secretKey": "url"}
    return values


def _serve_containers(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    documents = render_chart(values, "ci-gate")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
            for d in documents if d["kind"] == "Deployment"}


def _environment(container: dict[str, Any]) -> dict[str, str]:
    environment = {}
    for entry in container.get("env", []):
        if "value" in entry:
            environment[entry["name"]] = entry["value"]
        else:
            reference = entry["valueFrom"]["secretKeyRef"]
            environment[entry["name"]] = SECRETS[reference["name"]][reference["key"]]
    return environment


@pytest.mark.parametrize("fleet", [False, True], ids=["one-replica", "fleet"])
def test_every_serve_the_chart_starts_may_pull_from_the_named_registries(fleet: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    containers = _serve_containers(_values("registry.example.com:5000 ghcr.io", fleet))
    assert set(containers) == ({"ci-gate-api", "ci-gate-worker"} if fleet else {"ci-gate"})
    serve = load_command("serve")
    for name, container in containers.items():
        monkeypatch.delenv("CI_GATE_ALLOW_REGISTRIES", raising=False)
        for variable, value in _environment(container).items():
            monkeypatch.setenv(variable, value)
        with serve.make_context("serve", list(container["args"][1:])) as context:
            allowed = list(context.params["allow_registry"] or ())
        assert allowed == ["registry.example.com:5000", "ghcr.io"], f"{name}: serve may pull from {allowed}"


def test_without_registries_the_chart_renders_what_it_did() -> None:
    containers = _serve_containers(_values("", False))
    assert [entry["name"] for entry in containers["ci-gate"]["env"]] == ["CI_GATE_ADMIN_PASSWORD"]


def test_serve_started_as_the_chart_starts_it_accepts_an_image_from_the_named_registry(
        tmp_path: Path, registry: RegistryServer, tiny_oci: OciImage) -> None:
    reference = push(tiny_oci, registry.host, "chart/tiny:1")
    container = _serve_containers(_values(registry.host, False))["ci-gate"]
    server = ServeProcess(tmp_path / "data", workers=0, allow_registries=(), environment=_environment(container))
    with server:
        added = server.add_tag(reference)
    assert added.status_code == 200, added.text


@pytest.mark.parametrize("entry", ["https://registry.example.com", "a b", "registry.example.com/team"])
def test_manifests_refuse_a_registry_that_is_not_a_host(entry: str) -> None:
    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "admission", "manifests", "--allow-registry", entry],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--allow-registry takes HOST[:PORT]" in result.stderr and "Traceback" not in result.stderr


def test_manifests_pass_the_registries_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "admission", "manifests", "--allow-registry",
                             "registry.example.com:5000", "--allow-registry", "[fd00::5]:443"],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    (deployment,) = [d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    monkeypatch.delenv("CI_GATE_ALLOW_REGISTRIES", raising=False)
    for variable, value in _environment(container).items():
        monkeypatch.setenv(variable, value)
    with load_command("serve").make_context("serve", list(container["args"][1:])) as context:
        assert list(context.params["allow_registry"]) == ["registry.example.com:5000", "[fd00::5]:443"]
