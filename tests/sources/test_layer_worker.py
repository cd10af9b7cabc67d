"""Layers inflated in a worker process give exactly what the serial path gives, errors included, and
leave no process behind.

The worker (`ci_gate.sources.inflate_worker`, forced with `CI_GATE_INFLATE_WORKER=1`) reads,
hashes and inflates a layer in a forked process and the tar parser reads the result from a pipe. A
byte lost, doubled or reordered between them changes the analysis; an error met in the worker that
never reaches the parser turns a corrupt image into a pass; a worker left running outlives the run.
Each is checked here against the serial path, on the real Debian images and on small ones built to
cross many reads.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.errors import LimitExceededError, SourceError
from ci_gate.model import to_dict
from ci_gate.sources import inflate_worker, layers
from ci_gate.sources.interface import Limits, SourceOptions
from tests.support.debian import DebianImages
from tests.support.oci import OciImage, TarItem, build_oci_layout

ROOT = Path(__file__).resolve().parents[2]


def _environment(worker: bool) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), inflate_worker.WORKER_ENV: "1" if worker else "0"}
    environment.pop("CI_GATE_DEBUG", None)
    return environment


def _analyze_command(reference: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "ci_gate.cli", "analyze", reference, "-o", "json", "--file", str(out), "--no-cache"]


def _analyze_cli(reference: str, out: Path, worker: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_analyze_command(reference, out), capture_output=True, text=True,
                          env=_environment(worker), timeout=600)


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux: /proc/PID/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(found)


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` has ended and been reaped (no zombie left) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("form", ["oci-dir", "docker-archive"])
def test_the_real_debian_image_analyses_byte_for_byte_the_same(
        form: str, debian_images: DebianImages, tmp_path: Path) -> None:
    reference = (f"oci-dir:{debian_images.app.path}" if form == "oci-dir"
                 else f"docker-archive:{debian_images.app_docker_archive}")
    serial = _analyze_cli(reference, tmp_path / "serial.json", worker=False)
    worker = _analyze_cli(reference, tmp_path / "worker.json", worker=True)
    assert serial.returncode == worker.returncode == 0, (serial.stderr, worker.stderr)
    assert (tmp_path / "worker.json").read_bytes() == (tmp_path / "serial.json").read_bytes()
    analysis = json.loads((tmp_path / "worker.json").read_text())
    assert len(analysis["packages"]) > 100 and len(analysis["files"]) > 1000


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


def _analysis_json(reference: str, monkeypatch: pytest.MonkeyPatch, worker: bool) -> str:
    monkeypatch.setenv(inflate_worker.WORKER_ENV, "1" if worker else "0")
    return json.dumps(to_dict(analyze_image(reference, AnalyzeOptions(use_cache=False))), sort_keys=True)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_many_small_reads_change_nothing(
        compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _mixed_image(tmp_path / "oci", compression)
    reference = f"oci-dir:{image.path}"
    serial = _analysis_json(reference, monkeypatch, worker=False)
    # 8 KiB reads from the pipe: hundreds of them, with a tar header split across many.
    monkeypatch.setattr(layers, "_CHUNK", 8192)
    worker = _analysis_json(reference, monkeypatch, worker=True)
    assert worker == serial
    secrets = json.loads(serial)["secrets"]
    assert len(secrets) == 60  # every file seen, whole: one secret per file
    assert [s["path"] for s in secrets if s["deleted"]] == ["/srv/text/07.txt"]  # whited out, still shipped


def _corrupt_copy(image: OciImage, folder: Path, damage: str) -> Path:
    """A copy of `image` whose largest layer blob is damaged in its middle, or zeroed from two thirds on
    (same size: the manifest's size check passes, the worker meets the damage mid-stream)."""
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
    for worker in (False, True):
        done = _analyze_cli(f"oci-dir:{layout}", tmp_path / "out.json", worker=worker)
        assert done.returncode == 2, done.stderr[-2000:]
        lines = [line for line in done.stderr.splitlines()
                 if line.strip() and not line.startswith("ci-gate: reading")]
        assert len(lines) == 1, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "out.json").exists()
        said[worker] = lines[0]
    # The error met in the worker is the one the serial path raises, at the same place.
    assert said[True] == said[False]
    assert said[True].startswith("ci-gate: error: layer 1 (sha256:"), said[True]
    if damage == "zeroed":
        assert "gzip stream ends early" in said[True]


def test_the_byte_budget_stops_a_bomb_in_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("zeros", bytes(8 * 1024 * 1024))]], tag="bomb")
    monkeypatch.setenv(inflate_worker.WORKER_ENV, "1")
    options = AnalyzeOptions(use_cache=False, source=SourceOptions(limits=Limits(max_image_bytes=1024 * 1024)))
    before = _children(os.getpid())  # the session's servers, started by other tests
    with pytest.raises(LimitExceededError, match="decompression bomb"):
        analyze_image(f"oci-dir:{image.path}", options)
    assert _children(os.getpid()) == before  # the worker ended with the walk, and was reaped


def test_a_corrupt_layer_in_process_leaves_no_worker(debian_images: DebianImages, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    layout = _corrupt_copy(debian_images.app, tmp_path, "flipped")
    monkeypatch.setenv(inflate_worker.WORKER_ENV, "1")
    before = _children(os.getpid())
    with pytest.raises(SourceError, match=r"^layer 1 \(sha256:"):
        analyze_image(f"oci-dir:{layout}", AnalyzeOptions(use_cache=False))
    assert _children(os.getpid()) == before


def test_sigterm_mid_layer_leaves_no_worker(debian_images: DebianImages, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    process = subprocess.Popen(_analyze_command(f"oci-dir:{debian_images.app.path}", out),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(True))
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while not workers and process.poll() is None and time.monotonic() < deadline:
        workers = _children(process.pid)
        time.sleep(0.005)
    assert workers, "no worker process was seen while the layer was read"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == "ci-gate: interrupted"
    assert all(_gone(pid) for pid in workers)
    assert not out.exists()


def test_a_reader_that_stops_early_ends_the_worker(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("big.bin", random.Random(1).randbytes(4_000_000))]])
    blob = image_blob(image)
    before = _children(os.getpid())
    stream, reader = layers.open_layer(blob, 0, worker=True)
    assert reader.read(1000)
    (worker,) = set(_children(os.getpid())) - set(before)  # blocked on a full pipe
    stream.close_raw()  # it must still end, and be reaped
    assert _gone(worker) and _children(os.getpid()) == before


def image_blob(image: OciImage) -> layers.LayerBlob:
    from ci_gate.sources import open_image

    raw = open_image(f"oci-dir:{image.path}", SourceOptions())
    return raw.layers[0]


def test_a_wrong_diff_id_is_caught_on_the_worker_path(tmp_path: Path) -> None:
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a.txt", b"hello\n" * 50_000)]])
    blob = image_blob(image)
    honest = gzip.decompress(Path(image.path, "blobs", *blob.digest.split(":")).read_bytes())
    assert blob.diff_id
    lying = copy.copy(blob)
    lying.diff_id = "sha256:" + "0" * 64
    stream, reader = layers.open_layer(lying, 0, worker=True)
    assert reader.read() == honest
    with pytest.raises(SourceError, match="diff_id"):
        stream.finish()
    stream.close_raw()


def test_when_a_worker_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(inflate_worker.WORKER_ENV, "0")
    assert not inflate_worker.worker_wanted(own_file_handle=True)
    monkeypatch.setenv(inflate_worker.WORKER_ENV, "1")
    assert inflate_worker.worker_wanted(own_file_handle=True)
    # A blob read through a shared connection (a registry's HTTP stream) stays in the parent, always.
    assert not inflate_worker.worker_wanted(own_file_handle=False)
    for default in ("auto", ""):  # one process: measured as fast or faster on both bench images
        monkeypatch.setenv(inflate_worker.WORKER_ENV, default)
        assert not inflate_worker.worker_wanted(own_file_handle=True)
    # Layers of local images are read through a handle of their own.
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a.txt", b"a")]])
    assert image_blob(image).own_file_handle


def test_a_mistyped_worker_setting_is_refused_in_one_line(tmp_path: Path) -> None:
    """`CI_GATE_INFLATE_WORKER=ture` must not silently mean auto: exit 2 naming the variable and its values."""
    image = build_oci_layout(tmp_path / "oci", [[TarItem("a.txt", b"a" * 100)]])
    environment = {**_environment(worker=False), inflate_worker.WORKER_ENV: "ture"}
    result = subprocess.run(_analyze_command(f"oci-dir:{image.path}", tmp_path / "out.json"), capture_output=True,
                            text=True, env=environment, timeout=600)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and inflate_worker.WORKER_ENV in lines[0] and "auto" in lines[0], lines
    assert "Traceback" not in result.stderr and not (tmp_path / "out.json").exists()
