"""`ci-gate serve` pulls only from registries it was told about, and its credentials go only to theirs:
the real server process, a real docker-registry with htpasswd, and a caller-named registry on another
loopback port that records every request it gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.sources.servers import RecordingServer
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD, ServeProcess, build_variant


def test_serve_pulls_only_from_its_allowlist(tmp_path: Path, auth_registry: RegistryServer,
                                             serve_vuln_db: Path) -> None:
    assert auth_registry.username and auth_registry.password
    tag = push(build_variant(tmp_path / "oci", 41), auth_registry.host, "allow/app:1", creds=auth_registry.creds)
    environment = {"CI_GATE_REGISTRY_USERNAME": auth_registry.username,
                   "CI_GATE_REGISTRY_PASSWORD": auth_registry.password,
                   "CI_GATE_REGISTRY_HOST": auth_registry.host,
                   "DOCKER_CONFIG": str(tmp_path / "no-docker-config")}
    with RecordingServer("challenge") as attacker, \
            ServeProcess(tmp_path / "data", vuln_db=serve_vuln_db, workers=1, environment=environment,
                         allow_registries=()) as server:
        by_tag = server.add_tag(f"{attacker.host}/allow/app:1")
        digest = "sha256:" + "a" * 64
        by_digest = server.post("/v2/images", json={"source": {"digest": {
            "pull_string": f"{attacker.host}/allow/app@{digest}", "tag": f"{attacker.host}/allow/app:1"}}})
        for refused in (by_tag, by_digest):
            assert refused.status_code == 400
            assert (f"registry {attacker.host} is not on this server's list of registries it may pull from; an "
                    f"administrator can add it with ci-gate serve --allow-registry {attacker.host}") \
                in refused.json()["message"]
        assert attacker.requests == []  # refused before any request: nothing sent, nothing probed
        added = server.add_tag(tag)  # the registry it has credentials for is allowed by default
        assert added.status_code == 200, added.text
        assert server.wait_status(added.json()["image_digest"])["analysis_status"] == "analyzed"
        log = server.full_log()
    assert auth_registry.password not in log + by_tag.text + by_digest.text


def test_serve_refuses_credentials_without_a_registry_host(tmp_path: Path) -> None:
    environment = {**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD, "CI_GATE_REGISTRY_USERNAME": "robot",
                   "CI_GATE_REGISTRY_PASSWORD": "robot-password-1234"}
    environment.pop("CI_GATE_REGISTRY_HOST", None)
    done = subprocess.run([sys.executable, "-m", "ci_gate.cli", "serve", "--port", "1", "--data-dir",
                           str(tmp_path / "data")], capture_output=True, text=True, env=environment, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert done.stderr == ("ci-gate: error: CI_GATE_REGISTRY_USERNAME is set but CI_GATE_REGISTRY_HOST is not: set "
                           "CI_GATE_REGISTRY_HOST to the registry HOST[:PORT] these credentials are for (they are "
                           "sent to no other)\n")
    assert not (tmp_path / "data").exists()
