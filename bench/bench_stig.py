"""`ci-gate stig` on the real Debian images: this checkout against a previous one, and against `oscap` alone.

    python bench/bench_stig.py --baseline DIR [--repeat 3]

DIR is a checkout of the previous code (e.g. `git archive main | tar -x -C /tmp/base`); both run
as `python -m ci_gate.cli stig` subprocesses (as CI runs them) with the Debian 11 `standard`
profile of the installed SCAP Security Guide, on the Debian bookworm rootfs the test suite builds
(cached; ~5,200 files) plus a layer with `/etc/debian_version` 11.9, so its 44 rules are really
evaluated (with oscap < 1.4 ci-gate also re-decides the package rules from the image's dpkg data):
- `bookworm`: rootfs + label (one 117 MB layer and a tiny one);
- `app`: rootfs + the pip/npm application layer + label;
- `slimmed`: rootfs + a layer that deletes /usr/share/doc, locale, man and zoneinfo and the apt lists
  (whiteouts) + label: the case where writing files out as they stream by keeps what a later layer
  deletes until the walk ends.
Printed per case and checkout: best wall time and the CPU time (ci-gate, its inflate worker and
oscap: the children's rusage) of `--no-cache` and of a cached run; the peak temporary space (disk
blocks under CI_GATE_STIG_TMPDIR, each inode once, sampled, set to a fresh folder in /dev/shm for
both) of an uncached run; the same for opening, walking and materialising the image alone
(in-process, no oscap: the part the one-pass change is about); then the ratios this/previous; and
once, oscap alone on a materialised tree and the ratio ci-gate stig / oscap alone. Nothing is
judged here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci_gate.sources import open_image  # noqa: E402
from ci_gate.sources.interface import Limits  # noqa: E402
from ci_gate.stig.rootfs import materialized_image  # noqa: E402
from tests.support.debian import build_app_layer, build_rootfs_tar  # noqa: E402
from tests.support.oci import TarItem, build_oci_layout  # noqa: E402

DATASTREAM = "/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml"
PROFILE = "xccdf_org.ssgproject.content_profile_standard"
LABEL = [TarItem("etc/debian_version", b"11.9\n")]
SLIMMING = [TarItem(name, b"") for name in ("usr/share/.wh.doc", "usr/share/.wh.locale", "usr/share/.wh.man",
                                            "usr/share/.wh.zoneinfo", "var/lib/apt/.wh.lists")]


@dataclass
class Figures:
    fresh_wall: float
    fresh_cpu: float
    cached_wall: float
    cached_cpu: float
    peak_bytes: int


def _blocks_under(path: str) -> int:
    """Disk bytes of the files under `path`, each inode once (a hard link, or a file moved while we
    look, is not counted twice)."""
    blocks: dict[int, int] = {}
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we looked
                status = os.lstat(os.path.join(directory, name))
                blocks[status.st_ino] = status.st_blocks * 512
    return sum(blocks.values())


def _run(checkout: Path, image: str, cache: Path, temp: Path, *extra: str) -> tuple[float, float]:
    """One `ci-gate stig` subprocess: (wall seconds, CPU seconds of it and its children)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "CI_GATE_CACHE_DIR": str(cache),
           "CI_GATE_STIG_TMPDIR": str(temp)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    done = subprocess.run([sys.executable, "-m", "ci_gate.cli", "stig", image, "--datastream", DATASTREAM,
                           "--profile", PROFILE, *extra], capture_output=True, text=True, env=env, check=False,
                          cwd=checkout)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"ci-gate stig failed ({checkout}): {done.stderr.strip()[-500:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _peak_space(checkout: Path, image: str, cache: Path, temp: Path) -> int:
    peak = 0
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, _blocks_under(str(temp)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        _run(checkout, image, cache, temp, "--no-cache")
    finally:
        running = False
        sampler.join()
    return peak


MATERIALISE_ONLY = """
import os, resource, sys, time
from ci_gate.sources import open_image
from ci_gate.sources.interface import Limits
from ci_gate.stig import rootfs
paths = ("/etc/os-release", "/usr/lib/os-release", "/var/lib/dpkg/status")
started = time.perf_counter()
if hasattr(rootfs, "materialized_image"):  # one pass
    context = rootfs.materialized_image(open_image(sys.argv[1]), Limits(), parent_dir=sys.argv[2], capture_paths=paths)
else:  # walk, then inflate again each layer that holds a final file
    from ci_gate.sources.filesystem import walk_image
    walked = walk_image(open_image(sys.argv[1]), capture_paths=paths)
    context = rootfs.materialized_rootfs(walked, Limits(), parent_dir=sys.argv[2])
with context:
    wall = time.perf_counter() - started
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(wall, sum(u.ru_utime + u.ru_stime for u in usage))
"""


def _materialise_only(checkout: Path, image: str, repeat: int, scratch: Path) -> tuple[float, float]:
    """Best wall and CPU (with the inflate worker) of opening, walking and materialising the image
    in-process, as `ci-gate stig` does before oscap runs."""
    temp = Path(tempfile.mkdtemp(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else scratch, prefix="bench-"))
    runs = []
    try:
        for _ in range(repeat):
            done = subprocess.run([sys.executable, "-c", MATERIALISE_ONLY, image, str(temp)], capture_output=True,
                                  text=True, env={**os.environ, "PYTHONPATH": str(checkout)}, cwd=checkout, check=True)
            wall, cpu = map(float, done.stdout.split())
            runs.append((wall, cpu))
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def _measure(checkout: Path, image: str, repeat: int, scratch: Path) -> Figures:
    cache = Path(tempfile.mkdtemp(dir=scratch, prefix="cache-"))
    temp = Path(tempfile.mkdtemp(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else scratch, prefix="bench-"))
    try:
        fresh = [_run(checkout, image, cache, temp, "--no-cache") for _ in range(repeat)]
        _run(checkout, image, cache, temp)  # fills the cache
        cached = [_run(checkout, image, cache, temp) for _ in range(repeat)]
        peak = _peak_space(checkout, image, cache, temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return Figures(min(wall for wall, _ in fresh), min(cpu for _, cpu in fresh),
                   min(wall for wall, _ in cached), min(cpu for _, cpu in cached), peak)


def _oscap_alone(image: str, repeat: int) -> float:
    times = []
    with materialized_image(open_image(image), Limits()) as rootfs, tempfile.TemporaryDirectory() as work:
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run(["oscap", "xccdf", "eval", "--profile", PROFILE, "--results", f"{work}/r.xml", DATASTREAM],
                           env={**os.environ, "OSCAP_PROBE_ROOT": rootfs.path}, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the previous code")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    rootfs = build_rootfs_tar()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        cases: dict[str, list[Path | list[TarItem]]] = {
            "bookworm": [rootfs, LABEL], "app": [rootfs, build_app_layer(), LABEL],
            "slimmed": [rootfs, SLIMMING + LABEL]}
        images = {name: f"oci-dir:{build_oci_layout(scratch / name, layers, tag=name).path}"
                  for name, layers in cases.items()}
        for name, image in images.items():
            previous = _measure(options.baseline.resolve(), image, options.repeat, scratch)
            this = _measure(ROOT, image, options.repeat, scratch)
            print(f"{name}:")
            for label, checkout in (("previous", options.baseline.resolve()), ("this", ROOT)):
                wall, cpu = _materialise_only(checkout, image, options.repeat + 2, scratch)
                print(f"  {label:8} open + walk + materialise only: best {wall:.2f} s wall, {cpu:.2f} s CPU")
            for label, figures in (("previous", previous), ("this", this)):
                print(f"  {label:8} --no-cache: best {figures.fresh_wall:.2f} s wall, {figures.fresh_cpu:.2f} s CPU; "
                      f"cached: best {figures.cached_wall:.2f} s wall, {figures.cached_cpu:.2f} s CPU; "
                      f"peak temporary space {figures.peak_bytes / 2**20:.0f} MiB")
            print(f"  this/previous: --no-cache {this.fresh_wall / previous.fresh_wall:.2f} wall, "
                  f"{this.fresh_cpu / previous.fresh_cpu:.2f} CPU; cached "
                  f"{this.cached_wall / previous.cached_wall:.2f} wall, "
                  f"{this.cached_cpu / previous.cached_cpu:.2f} CPU; peak space "
                  f"{this.peak_bytes / max(previous.peak_bytes, 1):.2f}")
            if name == "bookworm":
                alone = _oscap_alone(image, options.repeat)
                print(f"  oscap alone on the materialised tree: best {alone:.2f} s; ci-gate stig --no-cache / oscap "
                      f"alone: {this.fresh_wall / alone:.2f}")


if __name__ == "__main__":
    main()
