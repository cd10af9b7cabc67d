"""Registry credentials go only to the registry they are for: a real docker-registry (htpasswd) on
127.0.0.1, and someone else's server on another loopback port that records every Authorization it
receives (a registry fishing for credentials, a foreign token realm, blob storage behind a redirect)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_gate.errors import SourceError, UsageError
from ci_gate.sources import open_image
from ci_gate.sources.interface import SourceOptions
from ci_gate.sources.registry_auth import (
    host_allowed,
    normalize_host,
    registry_allowlist,
    resolve_credentials,
    same_operator,
)
from tests.sources.checks import assert_layers_verify
from tests.sources.servers import RecordingServer, TokenRegistry
from tests.support.oci import OciImage, push
from tests.support.registry import RegistryServer

AMBIENT = ("CI_GATE_REGISTRY_USERNAME", "CI_GATE_REGISTRY_PASSWORD", "CI_GATE_REGISTRY_HOST", "REGISTRY_AUTH_FILE",
           "CI_REGISTRY", "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", "CI_JOB_TOKEN", "CI_SERVER_HOST",
           "CI_GATE_ALLOW_REGISTRIES")


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture(scope="module")
def private_image(auth_registry: RegistryServer, tiny_oci: OciImage) -> str:
    return push(tiny_oci, auth_registry.host, "cred/tiny:1", creds=auth_registry.creds)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _cli(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in AMBIENT}
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *arguments], capture_output=True, text=True,
                          env={**environment, **env}, timeout=120, check=False)


# --- which hosts are one registry --------------------------------------------------------------------


@pytest.mark.parametrize("registry, other, same", [
    ("127.0.0.1:5000", "127.0.0.1:5000", True),
    ("127.0.0.1:5000", "127.0.0.1:5001", False),   # another port of loopback may be anyone's
    ("localhost:5000", "localhost:6000", False),
    ("[::1]:5000", "[::1]:5001", False),
    ("docker.io", "auth.docker.io", True),          # Docker Hub's token service
    ("registry.gitlab.com", "gitlab.com", True),    # GitLab.com's
    ("gitlab.example.com:5050", "gitlab.example.com", True),
    ("registry.example.com", "registry.example.com.evil.io", False),
    ("registry.example.com", "evil-example.com", False),
    ("ghcr.io", "pkg-containers.githubusercontent.com", False),
    ("registry.example.com", "gitlab.example.com", False),  # a sibling: only as CI_SERVER_HOST
])
def test_which_hosts_run_the_same_registry(registry: str, other: str, same: bool) -> None:
    assert same_operator(registry, other) is same


def test_host_normalisation_and_the_allowlist() -> None:
    assert normalize_host("https://Registry-1.Docker.IO/v2/") == "docker.io"
    assert normalize_host("https://user@ghcr.io:443/x") == "ghcr.io:443"
    assert host_allowed("127.0.0.1:5000", ("127.0.0.1",))           # HOST: every port
    assert not host_allowed("127.0.0.1:5001", ("127.0.0.1:5000",))  # HOST:PORT: that port
    assert host_allowed("auth.docker.io", ("docker.io",))
    assert host_allowed("anything.example:1", ("*",))
    assert not host_allowed("10.0.0.1", ("127.0.0.1",))


# --- credentials are bound to a registry -------------------------------------------------------------


def test_option_credentials_go_only_to_their_registry(auth_registry: RegistryServer, private_image: str) -> None:
    assert auth_registry.username and auth_registry.password
    with RecordingServer("challenge") as attacker:
        options = SourceOptions(registry_username=auth_registry.username, registry_password=auth_registry.password,
                                registry_host=auth_registry.host)
        with pytest.raises(SourceError) as caught:
            open_image(f"registry:{attacker.host}/cred/tiny:1", options)
        assert attacker.requests, "the attacker's registry was asked"
        assert [auth for _, _, auth in attacker.requests] == [None] * len(attacker.requests)
        assert auth_registry.password not in str(caught.value)
        image = open_image(f"registry:{private_image}", options)
        assert_layers_verify(image)
        image.close()


def test_credentials_without_a_host_go_nowhere(auth_registry: RegistryServer, private_image: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_registry.username and auth_registry.password
    monkeypatch.setenv("CI_GATE_REGISTRY_USERNAME", auth_registry.username)
    monkeypatch.setenv("CI_GATE_REGISTRY_PASSWORD", auth_registry.password)
    assert resolve_credentials(auth_registry.host, SourceOptions()) is None
    with pytest.raises(SourceError) as caught:
        open_image(f"registry:{private_image}", SourceOptions())
    assert str(caught.value).endswith("; CI_GATE_REGISTRY_USERNAME/CI_GATE_REGISTRY_PASSWORD are sent to no registry "
                                      f"until CI_GATE_REGISTRY_HOST names the one they are for (e.g. "
                                      f"CI_GATE_REGISTRY_HOST={auth_registry.host})")
    monkeypatch.setenv("CI_GATE_REGISTRY_HOST", "127.0.0.1:1")
    assert resolve_credentials(auth_registry.host, SourceOptions()) is None
    monkeypatch.setenv("CI_GATE_REGISTRY_HOST", auth_registry.host)
    found = resolve_credentials(auth_registry.host, SourceOptions())
    assert found is not None and found.origin == "CI_GATE_REGISTRY_USERNAME"


def test_the_cli_binds_environment_credentials_to_the_image_registry(auth_registry: RegistryServer,
                                                                      private_image: str) -> None:
    assert auth_registry.username and auth_registry.password
    env = {"CI_GATE_REGISTRY_USERNAME": auth_registry.username, "CI_GATE_REGISTRY_PASSWORD": auth_registry.password,
           "DOCKER_CONFIG": "/nonexistent/ci-gate-test"}
    done = _cli("analyze", f"registry:{private_image}", "-o", "json", "--no-cache", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["identity"]["manifest_digest"].startswith("sha256:")
    with RecordingServer("challenge") as attacker:
        # Bound explicitly to the real registry: an image named on another registry gets nothing.
        done = _cli("analyze", f"registry:{attacker.host}/cred/tiny:1", "--no-cache",
                    env={**env, "CI_GATE_REGISTRY_HOST": auth_registry.host})
        assert done.returncode == 2
        assert attacker.requests and all(auth is None for _, _, auth in attacker.requests)
        assert auth_registry.password not in done.stderr + done.stdout


def test_gitlab_predefined_registry_variables(tmp_path: Path, tiny_oci: OciImage,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    job_token = "glcbt-64_" + "j" * 20
    with RegistryServer(tmp_path / "gitlab-registry", "gitlab-ci-token", job_token) as gitlab_registry:
        image = push(tiny_oci, gitlab_registry.host, "group/project:1", creds=gitlab_registry.creds)
        monkeypatch.setenv("CI_REGISTRY", gitlab_registry.host)
        monkeypatch.setenv("CI_JOB_TOKEN", job_token)
        found = resolve_credentials(gitlab_registry.host, SourceOptions())
        assert found is not None and (found.username, found.origin) == ("gitlab-ci-token", "CI_JOB_TOKEN")
        open_image(f"registry:{image}", SourceOptions()).close()
        # CI_REGISTRY_USER/PASSWORD win over the job token when both are there.
        monkeypatch.setenv("CI_REGISTRY_USER", "gitlab-ci-token")
        monkeypatch.setenv("CI_REGISTRY_PASSWORD", job_token)
        found = resolve_credentials(gitlab_registry.host, SourceOptions())
        assert found is not None and found.origin == "CI_REGISTRY_USER"
        open_image(f"registry:{image}", SourceOptions()).close()
        # Another registry gets none of them.
        assert resolve_credentials("127.0.0.1:1", SourceOptions()) is None
        # Explicit credentials come first.
        options = SourceOptions(registry_username="u", registry_password="p", registry_host=gitlab_registry.host)
        found = resolve_credentials(gitlab_registry.host, options)
        assert found is not None and found.username == "u"


# --- token realms and redirects ------------------------------------------------------------------------


def test_a_bearer_realm_on_another_port_gets_no_credentials(tiny_oci: OciImage) -> None:
    password = "realm-secret-" + "r" * 12
    with RecordingServer("challenge") as realm, \
            TokenRegistry(tiny_oci.path, "test/tiny", "robot", password, realm=f"{realm.url}/token") as server:
        options = SourceOptions(registry_username="robot", registry_password=password, registry_host=server.host)
        with pytest.raises(SourceError) as caught:
            open_image(f"registry:{server.host}/test/tiny:tiny", options)
        assert str(caught.value) == (f"registry {server.host} sends its token requests to {realm.host}, another "
                                     f"host; ci-gate does not send the credentials for {server.host} there (a token "
                                     "service must be on the registry's own host, a parent or a subdomain of it)")
        assert realm.requests == []
        # The registry's own realm still works with the same options.
        server.realm = None
        open_image(f"registry:{server.host}/test/tiny:tiny", options).close()


def test_a_redirect_to_blob_storage_carries_no_authorization(tiny_oci: OciImage) -> None:
    with RecordingServer("blobs", tiny_oci.path) as storage, \
            TokenRegistry(tiny_oci.path, "test/tiny", "robot", "pw", blob_redirect=storage.url) as server:
        options = SourceOptions(registry_username="robot", registry_password="pw", registry_host=server.host)
        image = open_image(f"registry:{server.host}/test/tiny:tiny", options)
        assert_layers_verify(image)  # every layer came from the storage, digest-checked
        image.close()
        assert storage.requests and all(auth is None for _, _, auth in storage.requests)
        assert any(auth == f"Bearer {server.token}" for _, path, auth in server.requests if "/blobs/" in path)
        # Under an allowlist (ci-gate serve) a redirect may not leave it.
        allowed = SourceOptions(registry_username="robot", registry_password="pw", registry_host=server.host,
                                allowed_registries=(server.host,))
        before = len(storage.requests)
        with pytest.raises(SourceError) as caught:
            open_image(f"registry:{server.host}/test/tiny:tiny", allowed)
        assert str(caught.value) == (f"registry {server.host} redirected a download to {storage.host}, which is "
                                     "not on this server's list of registries it may pull from; an administrator "
                                     f"can add it with ci-gate serve --allow-registry {storage.host}")
        assert len(storage.requests) == before


def test_a_redirect_loop_is_named_as_one(tiny_oci: OciImage) -> None:
    with RecordingServer("loop") as loop, \
            TokenRegistry(tiny_oci.path, "test/tiny", "u", "p", blob_redirect=loop.url) as server:
        options = SourceOptions(registry_username="u", registry_password="p", registry_host=server.host)
        with pytest.raises(SourceError) as caught:
            open_image(f"registry:{server.host}/test/tiny:tiny", options)
        assert "redirected too often (a redirect loop)" in str(caught.value)
        assert all(auth is None for _, _, auth in loop.requests)


def test_the_allowlist_refuses_before_any_request(tiny_oci: OciImage) -> None:
    with RecordingServer("challenge") as attacker:
        options = SourceOptions(allowed_registries=("127.0.0.1:1",))
        with pytest.raises(SourceError, match="is not on this server's list of registries it may pull from"):
            open_image(f"registry:{attacker.host}/x/y:1", options)
        assert attacker.requests == []


def test_the_serve_allowlist_defaults_to_the_credentialed_registries(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_REGISTRY_USERNAME", "robot")
    with pytest.raises(UsageError, match="CI_GATE_REGISTRY_HOST is not"):
        registry_allowlist(SourceOptions())
    monkeypatch.setenv("CI_GATE_REGISTRY_HOST", "Registry.Example.com:5000")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"https://ghcr.io": {"auth": "eDp5"}}, "credHelpers": {"quay.io": "x"}}))
    monkeypatch.setenv("CI_REGISTRY", "gitlab.example.com:5050")
    allowed = registry_allowlist(SourceOptions(docker_config=str(config)), ["127.0.0.1:6000"])
    assert allowed == ("registry.example.com:5000", "ghcr.io", "quay.io", "gitlab.example.com:5050",
                       "127.0.0.1:6000")
