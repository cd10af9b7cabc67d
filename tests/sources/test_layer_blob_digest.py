"""A layer whose compressed blob does not match its digest is rejected, even when its content is intact.

Guards the mutation that switches the compressed-blob digest check off: here only the gzip header's
timestamp differs, so the blob keeps its size, decompresses to the very same tar and so to the
config's diff_id; the digest in the manifest is the only thing that can tell.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.errors import SourceError
from tests.sources.checks import copy_layout
from tests.support.oci import OciImage


def _retimestamp_gzip(blob: Path) -> None:
    """Change the gzip member's MTIME field (bytes 4-7): same size, same content, another sha256."""
    data = bytearray(blob.read_bytes())
    assert data[:3] == b"\x1f\x8b\x08", "the layer is not gzip"
    before = hashlib.sha256(data).hexdigest()
    content = gzip.decompress(bytes(data))
    data[4:8] = (int.from_bytes(data[4:8], "little") ^ 0x5A5A5A5A).to_bytes(4, "little")
    assert gzip.decompress(bytes(data)) == content
    assert hashlib.sha256(data).hexdigest() != before
    blob.write_bytes(bytes(data))


@pytest.fixture
def tampered(tiny_oci: OciImage, tmp_path: Path) -> tuple[Path, str]:
    layout = copy_layout(tiny_oci.path, tmp_path / "layout")
    digest = tiny_oci.layer_digests[-1]
    _retimestamp_gzip(layout / "blobs" / "sha256" / digest.split(":")[1])
    return layout, digest


def _assert_rejected(reference: str, digest: str) -> None:
    with pytest.raises(SourceError) as caught:
        analyze_image(reference, AnalyzeOptions(use_cache=False))
    message = str(caught.value)
    assert "\n" not in message
    assert digest[:19] in message and "does not match its digest" in message, message


def test_only_the_blob_digest_wrong_in_an_oci_layout(tampered: tuple[Path, str]) -> None:
    layout, digest = tampered
    _assert_rejected(f"oci-dir:{layout}", digest)


def test_only_the_blob_digest_wrong_in_an_oci_archive(tampered: tuple[Path, str], tmp_path: Path) -> None:
    layout, digest = tampered
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    _assert_rejected(f"oci-archive:{archive}", digest)


def test_the_untampered_copy_analyses(tiny_oci: OciImage, tmp_path: Path) -> None:
    layout = copy_layout(tiny_oci.path, tmp_path / "layout")
    assert analyze_image(f"oci-dir:{layout}", AnalyzeOptions(use_cache=False)).packages
