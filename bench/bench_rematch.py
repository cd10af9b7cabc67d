#!/usr/bin/env python3
"""Incremental re-match (`ci-gate watch`) against a full re-match, after a daily-OSV-sized delta.

Builds, deterministically (one seed):
* a vulnerability store of 20,000 OSV records over Debian:12, PyPI and npm (every record with a CVE alias);
* N saved analyses (default 10,000 images x 200 packages: 100 deb packages from one of 20 Debian
  12 bases, 50 PyPI and 50 npm packages drawn with a heavy-tailed popularity), written as
  `gate --save-sbom` writes them;
* a delta of 1,000 records (600 existing records modified, one in four with its fixed version moved;
  400 new, 15 % of them about popular packages).

Then measures, each step in its own process (peak RSS from wait4):
1. baseline: the first `watch` run indexes every saved SBOM and records the matches;
2. the delta is imported with `db import` semantics (one transaction);
3. incremental: the re-match after the import (the figure the target is about: ≤ 60 s, ≤ 300 MB);
4. naive: every saved SBOM loaded and matched in full, as a re-match without the index would
   (`--naive-images` limits it to a prefix and scales the time linearly; default all);
5. check: for a sample of images, the naive before/after difference (old store copy vs new store)
   must equal what the incremental run reported.

    python bench/bench_rematch.py [--images 10000] [--naive-images N] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SEED = 20251203
BASES = 20
DEB_POOL = 400
LANGUAGE_POOL = 3000
UNIVERSE = 12000
STORE_RECORDS = 20000
DELTA_UPDATED = 600
DELTA_NEW = 400


def _version(rng: random.Random) -> str:
    return f"{rng.randint(0, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"


def _record(identifier: str, ecosystem: str, name: str, fixed: str, modified: str, number: int) -> dict[str, Any]:
    return {"id": identifier, "modified": modified, "published": "2025-01-01T00:00:00Z",
            "aliases": [f"CVE-2025-{number:05d}"], "summary": f"{name} flaw",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                          "ranges": [{"type": "ECOSYSTEM",
                                      "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}


def _name(ecosystem: str, index: int) -> str:
    return {"Debian:12": f"debsrc{index}", "PyPI": f"pylib{index}", "npm": f"jslib{index}"}[ecosystem]


def _deb_version(base: int, index: int) -> str:
    return f"{index % 5}.{(index + base) % 3}.0-1"


def _record_version(ecosystem: str, rng: random.Random) -> str:
    return f"{rng.randint(0, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}" + ("-1" if ecosystem == "Debian:12" else "")


def _popular(rng: random.Random, pool: int) -> int:
    """A heavy-tailed pick: a few packages are in most images, most in few."""
    return min(pool - 1, int(rng.paretovariate(1.1)) - 1)


def build_store_zip(folder: Path, rng: random.Random) -> tuple[Path, list[tuple[str, str, str, int]]]:
    ecosystems = ("Debian:12", "PyPI", "npm")
    records = []
    with zipfile.ZipFile(folder / "all.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for number in range(STORE_RECORDS):
            ecosystem = ecosystems[number % 3]
            # Half the records about the popular part of the pools, half about the long tail.
            index = rng.randint(0, DEB_POOL if ecosystem == "Debian:12" else LANGUAGE_POOL) if number % 2 \
                else rng.randint(0, UNIVERSE)
            name = _name(ecosystem, index)
            identifier = f"BENCH-{number:06d}"
            archive.writestr(f"{identifier}.json", json.dumps(_record(
                identifier, ecosystem, name, _record_version(ecosystem, rng), "2025-01-01T00:00:00Z", number)))
            records.append((identifier, ecosystem, name, number))
    return folder / "all.zip", records


def build_delta(folder: Path, records: list[tuple[str, str, str, int]], rng: random.Random) -> Path:
    target = folder / "delta"
    target.mkdir()
    archive = zipfile.ZipFile(folder / "all.zip")
    for identifier, ecosystem, name, number in rng.sample(records, DELTA_UPDATED):
        # Most daily modifications add references or scores; about one in four moves the fixed version.
        stored = json.loads(archive.read(f"{identifier}.json"))
        fixed = stored["affected"][0]["ranges"][0]["events"][1]["fixed"]
        if rng.random() < 0.25:
            fixed = _record_version(ecosystem, rng)
        (target / f"{identifier}.json").write_text(json.dumps(_record(
            identifier, ecosystem, name, fixed, "2025-06-01T00:00:00Z", number)))
    ecosystems = ("Debian:12", "PyPI", "npm")
    for offset in range(DELTA_NEW):
        ecosystem = ecosystems[offset % 3]
        pool = DEB_POOL if ecosystem == "Debian:12" else LANGUAGE_POOL
        index = _popular(rng, pool) if rng.random() < 0.15 else rng.randint(0, UNIVERSE)
        number = STORE_RECORDS + offset
        identifier = f"BENCH-{number:06d}"
        (target / f"{identifier}.json").write_text(json.dumps(_record(
            identifier, ecosystem, _name(ecosystem, index), _record_version(ecosystem, rng), "2025-06-01T00:00:00Z",
            number)))
    return target


def build_sboms(folder: Path, images: int, rng: random.Random) -> None:
    folder.mkdir()
    distro = {"id": "debian", "version_id": "12", "name": "Debian GNU/Linux", "pretty_name": "Debian GNU/Linux 12",
              "version_codename": "bookworm"}
    base_packages = []
    for base in range(BASES):
        picks = sorted(rng.sample(range(DEB_POOL), 100))
        base_packages.append([
            {"name": _name("Debian:12", i), "version": _deb_version(base, i), "type": "deb",
             "purl": f"pkg:deb/debian/{_name('Debian:12', i)}@{_deb_version(base, i)}?distro=debian-12",
             "licenses": [], "locations": [{"path": "/var/lib/dpkg/status", "layer_index": 0}],
             "found_by": "dpkg-db-cataloger", "metadata": {"source": _name("Debian:12", i)}, "origin": "base"}
            for i in picks])
    for number in range(images):
        packages = list(base_packages[number % BASES])
        for ecosystem, kind, purl_type, path in (("PyPI", "python", "pypi", "/usr/lib/python3/site-packages"),
                                                 ("npm", "npm", "npm", "/app/node_modules")):
            chosen: set[int] = set()
            while len(chosen) < 50:
                chosen.add(_popular(rng, LANGUAGE_POOL))
            for index in sorted(chosen):
                name = _name(ecosystem, index)
                version = f"{index % 5}.{rng.randint(0, 3)}.0"
                packages.append({"name": name, "version": version, "type": kind,
                                 "purl": f"pkg:{purl_type}/{name}@{version}", "licenses": ["MIT"],
                                 "locations": [{"path": f"{path}/{name}", "layer_index": 1}],
                                 "found_by": f"{kind}-cataloger", "metadata": {}, "origin": "app"})
        digest = f"sha256:{number:064x}"
        document = {"identity": {"reference": f"registry:registry.example/app{number}:1", "scheme": "registry",
                                 "manifest_digest": digest, "config_digest": digest,
                                 "repo_tags": [f"registry.example/app{number}:1"]},
                    "distro": distro, "packages": packages,
                    "saved": {"digest": digest, "tag": f"registry.example/app{number}:1", "saved_at": "2025-01-01"}}
        (folder / (digest.replace(":", "-") + ".json")).write_text(json.dumps(document, separators=(",", ":")))


# --- the measured steps (each run in a child process) --------------------------------------------


def step_watch(work: Path) -> dict[str, Any]:
    from ci_gate.rematch import rematch_folder
    from ci_gate.vulns.store import VulnerabilityStore

    started = time.perf_counter()
    with VulnerabilityStore(work / "vulns.sqlite") as store:
        state, result = rematch_folder(work / "state.sqlite", work / "sboms", store)
    state.commit()
    seconds = time.perf_counter() - started
    diffs = {d.digest: sorted((kind, e["CVE_ID"], e["Package_Name"]) for kind in ("added", "updated", "removed")
                              for e in d.result()[kind]) for d in result.diffs}
    (work / "incremental-diffs.json").write_text(json.dumps(diffs))
    return {"seconds": seconds, "images": result.images, "changed_records": result.changed_records,
            "rematched_variants": result.rematched_variants, "events": len(result.diffs),
            "entries": sum(len(v) for v in diffs.values())}


def _naive_summaries(path: Path, store: Any) -> dict[str, dict[str, Any]]:
    from ci_gate.saved_sbom import load_analysis
    from ci_gate.server.shapes import vulnerability_item
    from ci_gate.vulns.engine_summary import identity, summary
    from ci_gate.vulns.matching import match_packages

    analysis = load_analysis(path)
    result = match_packages(analysis, store)
    items = [vulnerability_item(m, False, False) for m in result.matches]
    return {identity(i): summary(i) for i in items}


def step_naive(work: Path, limit: int) -> dict[str, Any]:
    from ci_gate.vulns.store import VulnerabilityStore

    files = sorted((work / "sboms").glob("*.json"))[:limit]
    started = time.perf_counter()
    matched = 0
    with VulnerabilityStore(work / "vulns.sqlite") as store:
        for path in files:
            matched += len(_naive_summaries(path, store))
    return {"seconds": time.perf_counter() - started, "images": len(files), "matches": matched}


def step_check(work: Path, sample: int) -> dict[str, Any]:
    from ci_gate.vulns.engine_summary import diff
    from ci_gate.vulns.store import VulnerabilityStore

    incremental = json.loads((work / "incremental-diffs.json").read_text())
    files = sorted((work / "sboms").glob("*.json"))
    rng = random.Random(SEED + 1)
    picked = rng.sample(files, min(sample, len(files)))
    # Include images the incremental run reported, so the check covers both kinds.
    reported = [work / "sboms" / (d.replace(":", "-") + ".json") for d in list(incremental)[: sample // 2]]
    mismatches = 0
    with VulnerabilityStore(work / "before.sqlite") as before, VulnerabilityStore(work / "vulns.sqlite") as after:
        for path in {*picked, *reported}:
            changes = diff(_naive_summaries(path, before), _naive_summaries(path, after))
            expected = sorted((kind, e["CVE_ID"], e["Package_Name"]) for kind in ("added", "updated", "removed")
                              for e in changes[kind])
            digest = path.stem.replace("-", ":", 1)
            if expected != [tuple(x) for x in incremental.get(digest, [])]:
                mismatches += 1
    return {"checked": len({*picked, *reported}), "mismatches": mismatches}


def _child(step: str, work: Path, argument: int) -> dict[str, Any]:
    """Run one step in a fresh process; its result and peak RSS (MB)."""
    import subprocess

    command = [sys.executable, __file__, "--step", step, "--work", str(work), "--argument", str(argument)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(
        Path(__file__).resolve().parent.parent)})
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"step {step} failed ({status})")
    result: dict[str, Any] = json.loads(output)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--naive-images", type=int, default=0, help="images the naive re-match covers (0: all)")
    parser.add_argument("--check-images", type=int, default=200)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--step")
    parser.add_argument("--argument", type=int, default=0)
    arguments = parser.parse_args()
    if arguments.step:
        steps = {"watch": lambda: step_watch(arguments.work), "naive": lambda: step_naive(arguments.work,
                                                                                           arguments.argument),
                 "check": lambda: step_check(arguments.work, arguments.argument)}
        print(json.dumps(steps[arguments.step]()))
        return

    from ci_gate.vulns.importers.osv import import_paths

    work = arguments.work or Path(tempfile.mkdtemp(prefix="ci-gate-bench-rematch-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rng = random.Random(SEED)
        started = time.perf_counter()
        archive, records = build_store_zip(work, rng)
        import_paths([archive], work / "vulns.sqlite")
        build_sboms(work / "sboms", arguments.images, rng)
        delta = build_delta(work, records, rng)
        print(f"setup: {arguments.images} images x 200 packages, {STORE_RECORDS} records, delta "
              f"{DELTA_UPDATED} updated + {DELTA_NEW} new records ({time.perf_counter() - started:.1f} s)")

        baseline = _child("watch", work, 0)
        print(f"baseline (first watch run, indexes every SBOM): {baseline['seconds']:.1f} s, "
              f"peak RSS {baseline['peak_rss_mb']:.0f} MB, {baseline['images']} images")
        shutil.copy(work / "vulns.sqlite", work / "before.sqlite")
        started = time.perf_counter()
        import_paths([delta], work / "vulns.sqlite")
        print(f"db import of the delta: {time.perf_counter() - started:.1f} s")

        incremental = _child("watch", work, 0)
        print(f"incremental re-match: {incremental['seconds']:.2f} s, peak RSS {incremental['peak_rss_mb']:.0f} MB; "
              f"{incremental['changed_records']} changed records, {incremental['rematched_variants']} package "
              f"variants re-matched, {incremental['events']} images with a vuln_update "
              f"({incremental['entries']} entries)")

        limit = arguments.naive_images or arguments.images
        naive = _child("naive", work, limit)
        full_seconds = naive["seconds"] * arguments.images / max(1, naive["images"])
        scaled = "" if naive["images"] == arguments.images else \
            f" (measured on {naive['images']} images, scaled linearly)"
        print(f"naive full re-match: {full_seconds:.1f} s{scaled}, peak RSS {naive['peak_rss_mb']:.0f} MB")
        print(f"ratio full / incremental: {full_seconds / incremental['seconds']:.1f}x")

        check = _child("check", work, arguments.check_images)
        print(f"check: {check['checked']} images re-matched naively before and after the delta, "
              f"{check['mismatches']} differ from the incremental result")
        target = incremental["seconds"] <= 60 and incremental["peak_rss_mb"] <= 300
        print(f"target (≤ 60 s, ≤ 300 MB on this machine, {os.cpu_count()} cores): {'met' if target else 'NOT met'}")
    finally:
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
