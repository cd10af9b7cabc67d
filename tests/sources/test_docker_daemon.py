"""docker: against a stand-in for the Docker Engine API on a unix socket, serving skopeo's docker-archive."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_gate.errors import SourceError
from ci_gate.sources import open_image
from ci_gate.sources.interface import SourceOptions
from tests.sources.checks import assert_layers_verify, stored_digest
from tests.sources.servers import DockerDaemon
from tests.support.oci import OciImage


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short folder for sockets (unix socket paths are limited to ~107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="cg-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $TMPDIR (tempfile's choice) at an empty folder to watch the spool file."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_image_from_the_daemon_is_spooled_privately_and_removed(
        short_dir: Path, spool: Path, tiny_oci: OciImage, tiny_docker_archive: Path) -> None:
    socket_path = short_dir / "docker.sock"
    with DockerDaemon(socket_path, tiny_docker_archive, {"test/tiny:1"}) as daemon:
        image = open_image("docker:test/tiny:1", SourceOptions(docker_host=f"unix://{socket_path}"))
        assert daemon.requests == ["/_ping", "/images/test/tiny:1/get"]
    assert image.scheme == "docker"
    assert image.config_digest == tiny_oci.config_digest
    assert image.repo_tags == ["docker.io/test/tiny:1"]
    # The spool has no name in $TMPDIR (a killed run leaves nothing): it is read through its descriptor.
    assert list(spool.iterdir()) == []
    spooled = os.stat(image.layers[0].path)  # type: ignore[attr-defined]
    assert stat.S_IMODE(spooled.st_mode) == 0o600 and spooled.st_nlink == 0
    assert_layers_verify(image)  # the daemon is gone: layers read from the private spool file
    image.close()
    assert list(spool.iterdir()) == []


def test_docker_host_from_the_environment_and_bare_references(
        short_dir: Path, spool: Path, tiny_oci: OciImage, tiny_docker_archive: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    socket_path = short_dir / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    with DockerDaemon(socket_path, tiny_docker_archive, {"test/tiny:1"}):
        image = open_image("test/tiny:1", SourceOptions())  # no scheme: the daemon is tried first
        assert image.scheme == "docker"
        assert image.config_digest == tiny_oci.config_digest
        image.close()


def test_an_image_the_daemon_does_not_have(short_dir: Path, tiny_docker_archive: Path) -> None:
    socket_path = short_dir / "docker.sock"
    with DockerDaemon(socket_path, tiny_docker_archive, {"test/tiny:1"}), \
            pytest.raises(SourceError) as caught:
        open_image("docker:nope:1", SourceOptions(docker_host=f"unix://{socket_path}"))
    assert str(caught.value) == ("docker:nope:1: the Docker daemon has no image 'nope:1' (No such image: nope:1); "
                                 "pull or build it first, or check the name")


def test_no_daemon_socket(tmp_path: Path) -> None:
    missing = tmp_path / "docker.sock"
    with pytest.raises(SourceError) as caught:
        open_image("docker:app:1", SourceOptions(docker_host=f"unix://{missing}"))
    assert str(caught.value) == (f"docker:app:1: no Docker daemon socket at {missing}; start Docker, set "
                                 "DOCKER_HOST, or use docker-archive:, oci-dir: or registry: instead")


def test_a_socket_nobody_listens_on(short_dir: Path) -> None:
    import socket

    path = short_dir / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the file stays, nothing accepts
    with pytest.raises(SourceError, match=f"nothing listens on {path}; start the Docker daemon"):
        open_image("docker:app:1", SourceOptions(docker_host=f"unix://{path}"))


def test_a_tcp_docker_host_is_refused_with_a_fix() -> None:
    with pytest.raises(SourceError, match="talks to the daemon over its unix socket only"):
        open_image("docker:app:1", SourceOptions(docker_host="tcp://127.0.0.1:2375"))


@pytest.mark.slow
def test_debian_from_the_daemon(short_dir: Path, spool: Path, debian_oci: OciImage,
                                debian_docker_archive: Path) -> None:
    socket_path = short_dir / "docker.sock"
    with DockerDaemon(socket_path, debian_docker_archive, {"test/debian:bookworm"}):
        image = open_image("docker:test/debian:bookworm", SourceOptions(docker_host=f"unix://{socket_path}"))
    assert image.config_digest == debian_oci.config_digest
    for layer, diff_id in zip(image.layers, debian_oci.diff_ids, strict=True):
        assert stored_digest(layer) == layer.digest == diff_id
    image.close()
    assert list(spool.iterdir()) == []
