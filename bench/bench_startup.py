"""Start-up cost of the CLI: `ci-gate --version` against a bare `python -c pass`, hyperfine-style.

Run: `python bench/bench_startup.py [--runs N] [-- ARGS...]` (default ARGS: --version). Each command
runs a few warm-up times, then N times; the mean and spread of each, the difference (what ci-gate
itself costs) and the ratio are printed. The console script is the one of this interpreter; with
PYTHONPATH set to a checkout, that checkout's code is what runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

WARMUP_RUNS = 3


def console_script() -> list[str]:
    """The `ci-gate` entry point of this interpreter (not a pyenv shim, which adds its own start-up)."""
    script = Path(sysconfig.get_path("scripts")) / "ci-gate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ci_gate.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timings(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of each run. On a shared machine the CPU time is
    the steadier figure: it does not count the time spent waiting for a core."""
    for _ in range(WARMUP_RUNS):
        subprocess.run(command, capture_output=True, check=False)
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_before = time.perf_counter(), _children_cpu()
        subprocess.run(command, capture_output=True, check=False)
        wall.append(time.perf_counter() - started)
        cpu.append(_children_cpu() - cpu_before)
    return wall, cpu


def describe(name: str, wall: list[float], cpu: list[float]) -> str:
    return (f"{name:<28} wall {statistics.mean(wall) * 1000:7.1f} ms ± {statistics.stdev(wall) * 1000:5.1f}"
            f"   cpu {statistics.mean(cpu) * 1000:7.1f} ms ± {statistics.stdev(cpu) * 1000:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("arguments", nargs="*", default=["--version"])
    options = parser.parse_args()
    baseline = timings([sys.executable, "-c", "pass"], options.runs)
    command = [*console_script(), *options.arguments]
    ci_gate = timings(command, options.runs)
    print(describe("python -c pass", *baseline))
    print(describe("ci-gate " + " ".join(options.arguments), *ci_gate))
    for kind, ours, bare in (("wall", ci_gate[0], baseline[0]), ("cpu", ci_gate[1], baseline[1])):
        difference = statistics.mean(ours) - statistics.mean(bare)
        ratio = statistics.mean(ours) / statistics.mean(bare)
        print(f"{kind}: difference {difference * 1000:.1f} ms, ratio {ratio:.2f}x")


if __name__ == "__main__":
    main()
