"""Real Debian content for tests: a debootstrap bookworm rootfs and a pip/npm application layer.

Both are slow to make (~20 s and ~10 s), so they are built once into the shared test cache
(see `cache.py`) and reused by every later session. The images built from them are cached too,
keyed on their inputs and on the source of our OCI writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import oci
from tests.support.cache import cached, key_of
from tests.support.tools import require_tool

__all__ = [
    "APP_CONFIG",
    "APP_HISTORY",
    "APP_NPM_PACKAGES",
    "APP_PIP_PACKAGES",
    "BASE_CONFIG",
    "DEBIAN_SUITE",
    "DebianImages",
    "build_app_layer",
    "build_debian_images",
    "build_rootfs_tar",
    "debian_mirror",
]

DEBIAN_SUITE = "bookworm"
SOURCES_FILE = Path("/etc/apt/sources.list.d/debian.sources")
PATH_VALUE = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APP_PIP_PACKAGES = ("requests==2.31.0", "urllib3==1.26.5", "PyYAML==5.3.1", "jinja2==2.11.2")
APP_NPM_PACKAGES = ("lodash@4.17.20", "minimist@1.2.5", "express@4.17.1")
APP_PACKAGE_JSON = {"name": "ci-gate-test-app", "version": "1.0.0", "private": True}
BASE_CONFIG = {"Env": [PATH_VALUE], "Cmd": ["/bin/bash"]}
BASE_HISTORY = [{"created": oci.EPOCH, "created_by": f"debootstrap --variant=minbase {DEBIAN_SUITE}"}]
APP_CONFIG = {
    "User": "1000:1000",
    "Env": [PATH_VALUE, "APP_ENV=production"],
    "Cmd": ["node", "/opt/app/server.js"],
    "WorkingDir": "/opt/app",
    "ExposedPorts": {"8080/tcp": {}},
    "Labels": {
        "org.opencontainers.image.base.name": "docker.io/library/debian:bookworm",
        "org.opencontainers.image.title": "ci-gate-test-app",
        "org.opencontainers.image.source": "https://example.invalid/ci-gate/test-app",
    },
}
APP_HISTORY = [
    *BASE_HISTORY,
    {"created": oci.EPOCH,
     "created_by": "/bin/sh -c pip install --no-deps --target /usr/local/lib/python3.11/site-packages "
                   + " ".join(APP_PIP_PACKAGES) + " && npm install " + " ".join(APP_NPM_PACKAGES)},
]


def debian_mirror() -> str:
    """The first `URIs:` of the machine's deb822 sources (never a hard-coded mirror)."""
    if SOURCES_FILE.exists():
        for line in SOURCES_FILE.read_text().splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    raise RuntimeError(f"no `URIs:` line in {SOURCES_FILE}; debootstrap needs a Debian mirror")


def _run(command: list[str], **options: object) -> None:
    """Run a build step; on failure show its output tail (these tools print nothing secret)."""
    require_tool(command[0])  # a missing debootstrap is a skip naming it (a failure in CI), not FileNotFoundError
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            check=False, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(command[:3])} … failed (rc {result.returncode}):\n{tail}")


def _mounts_below(folder: Path) -> list[str]:
    """Mount points inside `folder`, deepest first (debootstrap mounts /proc and /sys in its target)."""
    prefix = str(folder.resolve()) + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((point for point in points if point.startswith(prefix)), key=len, reverse=True)


def _remove_rootfs(folder: Path) -> None:
    """Delete a build tree, but never through a mount that a failed debootstrap left behind."""
    if not folder.exists():
        return
    for point in _mounts_below(folder):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True, stdin=subprocess.DEVNULL)
    left = _mounts_below(folder)
    if left:
        raise RuntimeError(f"refusing to delete {folder}: still mounted inside it: {', '.join(left)}")
    shutil.rmtree(folder, ignore_errors=True)


def _build_rootfs(target: Path) -> None:
    work = target.with_name(target.name + ".rootfs")
    _remove_rootfs(work)
    try:
        _run(["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(work), debian_mirror()])
        # Slim it like a published base image: no downloaded .debs, no apt lists.
        for cache_folder in (work / "var/cache/apt/archives", work / "var/lib/apt/lists"):
            for entry in cache_folder.glob("*"):
                if entry.is_file() or entry.is_symlink():
                    entry.unlink()
        top_level = sorted(entry.name for entry in work.iterdir())
        # Names without a leading "./", numeric owners kept (files owned by e.g. root:shadow).
        _run(["tar", "--numeric-owner", "--sort=name", "--format=pax",
              "--pax-option=delete=atime,delete=ctime", "-C", str(work), "-cf", str(target), *top_level])
    finally:
        _remove_rootfs(work)


def build_rootfs_tar() -> Path:
    """debootstrap --variant=minbase bookworm, slimmed, as a tar (numeric owners), cached."""
    return cached(f"debian-{DEBIAN_SUITE}-minbase-v1.tar", _build_rootfs,
                  stale_prefix=f"debian-{DEBIAN_SUITE}-minbase-")


def _build_app(target: Path) -> None:
    site_packages = target / "usr/local/lib/python3.11/site-packages"
    site_packages.mkdir(parents=True)
    environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(site_packages),
          *APP_PIP_PACKAGES], env=environment)
    application = target / "opt/app"
    application.mkdir(parents=True)
    (application / "package.json").write_text(json.dumps(APP_PACKAGE_JSON, indent=2) + "\n")
    (application / "server.js").write_text(
        "const express = require('express');\nexpress().get('/', (q, r) => r.send('ok')).listen(8080);\n")
    npm_environment = {**os.environ, "npm_config_update_notifier": "false", "npm_config_progress": "false"}
    _run(["npm", "install", "--no-audit", "--no-fund", *APP_NPM_PACKAGES], cwd=application,
         env=npm_environment)
    # Bytecode caches embed build times; a real image build would not ship them either.
    for pycache in sorted(target.rglob("__pycache__"), reverse=True):
        shutil.rmtree(pycache, ignore_errors=True)


def build_app_layer() -> Path:
    """A directory with real pip (--target site-packages) and npm (/opt/app) content, cached."""
    key = key_of(APP_PIP_PACKAGES, APP_NPM_PACKAGES, APP_PACKAGE_JSON, sys.version_info[:2])
    return cached(f"app-layer-{key}", _build_app, stale_prefix="app-layer-")


@dataclass(frozen=True)
class DebianImages:
    """The cached real Debian images and their archives."""

    base: oci.OciImage
    """OCI layout, one layer (the rootfs), tag `bookworm`."""
    app: oci.OciImage
    """OCI layout, rootfs + app layer, tag `app`, with User/Env/Cmd/ExposedPorts/Labels."""
    base_docker_archive: Path
    """docker-archive of `base`, reference `test/debian:bookworm`."""
    app_docker_archive: Path
    """docker-archive of `app`, reference `test/debian:app`."""
    base_oci_archive: Path
    """oci-archive of `base`, tag `bookworm`."""


def _file_identity(path: Path) -> str:
    status = path.stat()
    return f"{path.name}:{status.st_size}:{status.st_mtime_ns}"


def _tree_identity(path: Path) -> str:
    digest = hashlib.sha256()
    for entry in sorted(path.rglob("*")):
        digest.update(f"{entry.relative_to(path)}:{entry.lstat().st_size}\n".encode())
    return digest.hexdigest()


def build_debian_images() -> DebianImages:
    """Build (or reuse) the Debian images; each step is cached on its inputs."""
    rootfs = build_rootfs_tar()
    app_layer = build_app_layer()
    key = key_of(oci.FORMAT_VERSION, _file_identity(rootfs), _tree_identity(app_layer),
                 json.dumps(APP_CONFIG, sort_keys=True), json.dumps(APP_HISTORY, sort_keys=True))

    def build_layouts(target: Path) -> None:
        target.mkdir()
        base = oci.build_oci_layout(target / "oci-base", [rootfs], tag="bookworm", config=BASE_CONFIG,
                                    history=BASE_HISTORY)
        app = oci.build_oci_layout(target / "oci-app", [rootfs, app_layer], tag="app", config=APP_CONFIG,
                                   history=APP_HISTORY)
        oci.to_docker_archive(base, target / "base.docker.tar", "test/debian:bookworm")
        oci.to_docker_archive(app, target / "app.docker.tar", "test/debian:app")
        oci.to_oci_archive(base, target / "base.oci.tar", "bookworm")
        summary = {name: {"manifest_digest": image.manifest_digest, "config_digest": image.config_digest,
                          "layer_digests": image.layer_digests, "diff_ids": image.diff_ids,
                          "layer_media_types": image.layer_media_types}
                   for name, image in (("base", base), ("app", app))}
        (target / "images.json").write_text(json.dumps(summary, indent=2, sort_keys=True))

    folder = cached(f"debian-images-{key}", build_layouts, stale_prefix="debian-images-")
    summary = json.loads((folder / "images.json").read_text())

    def image(name: str, tag: str) -> oci.OciImage:
        facts = summary[name]
        return oci.OciImage(path=folder / f"oci-{name}", tag=tag, manifest_digest=facts["manifest_digest"],
                            config_digest=facts["config_digest"],
                            layer_digests=tuple(facts["layer_digests"]), diff_ids=tuple(facts["diff_ids"]),
                            layer_media_types=tuple(facts["layer_media_types"]))

    return DebianImages(
        base=image("base", "bookworm"),
        app=image("app", "app"),
        base_docker_archive=folder / "base.docker.tar",
        app_docker_archive=folder / "app.docker.tar",
        base_oci_archive=folder / "base.oci.tar",
    )
