"""Build the ci-gate container image from the repository's Dockerfile without a Docker daemon.

The Dockerfile's own instructions are run, in order, the way `docker build` runs them:
- `FROM debian:bookworm-slim@…` is the debootstrap --variant=minbase bookworm root filesystem that the
  tests already cache (tests/support/debian.py); Debian's official slim images are made the same way;
- `RUN` runs `/bin/sh -c` in a chroot of the root filesystem, as root, with the ENV set so far (and,
  like `docker build --build-arg`, pip pointed at the locked wheel folder and apt at the machine's
  Debian mirror: the sandbox has no index);
- `COPY` copies from the repository (the build context); `ENV`, `USER`, `WORKDIR`, `HEALTHCHECK`,
  `LABEL` and `CMD` become the image configuration (umoci config).
Any other instruction is refused, so the Dockerfile cannot drift from what this builder understands.

The layers follow the Dockerfile's cache boundary: everything up to the dependency install (the
layer that changes only with the locks) is built once and cached in $CI_GATE_TEST_CACHE as an OCI
layout; ci-gate's own layer is added on top with `umoci repack` on each build (a few seconds).
Needs root (chroot), umoci and the Debian mirror for the one-time base build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from install_support import LOCKS, REPOSITORY, locked_wheelhouse

from ci_gate.analyze.dockerfile import parse_dockerfile
from ci_gate.model import DockerfileInstruction
from tests.support.cache import cached, key_of
from tests.support.debian import build_rootfs_tar

DOCKERFILE = REPOSITORY / "Dockerfile"
TAG = "0.1.0"
WHEELS_IN_ROOTFS = "/tmp/ci-gate-wheels"
CONFIG_INSTRUCTIONS = {"ENV", "USER", "WORKDIR", "HEALTHCHECK", "LABEL", "CMD"}


@dataclass(frozen=True)
class BuiltImage:
    layout: Path
    """OCI layout holding the image, tag TAG."""
    rootfs: Path
    """The image's root filesystem, unpacked (umoci unpack), for running what it ships."""
    instructions: tuple[DockerfileInstruction, ...]


def _run(command: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                               timeout=900, **options)  # type: ignore[call-overload]
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)[:300]} failed (rc {completed.returncode}):\n"
                           f"{(completed.stdout + completed.stderr)[-3000:]}")
    return completed


def instructions() -> tuple[DockerfileInstruction, ...]:
    parsed = parse_dockerfile(DOCKERFILE.read_text(), "Dockerfile")
    supported = {"FROM", "RUN", "COPY"} | CONFIG_INSTRUCTIONS
    unknown = [i.instruction for i in parsed.instructions if i.instruction not in supported]
    if unknown or parsed.stage_count != 1:
        raise RuntimeError(f"the Dockerfile uses {unknown or 'several stages'}: teach {__file__} first")
    if not parsed.base_image.startswith("debian:bookworm-slim@sha256:"):
        raise RuntimeError(f"FROM {parsed.base_image}: this builder stands in debootstrap bookworm for "
                           "debian:bookworm-slim only")
    return parsed.instructions


def _deps_boundary(steps: tuple[DockerfileInstruction, ...]) -> int:
    """Index after the RUN that installs the locked dependencies (the last step before ci-gate's own COPY)."""
    for index, step in enumerate(steps):
        if step.instruction == "COPY" and "requirements/" not in step.value:
            return index
    raise RuntimeError("no COPY of ci-gate's sources in the Dockerfile")


def _environment(env: dict[str, str]) -> dict[str, str]:
    # What `docker build` gives RUN: the image's ENV; plus the build-time settings of this sandbox.
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            **env, "DEBIAN_FRONTEND": "noninteractive", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS_IN_ROOTFS,
            "PIP_CONFIG_FILE": os.devnull}


def _apply(steps: tuple[DockerfileInstruction, ...], rootfs: Path, env: dict[str, str]) -> None:
    """Run FROM-less steps in `rootfs`: RUN in a chroot, COPY from the repository, ENV recorded."""
    from ci_gate.analyze.dockerfile import _env_assignments

    for step in steps:
        if step.instruction == "ENV":
            env.update(dict(_env_assignments(step.value, "\\")))
        elif step.instruction == "COPY":
            *sources, target = shlex.split(step.value)
            destination = rootfs / target.lstrip("/")
            if target.endswith("/") or len(sources) > 1:
                destination.mkdir(parents=True, exist_ok=True)
            for source in sources:
                origin = REPOSITORY / source
                if origin.is_dir():
                    shutil.copytree(origin, destination, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, destination / origin.name if destination.is_dir() else destination)
        elif step.instruction == "RUN":
            _run(["chroot", str(rootfs), "/bin/sh", "-c", step.value], env=_environment(env))


def _prepare_chroot(rootfs: Path) -> None:
    shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    wheels = rootfs / WHEELS_IN_ROOTFS.lstrip("/")
    shutil.copytree(locked_wheelhouse(), wheels, dirs_exist_ok=True)


def _clean_chroot(rootfs: Path) -> None:
    shutil.rmtree(rootfs / WHEELS_IN_ROOTFS.lstrip("/"), ignore_errors=True)
    (rootfs / "etc/resolv.conf").write_text("")


def _base_layout(steps: tuple[DockerfileInstruction, ...], boundary: int) -> Path:
    """OCI layout with one layer: the base rootfs after the dependency steps; cached on their inputs."""
    rootfs_tar = build_rootfs_tar()
    key = key_of(rootfs_tar.name, rootfs_tar.stat().st_size, [(s.instruction, s.value) for s in steps[:boundary]],
                 *(lock.read_bytes() for lock in LOCKS))

    def build(target: Path) -> None:
        work = target.with_name(target.name + ".work")
        shutil.rmtree(work, ignore_errors=True)
        try:
            _run(["umoci", "init", "--layout", str(target)])
            _run(["umoci", "new", "--image", f"{target}:{TAG}"])
            _run(["umoci", "unpack", "--image", f"{target}:{TAG}", str(work)])
            rootfs = work / "rootfs"
            _run(["tar", "--numeric-owner", "-xpf", str(rootfs_tar), "-C", str(rootfs)])
            _prepare_chroot(rootfs)
            _apply(steps[1:boundary], rootfs, {})
            _clean_chroot(rootfs)
            _run(["umoci", "repack", "--image", f"{target}:{TAG}", str(work)])
            _run(["umoci", "gc", "--layout", str(target)])
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return cached(f"ci-gate-image-base-{key}", build, stale_prefix="ci-gate-image-base-")


def build_image(target: Path) -> BuiltImage:
    """The ci-gate image from the Dockerfile, in `target`/layout, unpacked in `target`/bundle."""
    steps = instructions()
    boundary = _deps_boundary(steps)
    layout = target / "layout"
    bundle = target / "bundle"
    shutil.copytree(_base_layout(steps, boundary), layout)
    _run(["umoci", "unpack", "--image", f"{layout}:{TAG}", str(bundle)])
    rootfs = bundle / "rootfs"
    env: dict[str, str] = {}
    for step in steps[:boundary]:
        if step.instruction == "ENV":
            _apply((step,), rootfs, env)
    _prepare_chroot(rootfs)
    _apply(steps[boundary:], rootfs, env)
    _clean_chroot(rootfs)
    _run(["umoci", "repack", "--image", f"{layout}:{TAG}", str(bundle)])
    _configure(layout, steps, env)
    _run(["umoci", "gc", "--layout", str(layout)])
    return BuiltImage(layout, rootfs, steps)


def _exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    if not isinstance(parsed, list):
        raise RuntimeError(f"only the exec form is supported: {value}")
    return [str(word) for word in parsed]


def _configure(layout: Path, steps: tuple[DockerfileInstruction, ...], env: dict[str, str]) -> None:
    from ci_gate.analyze.dockerfile import _env_assignments

    command = ["umoci", "config", "--image", f"{layout}:{TAG}", "--history.created_by", "ci-gate Dockerfile"]
    for name, value in env.items():
        command += ["--config.env", f"{name}={value}"]
    for step in steps:
        if step.instruction == "USER":
            command += ["--config.user", step.value.strip()]
        elif step.instruction == "WORKDIR":
            command += ["--config.workingdir", step.value.strip()]
        elif step.instruction == "CMD":
            command += ["--clear=config.cmd", *(item for word in _exec_form(step.value)
                                                for item in ("--config.cmd", word))]
        elif step.instruction == "LABEL":
            for name, value in _env_assignments(step.value, "\\"):
                command += ["--config.label", f"{name}={value}", "--manifest.annotation", f"{name}={value}"]
    _run(command)
    healthcheck = next((step for step in steps if step.instruction == "HEALTHCHECK"), None)
    if healthcheck is not None:
        # umoci has no flag for Healthcheck (a Docker extension of the image config): set it in the
        # config blob, then re-point the manifest and the index at the new digests.
        _set_healthcheck(layout, _exec_form(healthcheck.value.removeprefix("CMD").strip()))


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _write_blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return digest, len(data)


def _set_healthcheck(layout: Path, test: list[str]) -> None:
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    entry = next(manifest for manifest in index["manifests"]
                 if manifest.get("annotations", {}).get("org.opencontainers.image.ref.name") == TAG)
    manifest = json.loads(_blob(layout, entry["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
    config["config"]["Healthcheck"] = {"Test": ["CMD", *test]}
    manifest["config"]["digest"], manifest["config"]["size"] = _write_blob(
        layout, json.dumps(config, separators=(",", ":")).encode())
    entry["digest"], entry["size"] = _write_blob(layout, json.dumps(manifest, separators=(",", ":")).encode())
    index_path.write_text(json.dumps(index, separators=(",", ":")))
