"""Assertions shared by the source tests: every layer's stored bytes hash to its digest."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import zstandard

from ci_gate.sources.interface import LayerBlob, RawImage
from tests.support.tools import require_tool


def stored_digest(blob: LayerBlob) -> str:
    """sha256 of the bytes LayerBlob.open() streams."""
    hasher = hashlib.sha256()
    with blob.open() as stream:
        while chunk := stream.read(1024 * 1024):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def uncompressed_digest(blob: LayerBlob) -> str:
    """sha256 of the layer tar after gzip/zstd decompression (what the config's diff_id names)."""
    hasher = hashlib.sha256()
    with blob.open() as raw:
        head = raw.read(4)
    with blob.open() as raw:
        if head.startswith(b"\x1f\x8b"):
            stream = gzip.GzipFile(fileobj=raw)
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = raw
        while chunk := stream.read(1024 * 1024):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def assert_layers_verify(image: RawImage) -> None:
    """Every layer streams bytes matching its digest, and decompresses to its diff_id."""
    assert image.layers, "an image has at least one layer"
    diff_ids = image.config["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(image.layers)
    for blob, diff_id in zip(image.layers, diff_ids, strict=True):
        assert stored_digest(blob) == blob.digest
        assert blob.diff_id == diff_id
        assert uncompressed_digest(blob) == diff_id


def skopeo_digest(reference: str) -> str:
    """`skopeo inspect --format {{.Digest}}` — the manifest digest as the real tool sees it."""
    skopeo = require_tool("skopeo")
    return subprocess.run([skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", reference],
                          capture_output=True, text=True, check=True, timeout=120).stdout.strip()


def copy_layout(source: Path, target: Path) -> Path:
    """A private writable copy of a (shared, read-only) fixture layout."""
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
