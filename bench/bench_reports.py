"""Report sizes and the cost of the reports in a gate run.

    python bench/bench_reports.py [--findings 5000] [--repeat 3] [--skip-debian]

1. Sizes: an evaluation with N vulnerability findings (default 5,000) rendered as SARIF and JUnit:
   bytes, gzip bytes (GitHub's SARIF limit is 10 MB gzipped; GitLab's JUnit limit 30 MB), results /
   test cases kept, and render time. Also the comment and job summary lengths (GitHub: 65,536
   characters per comment, 1 MiB per step summary).
2. Time: `ci-gate gate` on the real Debian bookworm app image (the test suite's cached image) with
   every report (--json --junit --sarif --gitlab-report --codequality --markdown --compliance)
   against `ci-gate analyze -o json` alone and against `gate` without reports (what the reports
   themselves cost), all subprocesses with --no-cache, interleaved, best of --repeat. The issue's
   target: gate with all reports <= 1.2x analyze. Printed, not judged.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reports"))

from report_samples import many_findings, sample_analysis  # noqa: E402

from ci_gate.reports.junit import render_junit  # noqa: E402
from ci_gate.reports.markdown import render_markdown  # noqa: E402
from ci_gate.reports.sarif import render_sarif  # noqa: E402


def sizes(count: int) -> None:
    evaluation = many_findings(count)
    analysis = sample_analysis()
    start = time.perf_counter()
    sarif = json.dumps(render_sarif(evaluation, analysis)).encode()
    sarif_seconds = time.perf_counter() - start
    start = time.perf_counter()
    junit = render_junit(evaluation, analysis).encode()
    junit_seconds = time.perf_counter() - start
    run = json.loads(sarif)["runs"][0]
    comment = render_markdown(evaluation, analysis, "comment")
    summary = render_markdown(evaluation, analysis, "summary")
    print(f"{count} findings")
    print(f"  SARIF : {len(sarif) / 1e6:7.2f} MB, {len(gzip.compress(sarif)) / 1e6:6.2f} MB gzipped "
          f"(limit 10 MB gzipped), {len(run['results'])} results, {len(run['tool']['driver']['rules'])} rules, "
          f"rendered in {sarif_seconds:.2f} s")
    print(f"  JUnit : {len(junit) / 1e6:7.2f} MB, {len(gzip.compress(junit)) / 1e6:6.2f} MB gzipped "
          f"(GitLab limit 30 MB), {junit.count(b'<testcase ')} test cases, rendered in {junit_seconds:.2f} s")
    print(f"  comment {len(comment):,} characters (limit 65,536); job summary {len(summary):,} characters "
          f"(limit 1,048,576)")


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[:3])} failed ({completed.returncode}): {completed.stderr.strip()}")
    return elapsed


def gate_versus_analyze(repeat: int) -> None:
    from tests.support.debian import build_debian_images

    image = f"oci-dir:{build_debian_images().app.path}"
    ci_gate = [sys.executable, "-m", "ci_gate.cli"]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        analyze = [*ci_gate, "analyze", image, "-o", "json", "--file", str(out / "analysis.json"), "--no-cache"]
        gate = [*ci_gate, "gate", image, "--no-cache", "--comment", "off", "--policy", "builtin:default",
                "--json", str(out / "e.json"), "--junit", str(out / "junit.xml"), "--sarif", str(out / "x.sarif"),
                "--gitlab-report", str(out / "gl.json"), "--codequality", str(out / "cq.json"),
                "--markdown", str(out / "summary.md"), "--compliance", str(out / "compliance.md")]
        bare_gate = gate[: gate.index("--json")]
        analyze_times, gate_times, bare_times = [], [], []
        for _ in range(repeat):  # interleaved, so machine noise hits all alike
            analyze_times.append(_timed(analyze))
            gate_times.append(_timed(gate))
            bare_times.append(_timed(bare_gate))
    best_analyze, best_gate, best_bare = min(analyze_times), min(gate_times), min(bare_times)
    print(f"Debian app image: analyze {best_analyze:.2f} s, gate with all 7 reports {best_gate:.2f} s, "
          f"ratio {best_gate / best_analyze:.2f}x (target <= 1.2x); gate without reports {best_bare:.2f} s, "
          f"so the reports cost {best_gate - best_bare:+.2f} s; best of {repeat}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-debian", action="store_true", help="only the size figures")
    arguments = parser.parse_args()
    sizes(arguments.findings)
    if not arguments.skip_debian:
        gate_versus_analyze(arguments.repeat)


if __name__ == "__main__":
    main()
