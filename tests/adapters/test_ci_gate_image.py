"""The ci-gate container image, built from the repository's Dockerfile without a Docker daemon
(tests/adapters/ci_gate_image.py: the Dockerfile's instructions on a debootstrap'ed bookworm, packed
with umoci): its configuration is what the Dockerfile says, the ci-gate it ships gates the example
images as the non-root user, and ci-gate passes its own image with builtin:dod."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ci_gate_image import TAG, BuiltImage, build_image
from ci_tools import require_command
from osv_mirror import OsvMirror

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> BuiltImage:
    if os.geteuid() != 0:
        pytest.skip("building the ci-gate image runs the Dockerfile's RUN steps in a chroot: run as root (CI does)")
    require_command("umoci", "apt-get install umoci")
    require_command("debootstrap", "apt-get install debootstrap")
    return build_image(tmp_path_factory.mktemp("ci-gate-image"))


@pytest.fixture(scope="module")
def vuln_store(tmp_path_factory) -> Path:
    """A store as the adapters make it: `db update` from an OSV mirror (the example Debian advisories)."""
    store = tmp_path_factory.mktemp("store") / "vulns.sqlite"
    with OsvMirror() as mirror:
        subprocess.run([sys.executable, "-m", "ci_gate.cli", "db", "update", "--vuln-db", str(store), "--source",
                        mirror.url], check=True, capture_output=True)
    return store


def image_config(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == TAG
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].removeprefix("sha256:")).read_text())
    assert len(manifest["layers"]) == 2  # base + locked dependencies, then ci-gate itself
    return json.loads((layout / "blobs/sha256" / manifest["config"]["digest"].removeprefix("sha256:")).read_text())


def test_image_is_what_the_dockerfile_says(image):
    config = image_config(image.layout)["config"]
    assert config["User"] == "10001:10001"
    assert config["WorkingDir"] == "/home/ci-gate"
    assert config["Cmd"] == ["ci-gate", "--help"]
    assert config["Healthcheck"] == {"Test": ["CMD", "ci-gate", "--version"]}
    assert "PATH=/opt/ci-gate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    for name, value in config["Labels"].items():
        assert f'{name}="{value}"' in dockerfile
    rootfs = image.rootfs
    venv = rootfs / "opt/ci-gate"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    site = next(venv.glob("lib/python3*/site-packages"))
    assert (site / "ci_gate" / "cli" / "__init__.py").is_file()
    assert not list(site.glob("setuptools*")) and not list(site.glob("pip-*")) and not (site / "pip").exists()
    assert not (rootfs / "tmp/ci-gate").exists() and not (rootfs / "tmp/ci-gate-wheels").exists()
    # no setuid/setgid program, and no setgid directory either (Debian's /var/mail, /var/local)
    setuid = [str(path) for path in rootfs.rglob("*")
              if not path.is_symlink() and path.lstat().st_mode & (stat.S_ISUID | stat.S_ISGID)]
    assert setuid == []
    assert "ci-gate:x:10001:10001:" in (rootfs / "etc/passwd").read_text()


def test_the_images_ci_gate_gates_the_examples_as_its_non_root_user(image, vuln_store, tmp_path):
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    work = image.rootfs / "home/ci-gate/work"
    images = build_images.build(work)
    shutil.copy(vuln_store, work / "vulns.sqlite")
    subprocess.run(["chown", "-R", "10001:10001", str(work)], check=True)
    try:
        results = {}
        for name in ("compliant", "noncompliant"):
            inside = f"/home/ci-gate/work/{images[name].name}"
            completed = subprocess.run(
                ["chroot", "--userspec=10001:10001", str(image.rootfs), "/usr/bin/env", "-i",
                 "PATH=/opt/ci-gate/bin:/usr/bin:/bin", "HOME=/home/ci-gate",
                 "ci-gate", "gate", f"oci-dir:{inside}", "--policy", "builtin:dod",
                 "--vuln-db", "/home/ci-gate/work/vulns.sqlite", "--json", f"/home/ci-gate/work/{name}.json"],
                capture_output=True, text=True, timeout=300)
            results[name] = completed
        assert results["compliant"].returncode == 0, results["compliant"].stdout + results["compliant"].stderr
        assert results["noncompliant"].returncode == 1, results["noncompliant"].stdout + results["noncompliant"].stderr
        assert "CVE-2025-26465" in (work / "noncompliant.json").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_ci_gate_passes_its_own_image_with_builtin_dod(image, vuln_store, tmp_path):
    report = tmp_path / "ci-gate-image.json"
    completed = subprocess.run(
        [sys.executable, "-m", "ci_gate.cli", "gate", f"oci-dir:{image.layout}", "--policy", "builtin:dod",
         "--dockerfile", str(REPOSITORY / "Dockerfile"), "--vuln-db", str(vuln_store), "--json", str(report),
         "--comment", "off"],
        capture_output=True, text=True, timeout=900, cwd=REPOSITORY)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    evaluation = json.loads(report.read_text())
    findings = evaluation["evaluations"][0]["details"]["findings"]
    assert not [finding for finding in findings if finding["action"] == "stop"], findings
    rules = evaluation["ci_gate"]["rules"]
    assert all(rule["fired"] == 0 for rule in rules if rule["trigger"] == "vulnerability_data_unavailable")
