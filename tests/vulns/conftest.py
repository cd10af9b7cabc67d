"""Fixtures for the vulnerability tests: the OSV fixture tree, a store built from it, images."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ci_gate.model import Analysis, Distro, ImageIdentity, Location, Package
from ci_gate.vulns.importers.osv import import_paths

OSV = Path(__file__).parent / "data" / "osv"
VALID_FOLDERS = ("Debian", "Alpine", "Ubuntu", "Red Hat", "Rocky Linux", "PyPI", "npm", "Maven", "Go", "RubyGems",
                 "Unknown")


def zip_folder(folder: Path, target: Path) -> Path:
    """An OSV-style all.zip: one <ID>.json member per record, at the archive root."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.glob("*.json")):
            archive.write(file, file.name)
    return target


@pytest.fixture
def osv_tree(tmp_path: Path) -> Path:
    """A copy of the fixture tree without the invalid documents."""
    target = tmp_path / "osv"
    for name in VALID_FOLDERS:
        shutil.copytree(OSV / name, target / name)
    return target


@pytest.fixture
def store_path(tmp_path: Path, osv_tree: Path) -> Path:
    path = tmp_path / "store" / "vulns.sqlite"
    import_paths([osv_tree], path)
    return path


def package(name: str, version: str, type_: str, purl: str = "", layer: int = 0, path: str = "",
            **metadata: Any) -> Package:
    return Package(name=name, version=version, type=type_, purl=purl, metadata=metadata,
                   locations=(Location(path or f"/lib/{name}", layer),), origin="base" if layer == 0 else "app")


def image(packages: Sequence[Package], distro: Distro | None = None) -> Analysis:
    identity = ImageIdentity(reference="oci-dir:test", scheme="oci-dir", manifest_digest="sha256:" + "0" * 64,
                             config_digest="sha256:" + "1" * 64)
    return Analysis(identity=identity, distro=distro, packages=tuple(packages))
