"""`ci-gate stig` on the real Debian image vs `oscap xccdf eval` alone on the same materialised tree.

    python bench/bench_stig.py [--repeat 3]

The Debian bookworm image the test suite builds (cached; one gzip layer, ~5,200 files, 117 MB) is
evaluated with the Debian 11 `standard` profile of the installed SCAP Security Guide, twice:
- as is: bookworm's ssg 0.1.65 has no Debian 12 content, so the rules' platform check marks every
  rule notapplicable (exit 2), but oscap still loads the content and runs the platform probes;
- relabelled: the same image plus one layer with `/etc/debian_version` 11.9, so the 44 rules are
  really evaluated (and, with oscap < 1.4, ci-gate re-decides the package rules from the image's
  dpkg database).
Printed per case: best wall time of `ci-gate stig --no-cache` (a subprocess, as CI runs it), best of
`oscap` alone on a tree materialised once, and the ratio — the overhead of reading and
materialising the image (and of the dpkg re-decision). Nothing is judged here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci_gate.sources import open_image  # noqa: E402
from ci_gate.sources.filesystem import walk_image  # noqa: E402
from ci_gate.sources.interface import Limits  # noqa: E402
from ci_gate.stig.evaluate import materialise_parent  # noqa: E402
from ci_gate.stig.rootfs import materialized_rootfs  # noqa: E402
from tests.support.debian import build_debian_images, build_rootfs_tar  # noqa: E402
from tests.support.oci import TarItem, build_oci_layout  # noqa: E402

DATASTREAM = "/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml"
PROFILE = "xccdf_org.ssgproject.content_profile_standard"


def _measure(image: str, repeat: int) -> tuple[float, float, float, int, str]:
    ci_gate_times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ci_gate.cli", "stig", image, "--datastream", DATASTREAM,
                        "--profile", PROFILE, "--no-cache"], capture_output=True, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        ci_gate_times.append(time.perf_counter() - started)

    oscap_times = []
    materialise_started = time.perf_counter()
    filesystem = walk_image(open_image(image))
    parent = materialise_parent(filesystem.uncompressed_bytes)  # where `ci-gate stig` puts it too
    with materialized_rootfs(filesystem, Limits(), parent_dir=parent) as rootfs, \
            tempfile.TemporaryDirectory() as work:
        materialise = time.perf_counter() - materialise_started
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run(["oscap", "xccdf", "eval", "--profile", PROFILE, "--results", f"{work}/r.xml", DATASTREAM],
                           env={**os.environ, "OSCAP_PROBE_ROOT": rootfs.path}, capture_output=True, check=False)
            oscap_times.append(time.perf_counter() - started)
        files = rootfs.files
    return min(ci_gate_times), min(oscap_times), materialise, files, parent or tempfile.gettempdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    base = build_debian_images().base
    with tempfile.TemporaryDirectory() as scratch:
        relabelled = build_oci_layout(Path(scratch) / "oci", [build_rootfs_tar(), [
            TarItem("etc/debian_version", b"11.9\n")]], tag="debian11-label")
        for label, image in (("bookworm as is (platform mismatch, exit 2)", f"oci-dir:{base.path}"),
                             ("bookworm relabelled 11.9 (44 rules evaluated)", f"oci-dir:{relabelled.path}")):
            best_ci_gate, best_oscap, materialise, files, where = _measure(image, repeat)
            print(f"{label}: {files} files materialised under {where}")
            print(f"  ci-gate stig --no-cache: best {best_ci_gate:.2f} s of {repeat}")
            print(f"  oscap alone on the same tree: best {best_oscap:.2f} s of {repeat}")
            print(f"  read + materialise once (in-process): {materialise:.2f} s")
            print(f"  ratio ci-gate stig / oscap alone: {best_ci_gate / best_oscap:.2f}")


if __name__ == "__main__":
    main()
