"""Benchmark the vulnerability store: import a synthetic 300,000-record OSV export, then match.

Prints: import records/s and peak memory (target: at most 200 MB), matching 2,000 packages
(target: at most 0.5 s), and the store's size on disk. The export is generated once into
bench/out/ (deterministic) and reused. Run: `python bench/bench_vulns.py [--records N]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
ECOSYSTEMS = ("Debian:12", "Alpine:v3.19", "PyPI", "npm", "Maven", "Go")
VECTORS = (
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
)
NAMES_PER_ECOSYSTEM = 8000


def package_name(ecosystem: str, number: int) -> str:
    if ecosystem == "Maven":
        return f"org.example.group{number % 97}:artifact-{number}"
    if ecosystem == "Go":
        return f"github.com/example/module{number}"
    if ecosystem == "npm" and number % 5 == 0:
        return f"@scope{number % 13}/package-{number}"
    return f"package-{number}"


def version_pair(ecosystem: str, generator: random.Random) -> tuple[str, str]:
    major, minor = generator.randint(0, 5), generator.randint(0, 30)
    if ecosystem == "Debian:12":
        return f"{major}.{minor}.0-1", f"{major}.{minor}.{generator.randint(1, 9)}-1+deb12u1"
    if ecosystem == "Alpine:v3.19":
        return f"{major}.{minor}.0-r0", f"{major}.{minor}.{generator.randint(1, 9)}-r1"
    return f"{major}.{minor}.0", f"{major}.{minor}.{generator.randint(1, 9)}"


def record(number: int, generator: random.Random) -> dict:
    ecosystem = ECOSYSTEMS[number % len(ECOSYSTEMS)]
    name = package_name(ecosystem, generator.randrange(NAMES_PER_ECOSYSTEM))
    introduced, fixed = version_pair(ecosystem, generator)
    kind = "SEMVER" if ecosystem in ("npm", "Go") else "ECOSYSTEM"
    return {
        "schema_version": "1.6.0",
        "id": f"BENCH-{number:07d}",
        "modified": f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}T00:00:00Z",
        "published": f"2023-{1 + number % 12:02d}-{1 + number % 28:02d}T00:00:00Z",
        "aliases": [f"CVE-2023-{number:06d}"],
        "summary": f"synthetic vulnerability {number} in {name}",
        "details": "A synthetic record for the benchmark. " * 4,
        "severity": [{"type": "CVSS_V3" if "3.1" in VECTORS[number % 5] else "CVSS_V4", "score": VECTORS[number % 5]}],
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                      "ranges": [{"type": kind, "events": [{"introduced": introduced}, {"fixed": fixed}]}]}],
        "references": [{"type": "ADVISORY", "url": f"https://example.com/advisories/{number}"}],
    }


def make_export(path: Path, count: int) -> None:
    generator = random.Random(20260101)
    temporary = path.with_suffix(".partial")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for number in range(count):
            document = record(number, generator)
            archive.writestr(f"{document['id']}.json", json.dumps(document))
    temporary.replace(path)


IMPORT_SCRIPT = """
import sys, time
from ci_gate.vulns.importers.osv import import_paths
start = time.perf_counter()
result = import_paths([sys.argv[1]], sys.argv[2])
elapsed = time.perf_counter() - start
# VmHWM: this process's own peak resident set (ru_maxrss would include the parent's pages at fork).
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(result.total.read, result.total.added, elapsed, peak_kb)
"""


def run_import(export: Path, store: Path) -> tuple[int, float, float]:
    """(records, seconds, peak RSS MB) of a fresh import in a child process."""
    store.unlink(missing_ok=True)
    output = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT, str(export), str(store)], check=True,
                            capture_output=True, text=True, cwd=ROOT).stdout.split()
    return int(output[0]), float(output[2]), int(output[3]) / 1024


BASELINE_SCRIPT = """
import ci_gate.vulns.importers.osv, ci_gate.vulns.matching
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def image_with_packages(count: int):  # type: ignore[no-untyped-def]
    from ci_gate.model import Analysis, Distro, ImageIdentity, Location, Package

    generator = random.Random(7)
    types = {"Debian:12": "deb", "Alpine:v3.19": "apk", "PyPI": "python", "npm": "npm", "Maven": "java-archive",
             "Go": "go-module"}
    packages = []
    for number in range(count):
        ecosystem = ("Debian:12", "PyPI", "npm", "Maven", "Go")[number % 5]
        name = package_name(ecosystem, generator.randrange(NAMES_PER_ECOSYSTEM * 2))  # half exist in the store
        version = version_pair(ecosystem, generator)[0]
        purl = ""
        if ecosystem == "Maven":
            group, artifact = name.split(":")
            purl = f"pkg:maven/{group}/{artifact}@{version}"
        elif ecosystem == "Go":
            purl = f"pkg:golang/{name}@v{version}"
        elif ecosystem == "npm":
            purl = f"pkg:npm/{name.replace('@', '%40')}@{version}"
        metadata = {"source": name} if ecosystem == "Debian:12" else {}
        packages.append(Package(name=name.split(":")[-1], version=version, type=types[ecosystem], purl=purl,
                                metadata=metadata, locations=(Location(f"/pkg/{number}", 0),)))
    identity = ImageIdentity(reference="bench", scheme="dir", manifest_digest=None, config_digest=None)
    return Analysis(identity=identity, distro=Distro(id="debian", version_id="12"), packages=tuple(packages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--packages", type=int, default=2_000)
    arguments = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    OUT.mkdir(parents=True, exist_ok=True)
    export = OUT / f"osv-synthetic-{arguments.records}.zip"
    if not export.exists():
        started = time.perf_counter()
        make_export(export, arguments.records)
        size = export.stat().st_size / 1e6
        print(f"generated {export.name} ({size:.1f} MB) in {time.perf_counter() - started:.1f} s")
    store = OUT / "bench-vulns.sqlite"

    baseline_mb = int(subprocess.run([sys.executable, "-c", BASELINE_SCRIPT], check=True, capture_output=True,
                                     text=True, cwd=ROOT).stdout) / 1024
    records, seconds, peak_mb = run_import(export, store)
    print(f"import: {records} records in {seconds:.1f} s = {records / seconds:,.0f} records/s; "
          f"peak RSS {peak_mb:.0f} MB (interpreter + ci_gate alone: {baseline_mb:.0f} MB; target <= 200 MB)")
    print(f"store size on disk: {store.stat().st_size / 1e6:.1f} MB (export zip {export.stat().st_size / 1e6:.1f} MB)")

    started = time.perf_counter()
    again = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT, str(export), str(store)], check=True,
                           capture_output=True, text=True, cwd=ROOT).stdout.split()
    print(f"re-import (idempotent, nothing changes): {float(again[2]):.1f} s, {again[1]} added "
          f"(wall {time.perf_counter() - started:.1f} s)")

    from ci_gate.vulns.matching import match_packages
    from ci_gate.vulns.store import VulnerabilityStore

    analysis = image_with_packages(arguments.packages)
    timings = []
    result = None
    for _ in range(5):
        started = time.perf_counter()
        with VulnerabilityStore(store) as opened:
            result = match_packages(analysis, opened)
        timings.append(time.perf_counter() - started)
    assert result is not None
    print(f"matching {arguments.packages} packages (open store + match): median {statistics.median(timings):.3f} s, "
          f"best {min(timings):.3f} s (target <= 0.5 s); {len(result.matches)} matches, "
          f"{len(result.skipped)} skipped")


if __name__ == "__main__":
    main()
