"""Benchmark `ci-gate analyze` against its floor and its peer, side by side in one run.

For each image (the real Debian bookworm app image, and the ~1 GB synthetic image with ~100,000
files from bench/make_synthetic.py):
  floor   plain decompression of the same layer blobs (`gzip -dc`/`zstd -dc` to /dev/null)
  ci-gate `ci-gate analyze IMAGE -o json --file OUT --no-cache`
  syft    `syft scan IMAGE -o json=OUT -q` (the reference cataloger)
  cached  a second `ci-gate analyze` on the same digest, against `python -c pass`
Each is a separate process measured with wall time and peak RSS (getrusage of the child), run
`--repeat` times (best wall time kept). Ratios are printed, not judged: targets live in the issue.

    python bench/bench_analyze.py [--skip-synthetic] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Measure:
    wall: float
    peak_rss_mb: float


def run_measured(command: list[str], env: dict[str, str] | None = None, repeat: int = 1) -> Measure:
    """Best wall time over `repeat` runs; peak RSS of the child (max over runs)."""
    best = float("inf")
    peak = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: exec so getrusage(RUSAGE_CHILDREN)-style accounting is per process
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.execvpe(command[0], command, env or os.environ.copy())
            finally:
                os._exit(127)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"command failed ({os.waitstatus_to_exitcode(status)}): {' '.join(command)}")
        best = min(best, elapsed)
        peak = max(peak, usage.ru_maxrss / 1024)
    return Measure(best, peak)


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text())
    return [layout / "blobs" / "sha256" / layer["digest"].split(":")[1] for layer in manifest["layers"]]


def floor_command(layout: Path) -> list[str]:
    """One shell that decompresses every layer blob to /dev/null, as the floor of any analysis."""
    parts = []
    for blob in layer_blobs(layout):
        with open(blob, "rb") as handle:
            head = handle.read(4)
        tool = "gzip -dc" if head[:2] == b"\x1f\x8b" else "zstd -dcq" if head == b"\x28\xb5\x2f\xfd" else "cat"
        parts.append(f"{tool} '{blob}' > /dev/null")
    return ["sh", "-c", " && ".join(parts)]


def bench_image(name: str, layout: Path, repeat: int, out_dir: Path) -> None:
    ci_gate = [sys.executable, "-m", "ci_gate.cli"]
    env = os.environ.copy()
    env["CI_GATE_CACHE_DIR"] = str(out_dir / f"cache-{name}")
    env["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
    env.pop("CI", None)
    shutil.rmtree(env["CI_GATE_CACHE_DIR"], ignore_errors=True)
    reference = f"oci-dir:{layout}"
    from tests.support.syft import syft_binary

    floor = run_measured(floor_command(layout), env, repeat)
    ours = run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file", str(out_dir / f"{name}.json"),
                         "--no-cache"], env, repeat)
    syft = run_measured([str(syft_binary()), "scan", reference, "-q", "-o", f"json={out_dir / f'{name}.syft.json'}"],
                        env, repeat)
    # Warm the cache, then time the cached run against bare interpreter start-up.
    run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file", str(out_dir / f"{name}.c.json")], env)
    cached = run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file",
                           str(out_dir / f"{name}.c.json")], env, repeat)
    python = run_measured([sys.executable, "-c", "pass"], env, repeat)

    analysis = json.loads((out_dir / f"{name}.json").read_text())
    syft_doc = json.loads((out_dir / f"{name}.syft.json").read_text())
    size = sum(blob.stat().st_size for blob in layer_blobs(layout))
    print(f"\n== {name}: {len(layer_blobs(layout))} layers, {size / 1e6:.0f} MB stored, "
          f"{analysis['file_count']} files, {len(analysis['packages'])} packages "
          f"(syft: {len(syft_doc['artifacts'])})")
    print(f"  floor (decompress)  {floor.wall:7.2f} s  {floor.peak_rss_mb:7.0f} MB")
    print(f"  ci-gate analyze     {ours.wall:7.2f} s  {ours.peak_rss_mb:7.0f} MB   "
          f"{ours.wall / floor.wall:5.2f}x floor   (target <= 2x; memory target <= 150 MB)")
    print(f"  syft scan           {syft.wall:7.2f} s  {syft.peak_rss_mb:7.0f} MB   "
          f"ci-gate/syft time {ours.wall / syft.wall:4.2f}x, memory {ours.peak_rss_mb / syft.peak_rss_mb:4.2f}x "
          "(target <= 0.5x each)")
    print(f"  cached analyze      {cached.wall:7.2f} s  vs python start-up {python.wall:5.2f} s: "
          f"+{cached.wall - python.wall:4.2f} s (target <= 0.3 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-debian", action="store_true")
    arguments = parser.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="ci-gate-bench-"))
    if not arguments.skip_debian:
        from tests.support.debian import build_debian_images

        images = build_debian_images()
        bench_image("debian-app", images.app.path, arguments.repeat, out_dir)
    if not arguments.skip_synthetic:
        from bench.make_synthetic import build_synthetic

        bench_image("synthetic-1GB", build_synthetic().image.path, arguments.repeat, out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
