"""A whiteout hides lower layers only, never a file of its own layer (OCI image spec, layer.md:
"Files that are present in the same layer as a whiteout file can only be hidden by whiteout files
in subsequent layers"), whatever the order of the two entries in the tar."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.sources.filesystem import walk_image
from ci_gate.sources.interface import Limits, SourceOptions
from ci_gate.sources.oci_dir import OciDirSource
from tests.support.oci import TarItem, build_oci_layout


def _squash(tmp_path: Path, layers: list[list[TarItem]]):  # type: ignore[no-untyped-def]
    image = build_oci_layout(tmp_path / "oci", layers)
    return walk_image(OciDirSource().open(str(image.path), SourceOptions(limits=Limits())))


LOWER = [TarItem("app/", kind="dir"), TarItem("app/secret.env", b"lower"), TarItem("app/keep", b"k")]


@pytest.mark.parametrize("whiteout_first", [True, False])
def test_a_file_next_to_its_own_whiteout_stays(tmp_path: Path, whiteout_first: bool) -> None:
    pair = [TarItem("app/.wh.secret.env"), TarItem("app/secret.env", b"upper")]
    fs = _squash(tmp_path, [LOWER, pair if whiteout_first else pair[::-1]])
    assert fs.exists("/app/secret.env")
    assert fs.read("/app/secret.env") == b"upper"  # the lower one is hidden, this layer's one is not
    assert fs.layer_of("/app/secret.env") == 1
    assert fs.exists("/app/keep")


def test_a_whiteout_alone_hides_the_lower_file(tmp_path: Path) -> None:
    fs = _squash(tmp_path, [LOWER, [TarItem("app/.wh.secret.env")]])
    assert not fs.exists("/app/secret.env") and fs.exists("/app/keep")


@pytest.mark.parametrize("whiteout_first", [True, False])
def test_a_directory_whiteout_keeps_the_same_layers_new_children(tmp_path: Path, whiteout_first: bool) -> None:
    pair = [TarItem(".wh.app"), TarItem("app/", kind="dir"), TarItem("app/new", b"new")]
    fs = _squash(tmp_path, [LOWER, pair if whiteout_first else pair[1:] + pair[:1]])
    assert fs.read("/app/new") == b"new"
    assert not fs.exists("/app/secret.env") and not fs.exists("/app/keep")


@pytest.mark.parametrize("opaque_first", [True, False])
def test_an_opaque_directory_keeps_its_own_layers_entries_in_any_order(tmp_path: Path, opaque_first: bool) -> None:
    pair = [TarItem("app/.wh..wh..opq"), TarItem("app/new", b"new")]
    fs = _squash(tmp_path, [LOWER, pair if opaque_first else pair[::-1]])
    assert fs.read("/app/new") == b"new"
    assert not fs.exists("/app/secret.env") and not fs.exists("/app/keep")
