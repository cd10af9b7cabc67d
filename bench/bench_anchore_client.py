"""The anchore backend's overhead beyond the server's own analysis time (target: <= one poll interval).

A real docker-registry on 127.0.0.1 holds distinct images; a real `ci-gate serve` analyses them.
For each image, `AnchoreBackend.run` (the code `ci-gate gate --backend anchore` runs) submits,
waits, checks and fetches the vulnerabilities and packages, while an independent observer polls
`GET /v2/images/{digest}` every 10 ms to see when the server itself finished the analysis.

    overhead  = client done - server analysed      (what the gate adds after the analysis)
    detection = client saw "analyzed" - server analysed   (the poll backoff's share)
    fetch     = client done - client saw "analyzed"        (check + vulnerabilities + content)

    python bench/bench_anchore_client.py [--kind tiny|debian] [--images 3] [--poll-intervals 1,2,5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci_gate.backends.anchore import AnchoreBackend  # noqa: E402
from ci_gate.backends.interface import AnchoreOptions, BackendRequest  # noqa: E402
from tests.support.oci import OciImage, push  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.serve import PASSWORD, ServeProcess, build_variant, build_vuln_db  # noqa: E402


def debian_variant(out: Path, index: int) -> OciImage:
    """The real Debian rootfs plus a one-file layer that makes the digest unique."""
    from tests.support.debian import build_rootfs_tar
    from tests.support.oci import LayerSource, TarItem, build_oci_layout

    layers: list[LayerSource] = [build_rootfs_tar(), [TarItem("etc", kind="dir", mode=0o755),
                                 TarItem("etc/variant", f"variant {index}\n".encode())]]
    return build_oci_layout(out, layers, tag=f"v{index}", config={"Cmd": ["/bin/bash"], "User": "1000"})


def observe(url: str, digest_box: dict[str, str], seen: dict[str, float], stop: threading.Event) -> None:
    """Poll the server every 10 ms; note when the digest first reads `analyzed`."""
    session = requests.Session()
    session.auth = ("admin", PASSWORD)
    while not stop.is_set():
        digest = digest_box.get("digest")
        if digest and "analyzed" not in seen:
            try:
                record = session.get(f"{url}/v2/images/{digest}", timeout=5).json()
                if record.get("analysis_status") == "analyzed":
                    seen["analyzed"] = time.monotonic()
            except (requests.RequestException, ValueError):
                pass
        time.sleep(0.01)


def run_one(server: ServeProcess, tag: str, digest: str, interval: float) -> dict[str, float]:
    marks: dict[str, float] = {}

    def log(line: str) -> None:
        if line.split()[3:4] == ["analyzed"]:
            marks["client_saw"] = time.monotonic()

    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=observe, args=(server.url, {"digest": digest}, seen, stop), daemon=True)
    watcher.start()
    start = time.monotonic()
    result = AnchoreBackend(environ={}, log=log).run(BackendRequest(image=f"registry:{tag}", anchore=AnchoreOptions(
        url=server.url, username="admin", password=PASSWORD, poll_interval=interval, timeout=1800)))
    done = time.monotonic()
    stop.set()
    watcher.join(2)
    assert result.evaluation.image_digest == digest
    analysed = seen.get("analyzed", marks.get("client_saw", done))
    return {"server": analysed - start, "total": done - start, "overhead": done - analysed,
            "detection": marks.get("client_saw", done) - analysed, "fetch": done - marks.get("client_saw", done)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("tiny", "debian"), default="tiny")
    parser.add_argument("--images", type=int, default=3, help="distinct images per poll interval")
    parser.add_argument("--poll-intervals", default="1,2,5")
    arguments = parser.parse_args()
    intervals = [float(value) for value in arguments.poll_intervals.split(",")]
    make = build_variant if arguments.kind == "tiny" else debian_variant
    with tempfile.TemporaryDirectory(prefix="bench-anchore-") as scratch:
        root = Path(scratch)
        with RegistryServer(root / "registry") as registry, \
                ServeProcess(root / "serve", vuln_db=build_vuln_db(root / "vulns")) as server:
            print(f"{arguments.kind} images, ci-gate serve (2 workers) and docker-registry on 127.0.0.1")
            print(f"{'poll interval':>13} {'server analysis':>16} {'gate total':>11} {'overhead':>9} "
                  f"{'detection':>10} {'fetch':>7} {'overhead/interval':>18}")
            index = 0
            for interval in intervals:
                rows = []
                for _ in range(arguments.images):
                    oci = make(root / f"oci-{index}", 9000 + index)
                    tag = push(oci, registry.host, f"bench/app{index}:v1")
                    rows.append(run_one(server, tag, oci.manifest_digest, interval))
                    index += 1
                median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
                worst = max(row["overhead"] for row in rows)
                print(f"{interval:>12.1f}s {median['server']:>15.2f}s {median['total']:>10.2f}s "
                      f"{median['overhead']:>8.2f}s {median['detection']:>9.2f}s {median['fetch']:>6.2f}s "
                      f"{median['overhead'] / interval:>17.2f}x  (worst overhead {worst:.2f}s = "
                      f"{worst / interval:.2f}x)")


if __name__ == "__main__":
    main()
