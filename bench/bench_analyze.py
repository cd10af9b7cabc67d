"""Benchmark `ci-gate analyze` against its floor and its peer, side by side in one run.

For each image (the real Debian bookworm app image, and the ~1 GB synthetic image with ~100,000
files from bench/make_synthetic.py), each row a separate process, medians of `--repeat` runs:
  floor        the single-core decompression floor: `gzip -dc`/`zstd -dc` of every layer blob to /dev/null
  analyze      `ci-gate analyze IMAGE -o json --file OUT --no-cache` with CI_GATE_INFLATE_WORKER=0 (serial:
               everything on one core)
  worker       the same with CI_GATE_INFLATE_WORKER=1 (a forked worker process reads, hashes and inflates
               each compressed layer; the parser reads its pipe)
  syft         `syft scan IMAGE -o json=OUT -q` (the reference cataloger)
  cached gate  `ci-gate gate IMAGE --policy builtin:default` on a cached analysis, minus `python -c pass`
  cached json  `ci-gate analyze IMAGE -o json` on a cached analysis, minus `python -c pass`
Peak RSS is the child's (getrusage: the largest of ci-gate and its worker). CPU is user + system time
of the process and its worker, steadier than wall time on a shared machine. The goals of issue 18 are
printed next to each ratio. The load average is printed with each image: on a shared machine a busy
second core hides any gain from the worker, so figures taken with a load above one per core say so.

Python children run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed, one warm-up run),
as an installed ci-gate does; otherwise every start-up would compile ci-gate from source.

    python bench/bench_analyze.py [--skip-synthetic] [--skip-debian] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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
    """Median wall time over the runs, seconds."""
    peak_rss_mb: float
    """Largest peak RSS of the child over the runs."""
    walls: list[float]
    cpu: float = 0.0
    """Median user + system seconds of the child and its children."""


def run_measured(command: list[str], env: dict[str, str], repeat: int = 1, ok: tuple[int, ...] = (0,)) -> Measure:
    """Median wall time over `repeat` runs; peak RSS of the child (max over runs)."""
    walls: list[float] = []
    cpus: list[float] = []
    peak = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: exec, so wait4 reports this command's own peak RSS
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                os.execvpe(command[0], command, env)
            finally:
                os._exit(127)
        _, status, usage = os.wait4(pid, 0)
        walls.append(time.perf_counter() - start)
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            raise SystemExit(f"command failed ({code}): {' '.join(command)}")
        peak = max(peak, usage.ru_maxrss / 1024)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return Measure(statistics.median(walls), peak, walls, statistics.median(cpus))


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text())
    return [layout / "blobs" / "sha256" / layer["digest"].split(":")[1] for layer in manifest["layers"]]


def floor_command(layout: Path) -> list[str]:
    """One shell that decompresses every layer blob to /dev/null, one after another on one core."""
    parts = []
    for blob in layer_blobs(layout):
        with open(blob, "rb") as handle:
            head = handle.read(4)
        tool = "gzip -dc" if head[:2] == b"\x1f\x8b" else "zstd -dcq" if head == b"\x28\xb5\x2f\xfd" else "cat"
        parts.append(f"{tool} '{blob}' > /dev/null")
    return ["sh", "-c", " && ".join(parts)]


def verdict(value: float, goal: float) -> str:
    return f"goal <= {goal:g}: {'met' if value <= goal else 'MISSED'}"


def load_note() -> str:
    one_minute = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    loaded = " - LOADED machine: figures are pessimistic" if one_minute > cores * 0.5 else ""
    return f"load average {one_minute:.1f} on {cores} cores{loaded}"


def bench_image(name: str, layout: Path, repeat: int, out_dir: Path, syft_goal: float) -> None:
    ci_gate = [sys.executable, "-m", "ci_gate.cli"]
    env = os.environ.copy()
    env["CI_GATE_CACHE_DIR"] = str(out_dir / f"cache-{name}")
    env["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
    env["CI_GATE_INFLATE_WORKER"] = "0"
    env.pop("CI", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    shutil.rmtree(env["CI_GATE_CACHE_DIR"], ignore_errors=True)
    reference = f"oci-dir:{layout}"
    from tests.support.syft import syft_binary

    print(f"\n== {name}: {load_note()}", flush=True)
    out = str(out_dir / f"{name}.json")
    run_measured([*ci_gate, "--version"], env)  # warm-up: bytecode written
    floor = run_measured(floor_command(layout), env, repeat)
    ours = run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file", out, "--no-cache"], env, repeat)
    worker = run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file", str(out_dir / f"{name}.w.json"),
                           "--no-cache"], {**env, "CI_GATE_INFLATE_WORKER": "1"}, repeat)
    syft = run_measured([str(syft_binary()), "scan", reference, "-q", "-o", f"json={out_dir / f'{name}.syft.json'}"],
                        env, repeat)
    # Fill the cache, then time the cached commands against bare interpreter start-up.
    run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file", str(out_dir / f"{name}.c.json")], env)
    gate = run_measured([*ci_gate, "gate", reference, "--policy", "builtin:default"], env, repeat, ok=(0, 1))
    cached = run_measured([*ci_gate, "analyze", reference, "-o", "json", "--file",
                           str(out_dir / f"{name}.c.json")], env, repeat)
    version = run_measured([*ci_gate, "--version"], env, repeat)
    python = run_measured([sys.executable, "-c", "pass"], env, repeat)

    analysis = json.loads((out_dir / f"{name}.json").read_text())
    syft_doc = json.loads((out_dir / f"{name}.syft.json").read_text())
    same = (out_dir / f"{name}.w.json").read_bytes() == (out_dir / f"{name}.json").read_bytes()
    same_cached = (out_dir / f"{name}.c.json").read_bytes() == (out_dir / f"{name}.json").read_bytes()
    size = sum(blob.stat().st_size for blob in layer_blobs(layout))
    print(f"  {len(layer_blobs(layout))} layers, {size / 1e6:.0f} MB stored, {analysis['file_count']} files, "
          f"{len(analysis['packages'])} packages (syft: {len(syft_doc['artifacts'])}); medians of {repeat}")
    print(f"  floor (gzip -dc)      {floor.wall:7.2f} s  {floor.peak_rss_mb:6.0f} MB   cpu {floor.cpu:6.2f} s")
    for label, measure in (("analyze (serial)", ours), ("analyze (worker)", worker)):
        print(f"  {label:<21} {measure.wall:7.2f} s  {measure.peak_rss_mb:6.0f} MB   cpu {measure.cpu:6.2f} s   "
              f"{measure.wall / floor.wall:5.2f}x floor ({verdict(measure.wall / floor.wall, 1.1)}), "
              f"{measure.wall / syft.wall:4.2f}x syft ({verdict(measure.wall / syft.wall, syft_goal)})")
    best = min(ours.peak_rss_mb, worker.peak_rss_mb)
    print(f"  syft scan             {syft.wall:7.2f} s  {syft.peak_rss_mb:6.0f} MB   "
          f"peak RSS of analyze {best:.0f} MB ({verdict(best, 100)} on the 1 GB image)")
    print(f"  worker output identical to serial: {same}; cached -o json identical: {same_cached}")
    print(f"  python -c pass        {python.wall:7.2f} s")
    for label, measure, goal in (("cached gate", gate, 0.25), ("cached analyze -o json", cached, 0.25),
                                 ("ci-gate --version", version, 0.15)):
        extra = measure.wall - python.wall
        print(f"  {label:<22}{measure.wall:7.2f} s  {measure.peak_rss_mb:6.0f} MB   +{extra:4.2f} s over python "
              f"({verdict(extra, goal)})")
    print(f"  ({load_note()} at the end)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-debian", action="store_true")
    arguments = parser.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="ci-gate-bench-"))
    try:
        if not arguments.skip_debian:
            from tests.support.debian import build_debian_images

            images = build_debian_images()
            bench_image("debian-app", images.app.path, arguments.repeat, out_dir, syft_goal=0.15)
        if not arguments.skip_synthetic:
            from bench.make_synthetic import build_synthetic

            bench_image("synthetic-1GB", build_synthetic().image.path, arguments.repeat, out_dir, syft_goal=0.25)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
