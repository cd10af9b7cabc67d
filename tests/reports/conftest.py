"""Fixtures shared by the report tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example images and their vulnerability store, built once by examples/build_images.py as a
    user would (the README quick start uses the same)."""
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    out = tmp_path_factory.mktemp("example-images")
    built: dict[str, Path] = build_images.build(out)
    built["vuln-db"] = build_images.build_vuln_db(out)
    return built
