"""Start-up cost of the CLI: `ci-gate --version` against a bare `python -c pass`, hyperfine-style.

Run: `python bench/bench_startup.py [--runs N] [-- ARGS...]` (default ARGS: --version). Each command
runs a few warm-up times, then N times; the mean and spread of each, the difference (what ci-gate
itself costs) and the ratio are printed. The console script is the one of this interpreter; with
PYTHONPATH set to a checkout, that checkout's code is what runs.
"""

from __future__ import annotations

import argparse
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


def timings(command: list[str], runs: int) -> list[float]:
    for _ in range(WARMUP_RUNS):
        subprocess.run(command, capture_output=True, check=False)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        seconds.append(time.perf_counter() - started)
    return seconds


def describe(name: str, seconds: list[float]) -> str:
    return f"{name:<28} mean {statistics.mean(seconds) * 1000:7.1f} ms  ± {statistics.stdev(seconds) * 1000:5.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("arguments", nargs="*", default=["--version"])
    options = parser.parse_args()
    baseline = timings([sys.executable, "-c", "pass"], options.runs)
    command = [*console_script(), *options.arguments]
    ci_gate = timings(command, options.runs)
    print(describe("python -c pass", baseline))
    print(describe("ci-gate " + " ".join(options.arguments), ci_gate))
    difference = statistics.mean(ci_gate) - statistics.mean(baseline)
    print(f"difference {difference * 1000:.1f} ms, ratio {statistics.mean(ci_gate) / statistics.mean(baseline):.2f}x")


if __name__ == "__main__":
    main()
