"""Session fixtures: real registries, real Debian images, the tiny image and syft.

The logic lives in `tests/support/` so benchmarks reuse it; this file only wires fixtures.
Heavy artefacts are cached across runs in `$CI_GATE_TEST_CACHE` (default
~/.cache/ci-gate-tests) and shared read-only: never modify a fixture's files in a test, copy
them to `tmp_path` first.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

# `tests.support` must import whether pytest is run as `pytest` or `python -m pytest`.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from tests.support.debian import DebianImages, build_app_layer, build_debian_images, build_rootfs_tar  # noqa: E402
from tests.support.oci import OciImage  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.syft import run_syft_json  # noqa: E402
from tests.support.tiny import build_tiny_image  # noqa: E402
from tests.support.tools import MissingTool  # noqa: E402


def _skips_fail() -> bool:
    """Under CI every tool is installed (.ci/run), so a skip would only hide a gap in coverage."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return in_ci and os.environ.get("CI_GATE_ALLOW_SKIPS", "") != "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A missing tool is a one-line skip naming it and how to get it; with CI=true, a skipped test is
    reported as failed (set CI_GATE_ALLOW_SKIPS=1 to allow)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(MissingTool):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    if report.skipped and not hasattr(report, "wasxfail") and _skips_fail():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every tool must be present: {reason}"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous docker-registry on 127.0.0.1 (plain HTTP); use `.host`, `.url`."""
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A docker-registry with htpasswd basic auth; `.host`, `.username`, `.password`, `.auth_file`."""
    # Never starting with "-": anchore-cli takes the password as an argument and would read it as an option.
    server = RegistryServer(tmp_path_factory.mktemp("auth-registry"), username="ciuser",
                            password="p" + secrets.token_urlsafe(12))
    with server:
        yield server


@pytest.fixture(scope="session")
def debian_rootfs() -> Path:
    """A tar of debootstrap --variant=minbase bookworm (slimmed, numeric owners), cached."""
    return build_rootfs_tar()


@pytest.fixture(scope="session")
def debian_app_layer() -> Path:
    """A directory with real pip content (/usr/local/lib/python3.11/site-packages) and npm (/opt/app)."""
    return build_app_layer()


@pytest.fixture(scope="session")
def debian_images(debian_rootfs: Path, debian_app_layer: Path) -> DebianImages:
    """All the cached real Debian images and archives in one object."""
    return build_debian_images()


@pytest.fixture(scope="session")
def debian_oci(debian_images: DebianImages) -> OciImage:
    """OCI layout of the Debian rootfs: 1 gzip layer, tag `bookworm` (88 deb packages)."""
    return debian_images.base


@pytest.fixture(scope="session")
def debian_app_oci(debian_images: DebianImages) -> OciImage:
    """OCI layout rootfs + app layer, tag `app`: 88 deb, 53 npm, 4 python; User 1000:1000, port 8080."""
    return debian_images.app


@pytest.fixture(scope="session")
def debian_docker_archive(debian_images: DebianImages) -> Path:
    """docker-archive of `debian_oci`, reference `test/debian:bookworm`."""
    return debian_images.base_docker_archive


@pytest.fixture(scope="session")
def debian_app_docker_archive(debian_images: DebianImages) -> Path:
    """docker-archive of `debian_app_oci`, reference `test/debian:app`."""
    return debian_images.app_docker_archive


@pytest.fixture(scope="session")
def debian_oci_archive(debian_images: DebianImages) -> Path:
    """oci-archive of `debian_oci`, tag `bookworm`."""
    return debian_images.base_oci_archive


@pytest.fixture(scope="session")
def tiny_oci(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """The tiny synthetic image (tag `tiny`): os-release, 2 deb packages, 1 python dist-info."""
    return build_tiny_image(tmp_path_factory.mktemp("tiny") / "oci")


@pytest.fixture(scope="session")
def syft_json() -> Callable[..., dict[str, Any]]:
    """`syft_json(ref, env=None) -> dict`: the real syft's JSON for a syft-style reference."""
    return run_syft_json


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the session (tests/support/postgres.py); a test takes
    a fresh database with `postgres.create_database()` and may `restart()` the server."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    if not postgres.running:  # a test that stopped it and failed before starting it again
        postgres.start()
    return postgres.create_database()


@pytest.fixture
def receivers() -> Iterator[list[Any]]:
    """The notification receivers a test starts (tests.notify.receivers.start_receiver), stopped after it."""
    started: list[Any] = []
    yield started
    for receiver in started:
        receiver.stop()
