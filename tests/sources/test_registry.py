"""registry: against a real docker-registry on 127.0.0.1 (anonymous and htpasswd), and a bearer-token
stand-in that follows Docker's token authentication spec."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from ci_gate.errors import SourceError
from ci_gate.sources import open_image
from ci_gate.sources.interface import SourceOptions
from ci_gate.sources.registry import RegistryClient, is_loopback, parse_reference, uses_plain_http
from tests.sources.checks import assert_layers_verify, skopeo_digest
from tests.sources.servers import TokenRegistry, refused_port, silent_port
from tests.support.oci import OciImage, OciImageIndex, TarItem, build_image_index, push
from tests.support.registry import RegistryServer

NO_DAEMON = "unix:///nonexistent/ci-gate-test/docker.sock"


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the credentials they set up themselves."""
    for name in ("CI_GATE_REGISTRY_USERNAME", "CI_GATE_REGISTRY_PASSWORD", "CI_GATE_REGISTRY_HOST",
                 "REGISTRY_AUTH_FILE", "CI_REGISTRY", "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", "CI_JOB_TOKEN",
                 "CI_SERVER_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture(scope="module")
def tiny_pushed(registry: RegistryServer, tiny_oci: OciImage) -> str:
    return push(tiny_oci, registry.host, "test/tiny:1")


@pytest.fixture(scope="module")
def tiny_pushed_auth(auth_registry: RegistryServer, tiny_oci: OciImage) -> str:
    return push(tiny_oci, auth_registry.host, "test/tiny:1", creds=auth_registry.creds)


@pytest.fixture(scope="module")
def multi_index(tmp_path_factory: pytest.TempPathFactory) -> OciImageIndex:
    return build_image_index(tmp_path_factory.mktemp("multi") / "oci",
                             {"linux/amd64": [[TarItem("etc/arch", b"amd64\n")]],
                              "linux/arm64": [[TarItem("etc/arch", b"arm64\n")]]}, tag="multi")


# --- references and transport choice --------------------------------------------------------------------


@pytest.mark.parametrize("text, host, repository, tag, digest", [
    ("debian", "docker.io", "library/debian", "latest", None),
    ("debian:bookworm", "docker.io", "library/debian", "bookworm", None),
    ("docker.io/org/app:1", "docker.io", "org/app", "1", None),
    ("index.docker.io/library/alpine:3", "docker.io", "library/alpine", "3", None),
    ("127.0.0.1:5000/test/app:v1", "127.0.0.1:5000", "test/app", "v1", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("ghcr.io/o/a@sha256:" + "a" * 64, "ghcr.io", "o/a", None, "sha256:" + "a" * 64),
])
def test_references_are_normalised_like_docker(text: str, host: str, repository: str, tag: str | None,
                                               digest: str | None) -> None:
    reference = parse_reference(text)
    assert (reference.host, reference.repository, reference.tag, reference.digest) == (host, repository, tag, digest)
    assert reference.api_host == ("registry-1.docker.io" if host == "docker.io" else host)


@pytest.mark.parametrize("text, expected", [
    ("Test/App", "is not a valid repository name"),
    ("ghcr.io/o/a@sha256:xyz", "is not a valid sha256/sha512 digest"),
    ("ghcr.io/o/a:bad tag", "is not a valid tag"),
])
def test_invalid_references(text: str, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        parse_reference(text)


def test_plain_http_only_for_loopback_or_named_insecure_registries() -> None:
    for host in ("127.0.0.1:5000", "127.3.4.5", "localhost:5000", "[::1]:5000", "::1"):
        assert is_loopback(host), host
    for host in ("10.0.0.1:5000", "registry.example.com", "localhost.example.com:5000", "[::2]:80"):
        assert not is_loopback(host), host
    options = SourceOptions(insecure_registries=("registry.lan:5000",))
    assert uses_plain_http("registry.lan:5000", options)
    assert not uses_plain_http("registry.lan:5001", options)
    assert RegistryClient(parse_reference("registry.example.com/a"), SourceOptions()).base == \
        "https://registry.example.com"
    assert RegistryClient(parse_reference("registry.lan:5000/a"), options).base == "http://registry.lan:5000"
    assert RegistryClient(parse_reference("debian"), SourceOptions()).base == "https://registry-1.docker.io"


# --- anonymous pulls from the real registry ---------------------------------------------------------------


def test_anonymous_pull_by_tag_and_by_digest(registry: RegistryServer, tiny_oci: OciImage, tiny_pushed: str) -> None:
    image = open_image(f"registry:{tiny_pushed}", SourceOptions())
    assert image.scheme == "registry"
    assert image.manifest_digest == tiny_oci.manifest_digest == skopeo_digest(f"docker://{tiny_pushed}")
    assert image.config_digest == tiny_oci.config_digest
    assert image.repo_tags == [f"{registry.host}/test/tiny:1"]
    assert image.repo_digests == [f"{registry.host}/test/tiny@{tiny_oci.manifest_digest}"]
    assert_layers_verify(image)
    image.close()
    by_digest = open_image(f"registry:{registry.host}/test/tiny@{tiny_oci.manifest_digest}", SourceOptions())
    assert by_digest.config_digest == tiny_oci.config_digest and by_digest.repo_tags == []
    by_digest.close()


def test_a_bare_reference_falls_back_to_the_registry_without_a_daemon(tiny_pushed: str, tiny_oci: OciImage) -> None:
    image = open_image(tiny_pushed, SourceOptions(docker_host=NO_DAEMON))
    assert image.scheme == "registry"
    assert image.manifest_digest == tiny_oci.manifest_digest
    image.close()


def test_platform_selection_from_a_pushed_index(registry: RegistryServer, multi_index: OciImageIndex) -> None:
    reference = push(multi_index, registry.host, "test/multi:1")
    host_default = "linux/arm64" if os.uname().machine in ("aarch64", "arm64") else "linux/amd64"
    default = open_image(f"registry:{reference}", SourceOptions())
    assert default.manifest_digest == multi_index.images[host_default].manifest_digest
    assert default.repo_digests == [f"{registry.host}/test/multi@{multi_index.index_digest}"]
    arm = open_image(f"registry:{reference}", SourceOptions(platform="linux/arm64"))
    assert arm.manifest_digest == multi_index.images["linux/arm64"].manifest_digest
    assert arm.config["architecture"] == "arm64"
    assert_layers_verify(arm)
    with pytest.raises(SourceError, match="no manifest for platform windows/amd64; the index offers"):
        open_image(f"registry:{reference}", SourceOptions(platform="windows/amd64"))
    for image in (default, arm):
        image.close()


def test_image_not_found(registry: RegistryServer, tiny_pushed: str) -> None:
    with pytest.raises(SourceError) as caught:
        open_image(f"registry:{registry.host}/test/tiny:nope", SourceOptions())
    assert str(caught.value) == (f"image not found: {registry.host}/test/tiny:nope (404 MANIFEST_UNKNOWN); "
                                 "check the name and tag")
    with pytest.raises(SourceError, match=r"image not found: .*/test/absent:1 \(404 [A-Z_]+\)"):
        open_image(f"registry:{registry.host}/test/absent:1", SourceOptions())


def test_a_registry_that_never_answers_times_out() -> None:
    with silent_port() as port, pytest.raises(SourceError) as caught:
        open_image(f"registry:127.0.0.1:{port}/test/tiny:1", SourceOptions(timeout=0.3))
    assert str(caught.value) == (f"registry 127.0.0.1:{port} did not answer within 0.3s; check the address and "
                                 "the network, or raise --timeout")


def test_a_registry_that_is_not_there() -> None:
    with refused_port() as port, pytest.raises(
            SourceError, match=rf"could not connect to registry 127.0.0.1:{port} \(connection refused\)"):
        open_image(f"registry:127.0.0.1:{port}/test/tiny:1", SourceOptions(timeout=2))


@pytest.mark.slow
def test_debian_from_the_registry(registry: RegistryServer, debian_oci: OciImage) -> None:
    reference = push(debian_oci, registry.host, "test/debian:bookworm")
    image = open_image(f"registry:{reference}", SourceOptions())
    assert image.manifest_digest == debian_oci.manifest_digest == skopeo_digest(f"docker://{reference}")
    assert [layer.digest for layer in image.layers] == list(debian_oci.layer_digests)
    assert_layers_verify(image)
    image.close()


# --- HTTP basic auth against the real registry, credentials from every place ---------------------------------


def test_credentials_from_options(auth_registry: RegistryServer, tiny_oci: OciImage, tiny_pushed_auth: str) -> None:
    options = SourceOptions(registry_username=auth_registry.username, registry_password=auth_registry.password,
                            registry_host=auth_registry.host)
    image = open_image(f"registry:{tiny_pushed_auth}", options)
    assert image.manifest_digest == tiny_oci.manifest_digest
    assert_layers_verify(image)
    image.close()


def _reads_the_image(reference: str, options: SourceOptions, expected: OciImage) -> None:
    """The pull worked: the manifest is the pushed one and every layer verifies (not just "no exception")."""
    image = open_image(f"registry:{reference}", options)
    try:
        assert image.manifest_digest == expected.manifest_digest
        assert [layer.digest for layer in image.layers] == list(expected.layer_digests)
        assert_layers_verify(image)
    finally:
        image.close()


def _refused_without_credentials(reference: str) -> None:
    """The control: with no credential source at all the same pull is refused, so the source above was used."""
    with pytest.raises(SourceError, match="requires credentials"):
        open_image(f"registry:{reference}", SourceOptions()).close()


def test_credentials_from_environment(auth_registry: RegistryServer, tiny_oci: OciImage, tiny_pushed_auth: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _refused_without_credentials(tiny_pushed_auth)
    monkeypatch.setenv("CI_GATE_REGISTRY_USERNAME", str(auth_registry.username))
    monkeypatch.setenv("CI_GATE_REGISTRY_PASSWORD", str(auth_registry.password))
    monkeypatch.setenv("CI_GATE_REGISTRY_HOST", auth_registry.host)
    _reads_the_image(tiny_pushed_auth, SourceOptions(), tiny_oci)


def test_credentials_from_registry_auth_file(auth_registry: RegistryServer, tiny_oci: OciImage, tiny_pushed_auth: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_registry.auth_file is not None
    _refused_without_credentials(tiny_pushed_auth)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_registry.auth_file))
    _reads_the_image(tiny_pushed_auth, SourceOptions(), tiny_oci)


def test_credentials_from_docker_config_auths(auth_registry: RegistryServer, tiny_oci: OciImage, tiny_pushed_auth: str,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _refused_without_credentials(tiny_pushed_auth)
    encoded = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"https://{auth_registry.host}": {"auth": encoded}}}))
    _reads_the_image(tiny_pushed_auth, SourceOptions(docker_config=str(config)), tiny_oci)
    # $DOCKER_CONFIG/config.json, with username/password fields instead of `auth`.
    folder = tmp_path / "docker"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {
        "username": auth_registry.username, "password": auth_registry.password}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    _reads_the_image(tiny_pushed_auth, SourceOptions(), tiny_oci)


def _helper(folder: Path, name: str, username: str, secret: str) -> Path:
    """A docker-credential-NAME that answers per Docker's helper protocol and records its stdin."""
    folder.mkdir(exist_ok=True)
    script = folder / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\n'
        f"read server\n"
        f'echo "$server" > "{folder}/asked-{name}"\n'
        f"printf '%s' '{json.dumps({'ServerURL': 'x', 'Username': username, 'Secret': secret})}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_credentials_from_a_credential_helper(auth_registry: RegistryServer, tiny_oci: OciImage, tiny_pushed_auth: str,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_folder = tmp_path / "bin"
    _helper(bin_folder, "citest", str(auth_registry.username), str(auth_registry.password))
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {auth_registry.host: "citest"}}))
    _reads_the_image(tiny_pushed_auth, SourceOptions(docker_config=str(config)), tiny_oci)
    assert (bin_folder / "asked-citest").read_text().strip() == auth_registry.host
    # credsStore is the fallback for every registry.
    config.write_text(json.dumps({"credsStore": "citest"}))
    (bin_folder / "asked-citest").unlink()
    _reads_the_image(tiny_pushed_auth, SourceOptions(docker_config=str(config)), tiny_oci)
    assert (bin_folder / "asked-citest").read_text().strip() == auth_registry.host


def test_a_credential_helper_that_is_not_installed(auth_registry: RegistryServer, tiny_pushed_auth: str,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {auth_registry.host: "nothere"}}))
    with pytest.raises(SourceError) as caught:
        open_image(f"registry:{tiny_pushed_auth}", SourceOptions(docker_config=str(config)))
    message = str(caught.value)
    assert f"names the credential helper docker-credential-nothere for {auth_registry.host}" in message
    assert "not on PATH; install it" in message


def test_wrong_credentials_are_rejected_without_echoing_the_password(auth_registry: RegistryServer,
                                                                    tiny_pushed_auth: str) -> None:
    wrong = "not-the-password-" + "x" * 8
    with pytest.raises(SourceError) as caught:
        open_image(f"registry:{tiny_pushed_auth}",
                   SourceOptions(registry_username=auth_registry.username, registry_password=wrong,
                                 registry_host=auth_registry.host))
    message = str(caught.value)
    assert message == (f"registry {auth_registry.host} rejected the credentials for test/tiny (401): check the "
                       "username and password from --registry-username")
    assert wrong not in message and wrong not in repr(caught.value)


def test_no_credentials_for_a_private_registry(auth_registry: RegistryServer, tiny_pushed_auth: str) -> None:
    with pytest.raises(SourceError) as caught:
        open_image(f"registry:{tiny_pushed_auth}", SourceOptions())
    assert str(caught.value) == (
        f"registry {auth_registry.host} requires credentials for test/tiny (401); run docker login "
        f"{auth_registry.host}, or set CI_GATE_REGISTRY_USERNAME and CI_GATE_REGISTRY_PASSWORD")


# --- bearer tokens (Docker token authentication), against the spec stand-in ---------------------------------


def test_bearer_token_flow(tiny_oci: OciImage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TokenRegistry(tiny_oci.path, "test/tiny", "robot", "s3cret-pass") as server:
        options = SourceOptions(registry_username="robot", registry_password="s3cret-pass", registry_host=server.host)
        image = open_image(f"registry:{server.host}/test/tiny:tiny", options)
        assert image.manifest_digest == tiny_oci.manifest_digest
        assert_layers_verify(image)
        image.close()
        assert server.token_requests, "a token was asked for"
        assert all(query["service"] == ["fake-registry"] and query["scope"] == ["repository:test/tiny:pull"]
                   for query in server.token_requests)
        content = [(path, auth) for method, path, auth in server.requests if path.startswith("/v2/test/")]
        # The ping's challenge was answered before any content request: all of them carry the token.
        assert content and all(auth == f"Bearer {server.token}" for _, auth in content)
        assert any("/blobs/" in path for path, _ in content)
    assert server.token not in caplog.text and "s3cret-pass" not in caplog.text


def test_bearer_token_in_access_token_field(tiny_oci: OciImage) -> None:
    with TokenRegistry(tiny_oci.path, "test/tiny", "robot", "pw", token_field="access_token") as server:
        image = open_image(f"registry:{server.host}/test/tiny:tiny",
                           SourceOptions(registry_username="robot", registry_password="pw", registry_host=server.host))
        assert image.config_digest == tiny_oci.config_digest
        image.close()


def test_bearer_token_with_wrong_credentials(tiny_oci: OciImage) -> None:
    with TokenRegistry(tiny_oci.path, "test/tiny", "robot", "right") as server, \
            pytest.raises(SourceError) as caught:
        open_image(f"registry:{server.host}/test/tiny:tiny",
                   SourceOptions(registry_username="robot", registry_password="wrong-one",
                                 registry_host=server.host))
    assert str(caught.value) == (f"registry {server.host} rejected the credentials for test/tiny (401): check "
                                 "the username and password from --registry-username")


def test_a_manifest_that_does_not_match_docker_content_digest(tiny_oci: OciImage) -> None:
    with TokenRegistry(tiny_oci.path, "test/tiny", "u", "p", corrupt_digest_header=True) as server, \
            pytest.raises(SourceError, match="does not match its Docker-Content-Digest sha256:0000"):
        open_image(f"registry:{server.host}/test/tiny:tiny", SourceOptions(registry_username="u",
                                                                            registry_password="p",
                                                                            registry_host=server.host))


def test_503_with_retry_after_is_retried(tiny_oci: OciImage) -> None:
    with TokenRegistry(tiny_oci.path, "test/tiny", "u", "p", fail_first=2) as server:
        image = open_image(f"registry:{server.host}/test/tiny:tiny",
                           SourceOptions(registry_username="u", registry_password="p", registry_host=server.host))
        assert image.manifest_digest == tiny_oci.manifest_digest
        image.close()
        assert [path for _, path, _ in server.requests[:3]] == ["/v2/", "/v2/", "/v2/"]


def test_identity_token_from_docker_config_uses_the_oauth2_refresh_grant(tiny_oci: OciImage, tmp_path: Path) -> None:
    with TokenRegistry(tiny_oci.path, "test/tiny", "unused", "unused") as server:
        server.refresh_token = "refresh-" + "r" * 20
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"auths": {server.host: {"identitytoken": server.refresh_token}}}))
        image = open_image(f"registry:{server.host}/test/tiny:tiny", SourceOptions(docker_config=str(config)))
        assert image.manifest_digest == tiny_oci.manifest_digest
        image.close()
        [form, *_] = server.token_requests
        assert form["grant_type"] == ["refresh_token"] and form["service"] == ["fake-registry"]
        assert form["scope"] == ["repository:test/tiny:pull"]
        assert ("POST", "/token", None) in server.requests


def test_a_missing_ca_bundle_is_named() -> None:
    with pytest.raises(SourceError) as caught:
        open_image("registry:registry.example.com/app:1", SourceOptions(ca_bundle="/nonexistent/ca.pem"))
    assert str(caught.value) == ("CA bundle /nonexistent/ca.pem does not exist; pass an existing PEM file to "
                                 "--ca-bundle")


def test_a_bare_reference_that_resolves_nowhere_says_so() -> None:
    with refused_port() as port, pytest.raises(SourceError) as caught:
        open_image(f"127.0.0.1:{port}/app:1", SourceOptions(docker_host=NO_DAEMON, timeout=2))
    assert str(caught.value).endswith(f"(no file or directory named '127.0.0.1:{port}/app:1' exists either)")
    assert str(caught.value).startswith(f"could not connect to registry 127.0.0.1:{port}")
