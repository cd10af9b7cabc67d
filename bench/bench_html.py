"""The HTML report's cost in a gate run, and its size.

    python bench/bench_html.py [--repeat 5]

On the noncompliant example image (examples/build_images.py, policy builtin:dod, its vulnerability
store, --no-cache), with ci-gate as its wheel installs it (built here: the wheel holds the template
compiled by its build, build_hooks.py, which a source checkout compiles at first use):
1. the gate's total time: `ci-gate gate ... --html FILE` as a subprocess (wall clock, best of --repeat);
2. the time to write the HTML report inside a fresh process, cold (importing the module, loading the
   compiled template, building the context, rendering, writing the file), measured right after
   `run_gate` in that process, best of --repeat; and warm (a second render in the same process); and
   its share of run_gate + report in that same process (both under the same machine load);
3. the file's size.
The issue's targets: written in <= 5% of the gate's time, under 200 KB. Printed, not judged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.wheel import installed_copy  # noqa: E402

IN_PROCESS = r"""
import json, sys, time
from pathlib import Path
from ci_gate.gate import GateOptions, run_gate
image, vuln_db, dockerfile, out = sys.argv[1:5]
gate_started = time.perf_counter()
result = run_gate(GateOptions(image=image, policy="builtin:dod", vuln_db=Path(vuln_db), dockerfile=Path(dockerfile),
                              tag="registry.example.com/acme/noncompliant:1", comment="off", use_cache=False))
gate = time.perf_counter() - gate_started
started = time.perf_counter()
from ci_gate.fileio import write_output
from ci_gate.reports.html import render_html
write_output(Path(out), render_html(result.evaluation, result.analysis))
cold = time.perf_counter() - started
started = time.perf_counter()
render_html(result.evaluation, result.analysis)
warm = time.perf_counter() - started
print(json.dumps({"gate": gate, "cold": cold, "warm": warm}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    sys.path.insert(0, str(ROOT / "examples"))
    import build_images

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        environment = {**os.environ, "PYTHONPATH": str(installed_copy(out / "wheel"))}
        environment = {k: v for k, v in environment.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
        images = build_images.build(out)
        vuln_db = build_images.build_vuln_db(out)
        image = f"oci-dir:{images['noncompliant']}"
        dockerfile = str(ROOT / "examples" / "images" / "noncompliant" / "Dockerfile")
        report = out / "report.html"
        gate_times, cold_times, warm_times, ratios = [], [], [], []
        for _ in range(arguments.repeat):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", image, "--policy", "builtin:dod",
                            "--vuln-db", str(vuln_db), "--dockerfile", dockerfile, "--no-cache", "--comment", "off",
                            "--tag", "registry.example.com/acme/noncompliant:1", "--html", str(report)],
                           cwd=out, env=environment, capture_output=True, check=False, timeout=300)
            gate_times.append(time.perf_counter() - started)
            measured = subprocess.run([sys.executable, "-c", IN_PROCESS, image, str(vuln_db), dockerfile,
                                       str(out / "in-process.html")], cwd=out, env=environment,
                                      capture_output=True, text=True, check=True, timeout=300)
            times = json.loads(measured.stdout.strip().splitlines()[-1])
            cold_times.append(times["cold"])
            ratios.append(times["cold"] / (times["gate"] + times["cold"]))
            warm_times.append(times["warm"])
        gate_time, cold, warm = min(gate_times), min(cold_times), min(warm_times)
        size = report.stat().st_size
        print(f"gate --html on the noncompliant example, best of {arguments.repeat}: {gate_time * 1000:.0f} ms total")
        print(f"HTML report written (cold: import, compiled template, context, render, write): {cold * 1000:.1f} ms "
              f"= {cold / gate_time:.1%} of the gate (target <= 5%); warm render {warm * 1000:.1f} ms")
        ratios.sort()
        print(f"the same in one process (run_gate, then the report; same load for both): median "
              f"{ratios[len(ratios) // 2]:.1%} of run_gate + report (the CLI run above adds Python's start-up)")
        print(f"HTML report size: {size:,} bytes ({size / 1024:.1f} KiB; target < 200 KB)")


if __name__ == "__main__":
    main()
