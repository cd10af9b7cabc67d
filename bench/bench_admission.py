"""Benchmark the admission webhook of `ci-gate serve`: latency of reviews answered from stored evaluations.

A real docker-registry on 127.0.0.1 holds IMAGES distinct tiny images; a real `ci-gate serve`
subprocess runs over HTTPS (a trustme test CA) with an admission configuration (policy mode, the
active policy, tag resolutions reused for 30 s as in production); every image is added and
analysed first. Then REVIEWS AdmissionReview requests, each a Pod whose containers are all the
images (by tag), are sent one after another over one keep-alive HTTPS connection, as the API server
does; after WARMUP unmeasured reviews (the first check of each image evaluates the policy and fills
the cache). Printed: p50, p90, p99 and max latency in ms as the client sees it, the decision time
inside serve (the decision log's elapsed_ms), and the decisions seen.

    python bench/bench_admission.py [--images 5] [--reviews 1000] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import trustme
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.admission.support import TlsServeProcess, pod_spec, review, workload  # noqa: E402
from tests.support.oci import push  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.serve import build_variant  # noqa: E402


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--reviews", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as scratch:
        root = Path(scratch)
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1")
        ca, cert, key = root / "ca.pem", root / "tls.crt", root / "tls.key"
        authority.cert_pem.write_to_path(str(ca))
        certificate.private_key_pem.write_to_path(str(key))
        for index, blob in enumerate(certificate.cert_chain_pems):
            blob.write_to_path(str(cert), append=index > 0)
        config = root / "admission.yaml"
        config.write_text(yaml.safe_dump({"defaultMode": "policy", "requestAnalysis": True}))
        with RegistryServer(root / "registry") as registry:
            tags = [push(build_variant(root / f"oci-{i}", 100 + i), registry.host, f"bench/admission{i}:v{i}")
                    for i in range(arguments.images)]
            with TlsServeProcess(root / "data", ca, cert, key, config) as server:
                for tag in tags:
                    server.wait_status(server.add_tag(tag).json()["image_digest"])
                session = server.session
                session.auth = None  # the API server sends no credentials
                url = f"{server.url}/admission/v1/validate"
                body = review(workload("Pod", pod_spec(tags)))
                decisions: dict[bool, int] = {}
                latencies: list[float] = []
                for index in range(arguments.warmup + arguments.reviews):
                    body["request"]["uid"] = str(uuid.uuid4())
                    started = time.perf_counter()
                    response = session.post(url, json=body, timeout=30)
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    answer = response.json()["response"]
                    assert answer["uid"] == body["request"]["uid"]
                    if index >= arguments.warmup:
                        latencies.append(elapsed)
                        decisions[answer["allowed"]] = decisions.get(answer["allowed"], 0) + 1
                print(f"{arguments.reviews} reviews of a Pod with {arguments.images} images (tags), HTTPS keep-alive, "
                      f"sequential, after {arguments.warmup} warm-up reviews")
                print(f"latency ms: p50 {percentile(latencies, 0.5):.1f}  p90 {percentile(latencies, 0.9):.1f}  "
                      f"p99 {percentile(latencies, 0.99):.1f}  max {max(latencies):.1f}  "
                      f"mean {statistics.fmean(latencies):.1f}")
                served = [json.loads(line.split("admission decision ", 1)[1])["elapsed_ms"]
                          for line in server.log_path.read_text().splitlines() if "admission decision " in line]
                served = served[arguments.warmup:]
                print(f"decision time in serve (decision log elapsed_ms, without HTTP/TLS): p50 "
                      f"{percentile(served, 0.5):.2f}  p99 {percentile(served, 0.99):.2f}  max {max(served):.2f}")
                print(f"decisions: allowed {decisions.get(True, 0)}, denied {decisions.get(False, 0)}")


if __name__ == "__main__":
    main()
