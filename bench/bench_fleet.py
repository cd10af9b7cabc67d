"""Benchmark `ci-gate serve` on PostgreSQL with 1 replica and with 3, side by side in one run.

A real PostgreSQL (tests/support/postgres.py), a real docker-registry holding IMAGES distinct tiny
images, and `ci-gate serve --database URL --role all` replicas (a fresh database per row). The images
are analysed first; then, for a fixed time each, the load comes from `ab` (ApacheBench, a C client
with keep-alive, so the load generator costs little CPU next to the servers), CLIENTS connections
spread over SPLIT `ab` processes, each bound to one replica (round-robin by URL, no balancer in the
way) and one digest:

  submissions/s  `POST /v2/images` of an already analysed digest (what most of a fleet's runners
                 send: the image was built once, gated many times): a write transaction per request
  polls/s        `GET /v2/images/{digest}` (what a waiting client sends every poll interval)
  check p99      `GET /v2/images/{digest}/check?tag=` latency, 99th percentile by `ab`, measured
                 while the poll load runs
  replica CPU    cores the replicas kept busy during the poll phase (what is left of the 2 cores
                 went to PostgreSQL, ab and the rest of the machine)
  peak RSS       VmHWM of each replica process at the end

The 3-replica row with the same client load on the same 2 cores, divided by the 1-replica row, is
the scaling factor (the goal of issue 18 is >= 2.5x on the poll path). The load average is printed:
on a shared machine the figures are pessimistic.

    python bench/bench_fleet.py [--seconds 8] [--clients 24] [--images 12]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fleet import FleetImage, build_fleet_images, push_fleet_images, start_replica  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.serve import PASSWORD, ServeProcess, build_vuln_db  # noqa: E402

SPLIT = 6
"""`ab` processes per measurement (a multiple of 3: each replica gets the same share)."""


@dataclass
class AbResult:
    rate: float = 0.0
    failed: int = 0
    p99_ms: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class Row:
    replicas: int
    submissions: float = 0.0
    polls: float = 0.0
    check_p99_ms: float = 0.0
    peak_rss_mb: list[float] = field(default_factory=list)
    failures: int = 0
    poll_cpu: float = 0.0
    """Cores the replicas kept busy during the poll phase (their user+system CPU seconds / wall seconds)."""


def start_ab(url: str, concurrency: int, seconds: float, post_body: Path | None = None) -> subprocess.Popen[str]:
    command = ["ab", "-q", "-k", "-c", str(concurrency), "-t", str(seconds), "-n", "10000000", "-s", "60",
               "-A", f"admin:{PASSWORD}"]
    if post_body is not None:
        command += ["-p", str(post_body), "-T", "application/json"]
    return subprocess.Popen([*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_ab(process: subprocess.Popen[str]) -> AbResult:
    stdout, stderr = process.communicate(timeout=600)
    rate = re.search(r"Requests per second:\s+([\d.]+)", stdout)
    if rate is None:
        return AbResult(errors=[f"ab failed ({process.returncode}): {(stderr or stdout).strip()[-300:]}"])
    # "Length" failures are answers whose size differs from the first one (a record's timestamps): not errors
    failed = re.search(r"Failed requests:\s+\d+\s+\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)",
                       stdout)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", stdout)
    p99 = re.search(r"^\s*99%\s+(\d+)", stdout, re.MULTILINE)
    return AbResult(rate=float(rate.group(1)),
                    failed=(sum(int(part) for part in failed.groups()) if failed else 0)
                    + int(non_2xx.group(1) if non_2xx else 0),
                    p99_ms=float(p99.group(1)) if p99 else float("nan"))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_note() -> str:
    one_minute = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    loaded = " - LOADED machine: figures are pessimistic" if one_minute > cores * 0.5 else ""
    return f"load average {one_minute:.1f} on {cores} cores{loaded}"


def measure(count: int, postgres: PostgresServer, images: list[FleetImage], vuln_db: Path, scratch: Path,
            seconds: float, clients: int) -> Row:
    database_url = postgres.create_database()
    replicas: list[ServeProcess] = []
    row = Row(count)
    try:
        for number in range(count):
            replicas.append(start_replica(scratch / f"r{count}", f"replica-{number}", database_url, vuln_db, "all",
                                          workers=2))
        for image in images:  # analysed first: the load below reads and re-submits analysed images
            assert replicas[0].add_tag(image.tag).status_code == 200
        for image in images:
            assert replicas[-1].wait_status(image.digest, timeout=300)["analysis_status"] == "analyzed"
        per_process = max(1, clients // SPLIT)

        def spread(path_of: Callable[[FleetImage], str], post_bodies: list[Path] | None = None,
                   extra: list[tuple[str, int]] | None = None) -> tuple[list[AbResult], list[AbResult]]:
            started = []
            for number in range(SPLIT):
                image = images[number % len(images)]
                url = replicas[number % count].url + path_of(image)
                started.append(start_ab(url, per_process, seconds, post_bodies[number] if post_bodies else None))
            side = [start_ab(url, concurrency, seconds) for url, concurrency in (extra or [])]
            return [finish_ab(p) for p in started], [finish_ab(p) for p in side]

        bodies = []
        for number in range(SPLIT):
            image = images[number % len(images)]
            body = scratch / f"submit-{count}-{number}.json"
            repository = image.tag.rsplit(":", 1)[0]
            body.write_text(json.dumps({"source": {"digest": {"pull_string": f"{repository}@{image.digest}",
                                                              "tag": image.tag}}}))
            bodies.append(body)
        submitted, _ = spread(lambda image: "/v2/images", bodies)
        # The check sampler: 3 more ab processes (one per replica share) at 2 connections each.
        checks = [(replicas[number % count].url + f"/v2/images/{images[number].digest}/check?tag={images[number].tag}",
                   2) for number in range(3)]
        cpu_before, wall_before = sum(cpu_seconds(r.pid) for r in replicas), time.monotonic()
        polled, checked = spread(lambda image: f"/v2/images/{image.digest}", extra=checks)
        row.poll_cpu = (sum(cpu_seconds(r.pid) for r in replicas) - cpu_before) / (time.monotonic() - wall_before)
        row.submissions = sum(r.rate for r in submitted)
        row.polls = sum(r.rate for r in polled)
        row.check_p99_ms = max(r.p99_ms for r in checked)
        row.failures = sum(r.failed for r in (*submitted, *polled, *checked))
        for result in (*submitted, *polled, *checked):
            for error in result.errors:
                print(f"  {error}")
        row.peak_rss_mb = [peak_rss_mb(replica.pid) for replica in replicas]
    finally:
        for replica in replicas:
            replica.stop()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each load phase")
    parser.add_argument("--clients", type=int, default=24, help="concurrent connections in all")
    parser.add_argument("--images", type=int, default=12)
    arguments = parser.parse_args()
    os.environ.pop("CI", None)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch_name:
        scratch = Path(scratch_name)
        with PostgresServer() as postgres, RegistryServer(scratch / "registry") as registry:
            images = push_fleet_images(build_fleet_images(scratch / "layout", arguments.images), registry.host)
            vuln_db = build_vuln_db(scratch / "vulns")
            print(f"ci-gate serve --database postgresql://… --role all on 127.0.0.1; {arguments.images} tiny images; "
                  f"{arguments.clients} keep-alive connections from {SPLIT} ab processes, {arguments.seconds:g} s "
                  f"per phase; {load_note()}", flush=True)
            rows = [measure(count, postgres, images, vuln_db, scratch, arguments.seconds, arguments.clients)
                    for count in (1, 3)]
    one, three = rows
    print(f"{'replicas':>8} {'submissions/s':>14} {'polls/s':>9} {'check p99':>10} {'failed':>7} "
          f"{'replica CPU (polls)':>20}  peak RSS per replica")
    for row in rows:
        print(f"{row.replicas:>8} {row.submissions:>14.0f} {row.polls:>9.0f} {row.check_p99_ms:>8.0f}ms "
              f"{row.failures:>7} {row.poll_cpu:>14.2f} cores  {', '.join(f'{mb:.0f} MB' for mb in row.peak_rss_mb)}")
    poll_ratio = three.polls / one.polls if one.polls else float("nan")
    submit_ratio = three.submissions / one.submissions if one.submissions else float("nan")
    print(f"scaling 3 vs 1 replica: polls {poll_ratio:.2f}x (goal >= 2.5: {'met' if poll_ratio >= 2.5 else 'MISSED'}), "
          f"submissions {submit_ratio:.2f}x; check p99 {one.check_p99_ms:.0f} ms -> {three.check_p99_ms:.0f} ms")
    print(f"({load_note()} at the end; {len(os.sched_getaffinity(0))} cores shared by the replicas, PostgreSQL "
          f"and ab)")


if __name__ == "__main__":
    main()
