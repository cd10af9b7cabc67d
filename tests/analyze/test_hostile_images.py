"""The hostile-image corpus: every input ci-gate once failed on, run through the real CLI.

Each input is built small on disk (tests/support/hostile.py) and analysed by `python -m ci_gate.cli
analyze` in a subprocess: it is either refused with one clear line and exit 2, or analysed with the
packages that are really there. Peak memory is measured apart, by bench/hostile_rss.py.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ci_gate.sources import open_image
from ci_gate.sources.filesystem import walk_image
from ci_gate.sources.interface import SourceOptions
from tests.support import hostile
from tests.support.hostile import CORPUS, Case

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("CI_GATE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=600)


def assert_one_short_error(result: subprocess.CompletedProcess[str], fragment: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("ci-gate: error:"), lines[0][:300]
    assert fragment.lower() in lines[0].lower(), lines[0][:300]
    # Attacker text is quoted short: the line stays readable whatever the image holds.
    assert len(lines[0]) < 500, len(lines[0])
    return lines[0]


def analyze(reference: str, tmp_path: Path, env: dict[str, str] | None = None,
            cache: bool = False) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    out = tmp_path / "analysis.json"
    out.unlink(missing_ok=True)
    result = run_cli("analyze", reference, "-o", "json", "--file", str(out), *([] if cache else ["--no-cache"]),
                     env={"CI_GATE_CACHE_DIR": str(tmp_path / "cache"), **(env or {})})
    return result, (json.loads(out.read_text()) if result.returncode == 0 else None)


def _names(analysis: dict[str, Any], package_type: str) -> set[str]:
    return {package["name"] for package in analysis["packages"] if package["type"] == package_type}


# --- the corpus ------------------------------------------------------------------------------------------

_CHECKS = {
    "package-json-300x4MiB": lambda analysis: (
        {"lodash", "express"} <= _names(analysis, "npm") and len(_names(analysis, "npm")) == 302),
    "npm-lone-surrogate": lambda analysis: (
        {"lodash", "express"} <= _names(analysis, "npm")
        and any(name.startswith("evil") for name in _names(analysis, "npm"))),
    "jar-bombs-10x1GiB": lambda analysis: any(
        "not opened: the archives of this image already inflated" in warning for warning in analysis["warnings"]),
    "file-name-not-utf8": lambda analysis: any(record["path"] == "/etc/caf\ufffd" for record in analysis["files"]),
    "directories-2000-deep": lambda analysis: any(record["path"].endswith("/d/f") for record in analysis["files"]),
    "rpmdb-6x250MB": lambda analysis: analysis["packages"] == [],
}


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.name)
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    reference = case.build(tmp_path)
    result, analysis = analyze(reference, tmp_path, {**case.env, **case.test_env, "TMPDIR": str(tmp_path)})
    if case.exit_code == 2:
        assert_one_short_error(result, case.stderr_has)
        assert not (tmp_path / "analysis.json").exists()
    else:
        assert result.returncode == 0, result.stderr[-2000:]
        assert analysis is not None
        check = _CHECKS.get(case.name)
        assert check is None or check(analysis), (case.name, analysis["warnings"][:5])
    # Nothing left in $TMPDIR (the spool of a compressed archive has no name there).
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("ci-gate-")) == []


# --- integrity: every digest algorithm is verified, and the cache cannot be poisoned ------------------------


def _os_release_layer(identifier: str, setuid_shell: bool, noise: bytes) -> list[bytes]:
    members = [hostile.data_member("etc/os-release", f"ID={identifier}\nVERSION_ID=12\n".encode()),
               hostile.data_member("usr/share/noise.bin", noise)]
    if setuid_shell:
        members.append(hostile.data_member("usr/bin/backdoor", b"#!/bin/sh\nexec sh\n", mode=0o4755))
    return list(hostile.layer(*members))


def test_a_swapped_sha512_layer_is_refused_and_never_cached(tmp_path: Path) -> None:
    noise = random.Random(512).randbytes(64 * 1024)  # incompressible: the real blob is the larger one
    image = hostile.write_image(tmp_path / "oci", [_os_release_layer("debian", False, noise)], algorithm="sha512")
    assert image.layer_digests[0].startswith("sha512:") and image.manifest_digest.startswith("sha512:")
    blob = image.blob(image.layer_digests[0])
    real = blob.read_bytes()
    # The evil layer, padded to the real blob's size with bytes gzip ignores after its last member.
    evil = gzip.compress(b"".join(_os_release_layer("evil", True, b"")), mtime=0)
    assert len(evil) < len(real)
    blob.write_bytes(evil + b"\0" * (len(real) - len(evil)))

    result, _ = analyze(image.reference, tmp_path, cache=True)
    assert_one_short_error(result, "does not match its digest")
    assert not any((tmp_path / "cache").rglob("*.json")), "a refused image must leave no cache entry"

    blob.write_bytes(real)
    result, analysis = analyze(image.reference, tmp_path, cache=True)
    assert result.returncode == 0, result.stderr
    assert analysis is not None and analysis["distro"]["id"] == "debian"
    assert not any("backdoor" in json.dumps(record) for record in analysis["files"])
    result, cached = analyze(image.reference, tmp_path, cache=True)  # from the cache now: the same truth
    assert cached is not None and cached["distro"]["id"] == "debian"


def test_a_sha512_diff_id_that_does_not_match_is_refused(tmp_path: Path) -> None:
    image = hostile.write_image(tmp_path / "oci", [_os_release_layer("debian", False, b"")], algorithm="sha512")
    # Rewrite the config with a wrong sha512 diff_id, and the manifest and index that name it.
    manifest_path = image.blob(image.manifest_digest)
    manifest = json.loads(manifest_path.read_bytes())
    config = json.loads(image.blob(image.config_digest).read_bytes())
    config["rootfs"]["diff_ids"] = ["sha512:" + "ab" * 64]
    config_bytes = json.dumps(config).encode()
    config_digest = hostile.write_blob(image.path / "blobs", "sha512", config_bytes)
    manifest["config"] = {**manifest["config"], "digest": config_digest, "size": len(config_bytes)}
    manifest_bytes = json.dumps(manifest).encode()
    index = json.loads((image.path / "index.json").read_text())
    index["manifests"][0].update(digest=hostile.write_blob(image.path / "blobs", "sha512", manifest_bytes),
                                 size=len(manifest_bytes))
    (image.path / "index.json").write_text(json.dumps(index))
    result, _ = analyze(image.reference, tmp_path)
    assert_one_short_error(result, "does not match the config's diff_id")


def test_a_layer_digest_with_an_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["digest"] = "md5:" + "0" * 32
    image = hostile.write_image(tmp_path / "oci", [_os_release_layer("debian", False, b"")], manifest_edit=edit)
    result, _ = analyze(image.reference, tmp_path)
    assert_one_short_error(result, "is not a valid sha256/sha512 digest")


# --- bounded memory: the evidence budget is one for the whole image ------------------------------------------


def test_the_evidence_budget_stops_an_image_of_many_large_evidence_files(tmp_path: Path) -> None:
    generator = random.Random(7)
    documents = [b'{"name": "p%d", "version": "1", "x": "%s"}' % (index, generator.randbytes(300_000).hex().encode())
                 for index in range(4)]
    members = [hostile.data_member(f"app/node_modules/p{index}/package.json", document)
               for index, document in enumerate(documents)]
    image = hostile.write_image(tmp_path / "oci", [hostile.layer(*members)])
    result, analysis = analyze(image.reference, tmp_path)
    assert result.returncode == 0 and analysis is not None and _names(analysis, "npm") == {"p0", "p1", "p2", "p3"}
    # Hex text compresses to about half: four 600 KB files need ~1.2 MB held, more than a 1 MiB budget.
    result, _ = analyze(image.reference, tmp_path, {"CI_GATE_MAX_EVIDENCE_BYTES": "1M"})
    line = assert_one_short_error(result, "CI_GATE_MAX_EVIDENCE_BYTES")
    assert "/app/node_modules/p" in line


# --- deep trees are walked with loops, not recursion -----------------------------------------------------------


def test_a_deep_tree_is_squashed_and_whited_out_without_recursion(tmp_path: Path) -> None:
    depth = 2000
    first = hostile.layer(*(hostile.directory_member("d/" * level) for level in range(1, depth + 1)),
                          hostile.data_member("d/" * depth + "f", b"deep"))
    second = hostile.layer(hostile.data_member(".wh.d", b""))  # removes the whole tree again
    image = hostile.write_image(tmp_path / "oci", [first, second])
    raw = open_image(image.reference, SourceOptions())
    try:
        assert sys.getrecursionlimit() < depth
        filesystem = walk_image(raw)
    finally:
        raw.close()
    assert not filesystem.exists("/d") and list(filesystem.iter_entries()) == []


# --- no temp file survives SIGTERM or SIGINT -------------------------------------------------------------------


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_cancelled_run_leaves_no_temp_file(signal_number: int, tmp_path: Path) -> None:
    archive = hostile.write_gzipped_docker_archive(tmp_path / "big.tar.gz", 8 * 1024 * hostile.MiB)
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(spool_dir),
                   "CI_GATE_CACHE_DIR": str(tmp_path / "cache")}
    child = subprocess.Popen([sys.executable, "-m", "ci_gate.cli", "analyze", f"docker-archive:{archive}", "-o", "json",
                              "--file", str(tmp_path / "out.json"), "--no-cache"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
                             # A CI shell may start jobs with SIGINT ignored; the child must see the default.
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        spool = _wait_for_spool(child.pid, spool_dir)
        assert spool is not None, "the run never started spooling"
        assert list(spool_dir.iterdir()) == [], "the spool must have no name while it is written"
        child.send_signal(signal_number)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal_number  # 143 for SIGTERM, 130 for SIGINT: killed by it, cleanly
    assert b"Traceback" not in stderr
    assert list(spool_dir.iterdir()) == []
    assert not (tmp_path / "out.json").exists()


def _wait_for_spool(pid: int, spool_dir: Path, timeout: float = 60) -> str | None:
    """What the process's descriptor into `spool_dir` points at, once it has one (the unnamed spool)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for descriptor in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
                if target.startswith(str(spool_dir)):
                    return target
        except OSError:
            pass  # a descriptor closed while we looked
        time.sleep(0.05)
    return None


def test_the_outer_archive_spool_stops_at_the_image_budget(tmp_path: Path) -> None:
    archive = hostile.write_gzipped_docker_archive(tmp_path / "bomb.tar.gz", 256 * hostile.MiB)
    (tmp_path / "tmp").mkdir()
    result, _ = analyze(f"docker-archive:{archive}", tmp_path,
                        {"CI_GATE_MAX_IMAGE_BYTES": "32M", "TMPDIR": str(tmp_path / "tmp")})
    assert_one_short_error(result, "larger than the image size limit (33,554,432 bytes")
    assert list((tmp_path / "tmp").iterdir()) == []
