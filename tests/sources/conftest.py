"""Fixtures for the source tests: archives of the tiny image and an unpacked Debian rootfs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cache import cached, key_of
from tests.support.oci import OciImage, to_docker_archive, to_oci_archive


@pytest.fixture(scope="session")
def tiny_docker_archive(tiny_oci: OciImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """skopeo docker-archive of the tiny image, reference `test/tiny:1` (uncompressed layers)."""
    return to_docker_archive(tiny_oci, tmp_path_factory.mktemp("tiny-docker") / "tiny.docker.tar", "test/tiny:1")


@pytest.fixture(scope="session")
def tiny_oci_archive(tiny_oci: OciImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """skopeo oci-archive of the tiny image, tag `tiny`."""
    return to_oci_archive(tiny_oci, tmp_path_factory.mktemp("tiny-oci-archive") / "tiny.oci.tar")


@pytest.fixture(scope="session")
def debian_rootfs_dir(debian_rootfs: Path) -> Path:
    """The Debian rootfs unpacked on disk (for `dir:`), cached like the tar it comes from; read-only."""
    status = debian_rootfs.stat()

    def unpack(target: Path) -> None:
        target.mkdir()
        subprocess.run(["tar", "--numeric-owner", "-xf", str(debian_rootfs), "-C", str(target)], check=True,
                       capture_output=True, timeout=300)

    key = key_of(debian_rootfs.name, status.st_size, status.st_mtime_ns)
    return cached(f"debian-rootfs-dir-{key}", unpack, stale_prefix="debian-rootfs-dir-")
