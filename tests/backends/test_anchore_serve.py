"""`--backend anchore` against the real `ci-gate serve` over HTTP, images in the real local registry.

The full flow (submit → not_analyzed/analyzing → analyzed → check → reports) on the v2 and the v1
API; the same policy and image giving the same final action and trigger ids through
`--backend local` and `--backend anchore`; and a server killed and restarted mid-wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest

from ci_gate.backends.anchore import AnchoreBackend
from ci_gate.backends.interface import AnchoreOptions, BackendRequest, BackendResult
from ci_gate.errors import BackendError
from tests.reports.ci_tools import GITLAB_SCHEMA, MULTITOOL_INSTALL, SARIF_SCHEMA, require_file
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD, ServeProcess, build_variant, build_vuln_db

DOCKERFILE = "FROM scratch\nEXPOSE 22\nUSER root\nCMD [\"/bin/app\"]\n"


@pytest.fixture(scope="module")
def vuln_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vuln_db(tmp_path_factory.mktemp("anchore-serve-vulns"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> list[str]:
    """Three images of our own (digests no other test submits): full tags in the local registry."""
    root = tmp_path_factory.mktemp("anchore-serve-images")
    return [push(build_variant(root / f"oci-{index}", 700 + index), registry.host, f"gate/app{index}:v{index}")
            for index in range(3)]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, vuln_db: Path) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("anchore-serve") / "data", vuln_db=vuln_db) as process:
        yield process


def _environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("ANCHORE", "CI_GATE_", "GITHUB_", "GITLAB", "CI_"))}
    environment.update({"CI": "true", **extra})
    return environment


def _gate(workdir: Path, *arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", *arguments], capture_output=True, text=True,
                          cwd=workdir, env=environment, timeout=300)


def _trigger_ids(document: dict[str, Any]) -> set[str]:
    return {finding["trigger_id"] for finding in document["evaluations"][0]["details"]["findings"]}


def test_cli_flow_and_parity_with_the_local_backend(serve: ServeProcess, images: list[str], vuln_db: Path,
                                                    registry: RegistryServer, tmp_path: Path) -> None:
    tag = images[0]
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    reports = ["--json", "anchore.json", "--junit", "anchore.xml", "--sarif", "anchore.sarif",
               "--markdown", "anchore.md", "--gitlab-report", "anchore-gitlab.json"]
    remote = _gate(tmp_path, f"registry:{tag}", "--backend", "anchore", "--dockerfile", "Dockerfile",
                   "--poll-interval", "0.5", *reports,
                   environment=_environment(ANCHORE_URL=serve.url, ANCHORE_USER="admin", ANCHORE_PASS=PASSWORD))
    assert remote.returncode in (0, 1), remote.stderr
    # One line per state change, ending analysed; the check followed.
    states = [line.split()[3] for line in remote.stderr.splitlines() if line.startswith("ci-gate: anchore: sha256:")]
    assert states[-1] == "analyzed" and len(states) == len(set(states)), remote.stderr
    assert "(v2 API" in remote.stderr
    assert PASSWORD not in remote.stdout + remote.stderr
    for name in ("anchore.xml", "anchore.sarif", "anchore.md", "anchore-gitlab.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    anchore = json.loads((tmp_path / "anchore.json").read_text())
    assert anchore["ci_gate"]["backend"] == "anchore"
    # The reports made from the server's answers are as valid as the local backend's.
    gitlab = json.loads((tmp_path / "anchore-gitlab.json").read_text())
    jsonschema.Draft7Validator(json.loads(GITLAB_SCHEMA.read_text()),
                               format_checker=jsonschema.FormatChecker()).validate(gitlab)
    assert any("CVE-2099-0001" in json.dumps(item) for item in gitlab["vulnerabilities"])
    sarif_schema = json.loads(require_file(SARIF_SCHEMA, MULTITOOL_INSTALL).read_text())
    jsonschema.validate(json.loads((tmp_path / "anchore.sarif").read_text()), sarif_schema)

    local = _gate(tmp_path, f"registry:{tag}", "--backend", "local", "--policy", "builtin:default",
                  "--dockerfile", "Dockerfile", "--vuln-db", str(vuln_db), "--insecure-registry", registry.host,
                  "--no-cache", "--json", "local.json", environment=_environment())
    assert local.returncode in (0, 1), local.stderr
    embedded = json.loads((tmp_path / "local.json").read_text())

    assert remote.returncode == local.returncode
    assert anchore["evaluations"][0]["final_action"] == embedded["evaluations"][0]["final_action"]
    assert _trigger_ids(anchore) == _trigger_ids(embedded)
    assert "vulnerabilities" in {f["gate"] for f in anchore["evaluations"][0]["details"]["findings"]}
    openssl = [f for f in anchore["evaluations"][0]["details"]["findings"] if f["trigger_id"].endswith("+openssl")]
    assert openssl and openssl[0]["vulnerability"]["severity"] == "critical"


def test_v1_api_flow(serve: ServeProcess, images: list[str]) -> None:
    lines: list[str] = []
    backend = AnchoreBackend(environ={}, log=lines.append)
    result = backend.run(BackendRequest(image=f"registry:{images[1]}", anchore=AnchoreOptions(
        url=serve.url + "/v1", username="admin", password=PASSWORD, poll_interval=0.5, timeout=120)))
    assert any("(v1 API" in line for line in lines)
    assert lines[-1].endswith(")") and " analyzed " in lines[-1] + " "
    assert result.evaluation.final_action in ("GO", "WARN", "STOP")
    assert result.evaluation.policy_id == "ci-gate-default"
    assert result.analysis.distro is not None and result.analysis.distro.id == "debian"
    assert {package.name for package in result.analysis.packages} >= {"openssl", "zlib1g"}
    assert any(f.trigger_id.endswith("+openssl") for f in result.evaluation.findings)


def test_wrong_credentials_and_account_against_serve(serve: ServeProcess, images: list[str]) -> None:
    def run(password: str, account: str | None) -> str:
        backend = AnchoreBackend(environ={}, log=lambda line: None)
        with pytest.raises(BackendError) as raised:
            backend.run(BackendRequest(image=f"registry:{images[1]}", anchore=AnchoreOptions(
                url=serve.url, username="admin", password=password, account=account, timeout=30)))
        return str(raised.value)

    wrong = run("not-the-Passw0rd", None)
    assert "HTTP 401" in wrong and "not-the-Passw0rd" not in wrong
    account = run(PASSWORD, "no-such-account")
    assert "HTTP 403" in account and "'no-such-account'" in account and PASSWORD not in account


def test_the_server_restarted_mid_wait(tmp_path: Path, vuln_db: Path, images: list[str]) -> None:
    process = ServeProcess(tmp_path / "data", vuln_db=vuln_db, workers=0)  # queue only: stays not_analyzed
    process.start()
    try:
        outcome: dict[str, Any] = {}
        lines: list[str] = []

        def run() -> None:
            try:
                outcome["result"] = AnchoreBackend(environ={}, log=lines.append).run(BackendRequest(
                    image=f"registry:{images[2]}", anchore=AnchoreOptions(
                        url=process.url, username="admin", password=PASSWORD, poll_interval=0.3, timeout=120)))
            except Exception as error:  # handed to the test thread
                outcome["error"] = error

        client = threading.Thread(target=run)
        client.start()
        deadline = time.monotonic() + 30
        while not any("submitted" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("submitted" in line for line in lines), lines
        process.kill()
        time.sleep(1.0)  # the client meets a refused connection meanwhile
        process.start(workers=2, same_port=True)  # the queue in SQLite resumes, where the client reconnects
        client.join(150)
        assert not client.is_alive()
        assert "error" not in outcome, outcome.get("error")
        result: BackendResult = outcome["result"]
        assert result.evaluation.final_action in ("GO", "WARN", "STOP")
        assert any("analyzed" in line for line in lines)
    finally:
        process.stop()
