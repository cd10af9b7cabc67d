"""Fixtures for `ci-gate serve`: a vulnerability store, distinct images in the local registry, a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import DEMO_ADVISORY, ServeProcess, build_variant, build_vuln_db


@pytest.fixture(scope="session")
def serve_vuln_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a Debian openssl advisory and a PyPI `demo` advisory that match the tiny image."""
    return build_vuln_db(tmp_path_factory.mktemp("serve-vulns"))


@pytest.fixture(scope="session")
def demo_vuln_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with only the medium PyPI `demo` advisory: the default policy warns on it, so a clean image
    passes it (the anchore-cli and admission controller tests tell a clean image from a leaky one)."""
    from ci_gate.vulns.importers.osv import import_paths

    tree = tmp_path_factory.mktemp("demo-vulns") / "osv"
    (tree / "PyPI").mkdir(parents=True)
    (tree / "PyPI" / "GHSA-test-demo-0001.json").write_text(json.dumps(DEMO_ADVISORY))
    path = tree.parent / "vulns.sqlite"
    import_paths([tree], path)
    return path


@pytest.fixture(scope="session")
def pushed_images(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> list[tuple[str, str]]:
    """Four distinct tiny images in the registry: (full tag, manifest digest) each."""
    root = tmp_path_factory.mktemp("serve-images")
    images = []
    for index in range(4):
        oci = build_variant(root / f"oci-{index}", index)
        tag = push(oci, registry.host, f"serve/app{index}:v{index}")
        images.append((tag, oci.manifest_digest))
    return images


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, serve_vuln_db: Path) -> Iterator[ServeProcess]:
    """One running server per test module (2 workers, its own data dir)."""
    with ServeProcess(tmp_path_factory.mktemp("serve") / "data", vuln_db=serve_vuln_db) as process:
        yield process


@pytest.fixture
def fresh_server(tmp_path: Path, serve_vuln_db: Path) -> Iterator[ServeProcess]:
    """A server with an empty data dir, for tests that restart or count analyses."""
    process = ServeProcess(tmp_path / "data", vuln_db=serve_vuln_db)
    try:
        yield process
    finally:
        process.stop()
