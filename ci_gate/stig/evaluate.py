"""`evaluate_image`: open the image, materialise its root filesystem, run OpenSCAP, parse the results.

Results are cached by image digest (manifest, layers), datastream content and profile, so a
pipeline that gates and then writes checklists evaluates once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ci_gate.errors import AnalysisError, CiGateError
from ci_gate.fileio import write_atomic
from ci_gate.sources import open_image
from ci_gate.sources.interface import SourceOptions
from ci_gate.stig import oscap
from ci_gate.stig.model import PROFILE_PREFIX, StigEvaluation, StigRule

CACHE_FORMAT = 2
_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
_DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_PROBE_WARNING = ("oscap {version} reads the host's dpkg database, not the image's, under OSCAP_PROBE_ROOT "
                      "(fixed in OpenSCAP 1.4, PR #2046)")


def materialise_parent(image_bytes: int) -> str | None:
    """Where to materialise: $CI_GATE_STIG_TMPDIR, else $TMPDIR when set, else /dev/shm when it has
    room for twice the image (tmpfs: creating thousands of files there is ~10x faster than on a
    CI runner's disk), else the system default."""
    for variable in ("CI_GATE_STIG_TMPDIR", "TMPDIR"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        stats = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize > 2 * image_bytes + 2**26:
            return "/dev/shm"
    except OSError:
        pass
    return None


def stig_cache_dir() -> Path:
    explicit = os.environ.get("CI_GATE_CACHE_DIR")
    base = Path(explicit) if explicit else Path(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "ci-gate"
    return base / "stig"


def digest_index_dir(image_digest: str) -> Path:
    """Where the latest evaluation of each profile for one image digest is kept (read by the stig gate)."""
    return stig_cache_dir() / "by-digest" / hashlib.sha256(image_digest.encode()).hexdigest()[:32]


def _profile_file_name(profile: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", profile.removeprefix(PROFILE_PREFIX)) + ".json"


def record_for_gate(evaluation: StigEvaluation) -> None:
    """Keep `evaluation` as the one the stig gate sees for its image digest and profile."""
    if not evaluation.image_digest:
        return
    try:
        directory = digest_index_dir(evaluation.image_digest)
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / _profile_file_name(evaluation.profile_id), json.dumps(evaluation.to_json()))
    except (OSError, CiGateError):
        pass


def evaluations_for_digest(image_digest: str, profile: str = "") -> list[StigEvaluation]:
    """The recorded evaluations of an image digest (one per profile; only `profile` when given)."""
    directory = digest_index_dir(image_digest)
    if profile:
        wanted = profile if profile.startswith("xccdf_") else PROFILE_PREFIX + profile
        files = [directory / _profile_file_name(wanted)]
    else:
        files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    found = [evaluation for evaluation in map(_load_cached, files) if evaluation is not None]
    return [evaluation for evaluation in found if evaluation.image_digest == image_digest]


def _cache_key(digest: str, layers: str, content: oscap.Content, scanner: str) -> str:
    content_hash = hashlib.sha256(content.datastream.read_bytes()).hexdigest()
    return hashlib.sha256(f"{CACHE_FORMAT}\0{digest}\0{layers}\0{content_hash}\0{content.profile}\0{scanner}"
                          .encode()).hexdigest()


def _load_cached(path: Path) -> StigEvaluation | None:
    try:
        document = json.loads(path.read_text())
        values: list[dict[str, Any]] = [
            {f.name: (tuple(rule[f.name]) if isinstance(rule[f.name], list) else rule[f.name])
             for f in dataclasses.fields(StigRule) if f.name in rule} for rule in document["rules"]]
        rules = [StigRule(**value) for value in values]
        fields = {f.name: document[f.name] for f in dataclasses.fields(StigEvaluation) if f.name != "rules"}
        return StigEvaluation(**fields, rules=rules)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def evaluate_image(reference: str, source: SourceOptions, profile: str = "auto",
                   datastream: Path | None = None, use_cache: bool = True,
                   log: Callable[[str], None] | None = None) -> StigEvaluation:
    from ci_gate.analyze.distro import parse_os_release
    from ci_gate.sources.filesystem import walk_image
    from ci_gate.stig.rootfs import materialized_rootfs

    binary = oscap.oscap_binary()
    version = oscap.oscap_version(binary)
    scanner = "OpenSCAP " + ".".join(map(str, version))
    raw = open_image(reference, source)
    try:
        digest = raw.manifest_digest or raw.config_digest or ""
        layers = ",".join(blob.digest for blob in raw.layers)
        filesystem = walk_image(raw, limits=source.limits, capture_paths=(*_OS_RELEASE, _DPKG_STATUS))
        os_release: dict[str, str] = {}
        for path in _OS_RELEASE:
            text = filesystem.read(path)
            if text:
                os_release = parse_os_release(text.decode("utf-8", "replace"))
                break
        content = oscap.choose_content(os_release, profile, datastream)
        cache_file: Path | None = None
        if use_cache and digest and raw.scheme != "dir":
            cache_file = stig_cache_dir() / f"{_cache_key(digest, layers, content, scanner)}.json"
            cached = _load_cached(cache_file)
            if cached is not None:
                record_for_gate(cached)
                return cached
        warnings = list(raw.warnings)
        dpkg_based = os_release.get("ID") in ("debian", "ubuntu") or "debian" in os_release.get("ID_LIKE", "")
        redecide_packages = version < (1, 4) and dpkg_based
        image_bytes = sum(entry.size for entry in filesystem.iter_entries() if entry.kind == "file")
        parent = materialise_parent(max(image_bytes, filesystem.uncompressed_bytes))
        with materialized_rootfs(filesystem, source.limits, parent_dir=parent) as rootfs, \
                tempfile.TemporaryDirectory(prefix="ci-gate-oscap-") as work:
            if log:
                log(f"materialised {rootfs.files} files, {rootfs.directories} directories, {rootfs.links} links; "
                    f"evaluating {content.profile} of {content.datastream.name}")
            if not rootfs.owners_kept:
                warnings.append("not running as root: file owners in the evaluated tree are the current "
                                "user's, so owner rules are not reliable")
            skipped_devices = sum(1 for line in rootfs.skipped if "device/FIFO" in line)
            if skipped_devices:
                warnings.append(f"{skipped_devices} device nodes/FIFOs were not materialised")
            for line in (line for line in rootfs.skipped if "device/FIFO" not in line):
                warnings.append(f"not materialised: {line}")
            results_path = Path(work) / "results.xml"
            oscap.run_eval(binary, content, rootfs.path, results_path)
            parsed = oscap.parse_results(results_path, content.profile)
            if redecide_packages:
                warnings.extend(_packages_from_catalogue(parsed, filesystem.read(_DPKG_STATUS), Path(work), version,
                                                         content.datastream))
    finally:
        raw.close()
    evaluation = StigEvaluation(
        image=reference, image_digest=digest, datastream=str(content.datastream),
        benchmark_id=parsed.benchmark_id, benchmark_title=parsed.benchmark_title,
        benchmark_version=parsed.benchmark_version, profile_id=content.profile,
        profile_title=parsed.profile_title, scanner=scanner, rules=parsed.rules, warnings=warnings)
    if not parsed.rules:
        raise AnalysisError(f"profile {content.profile} of {content.datastream.name} selects no rules")
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache_file, json.dumps(evaluation.to_json()))
        except (OSError, CiGateError):  # a cache that cannot be written must not fail the evaluation
            pass
    if evaluation.platform_matched:
        record_for_gate(evaluation)
    return evaluation


def _packages_from_catalogue(parsed: oscap.ParsedResults, status: bytes | None, work: Path,
                             version: tuple[int, ...], datastream: Path) -> list[str]:
    """oscap < 1.4 reads the host's dpkg database: re-decide its package rules from the image's own
    (`ci_gate.stig.packages`); the warnings to show."""
    from ci_gate.stig.packages import installed_packages, platform_applicability, redecide

    installed = installed_packages(status.decode("utf-8", "replace")) if status else None
    oval_results = [path for path in sorted(work.glob("*.result.xml")) if "cpe-oval" not in path.name]
    platforms: dict[str, bool | None] = {}
    if any(rule.result != "notapplicable" for rule in parsed.rules):  # the content is for this distro at all
        platforms = platform_applicability(datastream, {rule.rule_id for rule in parsed.rules},
                                           sorted(work.glob("*cpe-oval*.result.xml")), installed)
    decisions = redecide(parsed.rules, oval_results, installed, platforms)
    parsed.rules = decisions.rules
    shown = ".".join(map(str, version))
    notes = [DPKG_PROBE_WARNING.format(version=shown) + (
        f"; ci-gate decided {len(decisions.decided)} package rules from the image's {_DPKG_STATUS}"
        if installed is not None else f"; the image has no readable {_DPKG_STATUS}")]
    if decisions.undecidable:
        notes.append(f"{len(decisions.undecidable)} rules depend on dpkg facts ci-gate cannot decide alone and are "
                     f"notchecked (review manually): {', '.join(decisions.undecidable[:5])}"
                     f"{' ...' if len(decisions.undecidable) > 5 else ''}")
    return notes


def summary_line(evaluation: StigEvaluation) -> str:
    counts = evaluation.counts()
    cats = evaluation.open_by_category()
    parts = ", ".join(f"{count} {result}" for result, count in counts.items())
    return (f"{evaluation.profile_title or evaluation.profile_id} ({evaluation.benchmark_id} "
            f"{evaluation.benchmark_version}): {parts}; open: {cats['CAT I']} CAT I, {cats['CAT II']} CAT II, "
            f"{cats['CAT III']} CAT III")

