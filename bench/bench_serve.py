"""Benchmark `ci-gate serve` under a burst of submissions, then under status polls.

A real docker-registry on 127.0.0.1 holds DISTINCT images (the real Debian bookworm rootfs plus a
one-file layer naming the variant, so every digest differs and each analysis reads ~120 MB of
layers; `--kind tiny` uses the few-KB tiny image instead). A real `ci-gate serve` subprocess with
`--workers` threads then receives SUBMISSIONS concurrent `POST /v2/images` (image i % IMAGES), and
we wait until every digest is analysed. Printed: errors, analyses per digest (must be 1 each),
time to analyse everything, the server's peak RSS (VmHWM), and requests per second for
`GET /v2/images/{digest}` from POLLERS concurrent clients.

    python bench/bench_serve.py [--kind debian|tiny] [--images 10] [--submissions 50] [--workers 2]
                                [--pollers 8] [--poll-seconds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.oci import LayerSource, OciImage, TarItem, build_oci_layout, push  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.serve import PASSWORD, ServeProcess, build_variant  # noqa: E402


def debian_variant(out: Path, index: int) -> OciImage:
    """The real Debian rootfs (shared base blob) plus a layer that makes the digest unique."""
    from tests.support.debian import build_rootfs_tar

    layers: list[LayerSource] = [build_rootfs_tar(), [TarItem("etc", kind="dir", mode=0o755),
                                   TarItem("etc/variant", f"variant {index}\n".encode())]]
    return build_oci_layout(out, layers, tag=f"v{index}", config={"Cmd": ["/bin/bash"], "User": "1000"})


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def apache_bench(url: str, concurrency: int, seconds: float) -> str:
    """`ab`'s requests per second and failures for one URL, when apache2-utils is installed."""
    if shutil.which("ab") is None:
        return ""
    credentials = f"admin:{PASSWORD}"
    result = subprocess.run(["ab", "-q", "-k", "-c", str(concurrency), "-t", str(seconds), "-n", "10000000",
                             "-A", credentials, url], capture_output=True, text=True, timeout=seconds + 60)
    rate = re.search(r"Requests per second:\s+([\d.]+)", result.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    if rate is None:
        return f"ab failed: {result.stderr.strip()[:200]}"
    return (f"{float(rate.group(1)):.0f} requests/s ({failed.group(1) if failed else '?'} failed, "
            f"{non_2xx.group(1) if non_2xx else 0} non-2xx)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("debian", "tiny"), default="debian")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        root = Path(scratch)
        with RegistryServer(root / "registry") as registry:
            started = time.perf_counter()
            images: list[tuple[str, str]] = []
            for index in range(arguments.images):
                out = root / f"oci-{index}"
                oci = debian_variant(out, index) if arguments.kind == "debian" else build_variant(out, index)
                images.append((push(oci, registry.host, f"bench/app{index}:v{index}"), oci.manifest_digest))
            print(f"built and pushed {len(images)} {arguments.kind} images in {time.perf_counter() - started:.1f} s "
                  f"(cpus: {os.cpu_count()})")

            server = ServeProcess(root / "data", vuln_db=root / "no-vulns.sqlite", workers=arguments.workers)
            with server:
                assert server.process is not None
                pid = server.process.pid
                idle_rss = peak_rss_mb(pid)
                errors: list[str] = []

                def submit(number: int) -> None:
                    tag, _ = images[number % len(images)]
                    answer = requests.post(f"{server.url}/v2/images", json={"source": {"tag": {"pull_string": tag}}},
                                           auth=("admin", PASSWORD), timeout=120)
                    if answer.status_code != 200:
                        errors.append(f"{answer.status_code} {answer.text[:200]}")

                burst_start = time.perf_counter()
                with ThreadPoolExecutor(arguments.submissions) as pool:
                    list(pool.map(submit, range(arguments.submissions)))
                accepted = time.perf_counter() - burst_start
                failed = []
                for _, digest in images:
                    record = server.wait_status(digest, timeout=1800)
                    if record["analysis_status"] != "analyzed":
                        failed.append(f"{digest}: {record.get('analysis_failure_reason')}")
                analysed = time.perf_counter() - burst_start
                counts = server.get("/status").json()["detail"]["analyses_by_digest"]
                once = all(counts.get(digest) == 1 for _, digest in images) and len(counts) == len(images)

                stop = threading.Event()
                polls = [0] * arguments.pollers
                poll_errors = [0] * arguments.pollers

                def poll(worker: int) -> None:
                    session = requests.Session()
                    session.auth = ("admin", PASSWORD)
                    position = worker
                    while not stop.is_set():
                        _, digest = images[position % len(images)]
                        position += 1
                        if session.get(f"{server.url}/v2/images/{digest}", timeout=30).status_code == 200:
                            polls[worker] += 1
                        else:
                            poll_errors[worker] += 1

                threads = [threading.Thread(target=poll, args=(n,)) for n in range(arguments.pollers)]
                poll_start = time.perf_counter()
                for thread in threads:
                    thread.start()
                time.sleep(arguments.poll_seconds)
                stop.set()
                for thread in threads:
                    thread.join()
                poll_time = time.perf_counter() - poll_start
                ab_rate = apache_bench(f"{server.url}/v2/images/{images[0][1]}", arguments.pollers,
                                       arguments.poll_seconds)
                peak = peak_rss_mb(pid)

    print(f"submissions: {arguments.submissions} concurrent over {arguments.images} distinct images, "
          f"{arguments.workers} workers")
    print(f"  HTTP errors: {len(errors)}{' ' + errors[0] if errors else ''}")
    print(f"  analysis failures: {len(failed)}{' ' + failed[0] if failed else ''}")
    print(f"  each digest analysed once: {once} ({sorted(counts.values())})")
    print(f"  all submissions answered in {accepted:.2f} s; all analysed after {analysed:.1f} s "
          f"({analysed / len(images):.2f} s per image)")
    print(f"  server peak RSS: {peak:.0f} MB (idle after start: {idle_rss:.0f} MB)")
    print(f"status polls: {sum(polls) / poll_time:.0f} requests/s from {arguments.pollers} clients "
          f"({sum(poll_errors)} errors, {poll_time:.1f} s)")
    if ab_rate:
        print(f"status polls with ab (a C client, keep-alive, {arguments.pollers} concurrent): {ab_rate}")


if __name__ == "__main__":
    main()
