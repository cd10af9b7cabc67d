"""Layers inflated by the read-ahead thread give exactly what the serial path gives, errors included.

The read-ahead path (`CI_GATE_READ_AHEAD=1`) hands inflated blocks from a helper thread to the tar
parser. A block lost, doubled or reordered at a hand-over changes the analysis; an error raised in
the helper that never reaches the reader turns a corrupt image into a pass. Both are checked here
against the serial path, on the real Debian images and on small ones built to cross many hand-overs.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.errors import LimitExceededError, SourceError
from ci_gate.model import to_dict
from ci_gate.sources import layers
from ci_gate.sources.interface import Limits, SourceOptions
from tests.support.debian import DebianImages
from tests.support.oci import OciImage, TarItem, build_oci_layout

ROOT = Path(__file__).resolve().parents[2]


def _analyze_cli(reference: str, out: Path, read_ahead: bool) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "CI_GATE_READ_AHEAD": "1" if read_ahead else "0"}
    environment.pop("CI_GATE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "analyze", reference, "-o", "json", "--file",
                           str(out), "--no-cache"], capture_output=True, text=True, env=environment, timeout=600)


@pytest.mark.parametrize("form", ["oci-dir", "docker-archive"])
def test_the_real_debian_image_analyses_byte_for_byte_the_same(
        form: str, debian_images: DebianImages, tmp_path: Path) -> None:
    reference = (f"oci-dir:{debian_images.app.path}" if form == "oci-dir"
                 else f"docker-archive:{debian_images.app_docker_archive}")
    serial = _analyze_cli(reference, tmp_path / "serial.json", read_ahead=False)
    ahead = _analyze_cli(reference, tmp_path / "ahead.json", read_ahead=True)
    assert serial.returncode == ahead.returncode == 0, (serial.stderr, ahead.stderr)
    assert (tmp_path / "ahead.json").read_bytes() == (tmp_path / "serial.json").read_bytes()
    assert len(json.loads((tmp_path / "ahead.json").read_text())["packages"]) > 100


def _mixed_image(folder: Path, compression: str) -> OciImage:
    """Three layers with incompressible and text files, a whiteout, and secrets past many block edges."""
    rng = random.Random(18)
    first = [TarItem("etc/", kind="dir", mode=0o755),
             TarItem("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
             TarItem("srv/noise.bin", rng.randbytes(300_000))]
    for number in range(60):
        body = "\n".join(f"line {line} of file {number}" for line in range(400))
        first.append(TarItem(f"srv/text/{number:02}.txt",
                             f"{body}\naws_secret_access_key = {rng.randbytes(20).hex()}\n".encode()))
    second = [TarItem("srv/text/.wh.07.txt"), TarItem("srv/more.bin", rng.randbytes(200_000)),
              TarItem("usr/lib/python3/dist-packages/demo-1.0.dist-info/METADATA",
                      b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")]
    third = [TarItem("srv/text/07.txt", b"back again\n")]
    return build_oci_layout(folder, [first, second, third], tag="mixed", compression=compression)


def _analysis_json(reference: str, monkeypatch: pytest.MonkeyPatch, read_ahead: bool) -> str:
    monkeypatch.setattr(layers, "READ_AHEAD", read_ahead)
    return json.dumps(to_dict(analyze_image(reference, AnalyzeOptions(use_cache=False))), sort_keys=True)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_many_small_hand_overs_change_nothing(
        compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _mixed_image(tmp_path / "oci", compression)
    reference = f"oci-dir:{image.path}"
    serial = _analysis_json(reference, monkeypatch, read_ahead=False)
    # 8 KiB blocks: hundreds of hand-overs, with a tar header split across most of them.
    monkeypatch.setattr(layers, "_AHEAD_BLOCK", 8192)
    monkeypatch.setattr(layers, "_AHEAD_DEPTH", 1)
    ahead = _analysis_json(reference, monkeypatch, read_ahead=True)
    assert ahead == serial
    secrets = json.loads(serial)["secrets"]
    assert len(secrets) == 60  # every file seen, whole: one secret per file
    assert [s["path"] for s in secrets if s["deleted"]] == ["/srv/text/07.txt"]  # whited out, still shipped


def _corrupt_copy(image: OciImage, folder: Path, damage: str) -> Path:
    """A copy of `image` whose largest layer blob is damaged in its middle, or zeroed from two thirds on
    (same size: the manifest's size check passes, the helper thread meets the damage mid-stream)."""
    copy = folder / "oci"
    shutil.copytree(image.path, copy)
    blob = max((copy / "blobs" / "sha256").iterdir(), key=lambda path: path.stat().st_size)
    data = bytearray(blob.read_bytes())
    if damage == "flipped":
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(byte ^ 0x5A for byte in data[middle:middle + 64])
    else:
        start = len(data) * 2 // 3
        data[start:] = bytes(len(data) - start)
    blob.write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize("damage", ["flipped", "zeroed"])
def test_a_corrupt_layer_still_fails_with_exit_2_and_one_line(
        damage: str, debian_images: DebianImages, tmp_path: Path) -> None:
    layout = _corrupt_copy(debian_images.app, tmp_path, damage)
    said = {}
    for read_ahead in (False, True):
        done = _analyze_cli(f"oci-dir:{layout}", tmp_path / "out.json", read_ahead=read_ahead)
        assert done.returncode == 2, done.stderr[-2000:]
        lines = [line for line in done.stderr.splitlines()
                 if line.strip() and not line.startswith("ci-gate: reading")]
        assert len(lines) == 1, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "out.json").exists()
        said[read_ahead] = lines[0]
    # The error raised in the helper thread is the one the serial path raises, at the same place.
    assert said[True] == said[False]
    assert said[True].startswith("ci-gate: error: layer 1 (sha256:"), said[True]
    if damage == "zeroed":
        assert "gzip stream ends early" in said[True]


def test_the_byte_budget_stops_a_bomb_in_the_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("zeros", bytes(8 * 1024 * 1024))]], tag="bomb")
    monkeypatch.setattr(layers, "READ_AHEAD", True)
    monkeypatch.setattr(layers, "_AHEAD_BLOCK", 65536)
    options = AnalyzeOptions(use_cache=False, source=SourceOptions(limits=Limits(max_image_bytes=1024 * 1024)))
    before = threading.active_count()
    with pytest.raises(LimitExceededError, match="decompression bomb"):
        analyze_image(f"oci-dir:{image.path}", options)
    assert threading.active_count() == before  # the helper ended with the walk


def test_a_reader_that_stops_early_ends_the_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("big.bin", random.Random(1).randbytes(4_000_000))]])
    monkeypatch.setattr(layers, "_AHEAD_BLOCK", 65536)
    blob = image_blob(image)
    before = threading.active_count()
    stream, reader = layers.open_layer(blob, 0, read_ahead=True)
    assert reader.read(1000)
    stream.close_raw()  # the helper is blocked on a full queue: it must still end
    assert threading.active_count() == before


def image_blob(image: OciImage) -> layers.LayerBlob:
    from ci_gate.sources import open_image

    raw = open_image(f"oci-dir:{image.path}", SourceOptions())
    return raw.layers[0]


def test_a_wrong_diff_id_is_caught_on_the_read_ahead_path(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a.txt", b"hello\n" * 50_000)]])
    blob = image_blob(image)
    honest = gzip.decompress(Path(image.path, "blobs", *blob.digest.split(":")).read_bytes())
    assert blob.diff_id
    lying = copy.copy(blob)
    lying.diff_id = "sha256:" + "0" * 64
    stream, reader = layers.open_layer(lying, 0, read_ahead=True)
    assert reader.read() == honest
    with pytest.raises(SourceError, match="diff_id"):
        stream.finish()
    stream.close_raw()
