"""Policy evaluation speed: builtin:dod on the analysed Debian app image, and 1,000 rules x 10,000 packages.

    python bench/bench_policy.py [--repeat 5]

1. The real Debian bookworm app image the test suite builds (cached) is analysed once; then
   `evaluate(builtin:dod)` is timed (policy already loaded, as `gate` does after analysis), and
   separately the load+validate of the pack. Target (issue 4): evaluation ≤ 50 ms.
2. A synthetic analysis of 10,000 packages and a policy of 1,000 rules mixing packages denylist,
   required_package, licenses, files name_match, passwd and dockerfile rules, with a 200-item
   allowlist (exact and wildcard ids). Target: ≤ 1 s.
Best wall time of --repeat runs is printed with the ratio to its target; nothing is judged here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci_gate.model import (  # noqa: E402
    Analysis,
    Dockerfile,
    DockerfileInstruction,
    FileRecord,
    ImageConfig,
    ImageIdentity,
    Location,
    Package,
)
from ci_gate.policy.documents import check_text, load_policy  # noqa: E402
from ci_gate.policy.evaluation import EvaluationInput, evaluate  # noqa: E402


def best(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def debian(repeat: int) -> None:
    from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
    from tests.support.debian import build_debian_images

    image = build_debian_images().app
    start = time.perf_counter()
    analysis = analyze_image(f"oci-dir:{image.path}", AnalyzeOptions(use_cache=False))
    analysed = time.perf_counter() - start
    load_time, policy = best(lambda: load_policy("builtin:dod"), repeat)
    seconds, evaluation = best(lambda: evaluate(policy, analysis, EvaluationInput(tag="docker.io/test/debian:app")),
                               repeat)
    print(f"debian app image: {len(analysis.packages)} packages, {len(analysis.files)} files "
          f"(analysed in {analysed:.2f} s)")
    print(f"  builtin:dod load+validate   {load_time * 1000:8.2f} ms")
    print(f"  builtin:dod evaluate        {seconds * 1000:8.2f} ms  ({len(policy.rule_sets[0].rules)} rules, "
          f"{len(evaluation.findings)} findings, {evaluation.final_action})  target 50 ms: "
          f"{seconds / 0.050:.2f}x of budget")


def synthetic_analysis(packages: int) -> Analysis:
    return Analysis(
        identity=ImageIdentity("synthetic", "dir", "sha256:" + "a" * 64, "sha256:" + "b" * 64, platform="linux/amd64"),
        config=ImageConfig(user="app"),
        packages=tuple(
            Package(f"pkg{n}", f"1.{n % 97}-{n % 7}", "deb", licenses=(("GPL-2.0", "MIT", "Apache-2.0")[n % 3],),
                    locations=(Location("/var/lib/dpkg/status", n % 2),))
            for n in range(packages)
        ),
        files=tuple(FileRecord(f"/usr/lib/pkg{n}/file{n}.so", "file", 0o755) for n in range(packages)),
        retrieved_files={"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
                         + "".join(f"user{n}:x:{1000 + n}:{1000 + n}::/home/user{n}:/bin/sh\n" for n in range(200))},
        dockerfile=Dockerfile(
            "actual", instructions=tuple(DockerfileInstruction("RUN", f"step {n}", n + 1) for n in range(50))
        ),
    )


def synthetic_policy(rules: int) -> str:
    makers = [
        lambda n: ("packages", "denylist", {"name": f"pkg{n * 7}"}),
        lambda n: ("packages", "required_package", {"name": f"pkg{n}", "version": "1.0-0",
                                                    "version_match_type": "minimum"}),
        lambda n: ("licenses", "denylist_partial_match", {"licenses": f"GPL-{n % 3}"}),
        lambda n: ("files", "name_match", {"regex": f"/usr/lib/pkg{n}/.*"}),
        lambda n: ("passwd_file", "denylist_usernames", {"user_names": f"user{n % 300}"}),
        lambda n: ("dockerfile", "instruction", {"instruction": "RUN", "check": "like", "value": f"step {n % 60}"}),
    ]
    rule_list = []
    for n in range(rules):
        gate, trigger, params = makers[n % len(makers)](n)
        rule_list.append({"id": f"r{n}", "gate": gate, "trigger": trigger, "action": ("STOP", "WARN")[n % 2],
                          "params": [{"name": k, "value": v} for k, v in params.items()]})
    items = [{"id": f"i{n}", "gate": "packages", "trigger_id": f"{n:032x}"} for n in range(150)]
    items += [{"id": f"w{n}", "gate": "files", "trigger_id": f"{n:02x}*"} for n in range(50)]
    return json.dumps({
        "id": "bench", "name": "bench", "version": "2",
        "rule_sets": [{"id": "rs", "name": "rs", "version": "2", "rules": rule_list}],
        "allowlists": [{"id": "al", "name": "al", "version": "2", "items": items}],
        "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                      "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": ["al"]}],
    })


def synthetic(repeat: int) -> None:
    analysis = synthetic_analysis(10_000)
    text = synthetic_policy(1_000)
    load_time, (policy, problems) = best(lambda: check_text(text, "bench.json"), repeat)
    assert policy is not None, [p.message for p in problems][:3]
    seconds, evaluation = best(lambda: evaluate(policy, analysis, EvaluationInput(tag="a:1")), repeat)
    print("synthetic: 1,000 rules x 10,000 packages (10,000 files, 200 users, 200 allowlist items)")
    print(f"  load+validate               {load_time * 1000:8.2f} ms")
    print(f"  evaluate                    {seconds * 1000:8.2f} ms  ({len(evaluation.findings)} findings, "
          f"{sum(1 for f in evaluation.findings if f.allowlisted)} allowlisted)  target 1 s: "
          f"{seconds / 1.0:.2f}x of budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-debian", action="store_true")
    arguments = parser.parse_args()
    synthetic(arguments.repeat)
    if not arguments.skip_debian:
        debian(arguments.repeat)


if __name__ == "__main__":
    main()
