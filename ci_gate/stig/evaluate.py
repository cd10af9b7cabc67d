"""`evaluate_image`: open the image, materialise its root filesystem, run OpenSCAP, parse the results.

Results are cached (`ci_gate.stig.cache`) and looked up before any layer is read, so a pipeline
that gates and then writes checklists evaluates once, and the second run inflates nothing.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from ci_gate.errors import AnalysisError, CiGateError
from ci_gate.private_files import make_private_dir, write_private
from ci_gate.sources import open_image
from ci_gate.sources.interface import RawImage, SourceOptions
from ci_gate.stig import cache, oscap
from ci_gate.stig.cache import load_evaluation, stig_cache_dir
from ci_gate.stig.model import PROFILE_PREFIX, StigEvaluation

__all__ = ["digest_index_dir", "evaluate_image", "evaluations_for_digest", "materialise_parent", "record_for_gate",
           "stig_cache_dir", "summary_line"]

_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
_DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_PROBE_WARNING = ("oscap {version} reads the host's dpkg database, not the image's, under OSCAP_PROBE_ROOT "
                      "(fixed in OpenSCAP 1.4, PR #2046)")
INFLATION_ESTIMATE = 4
"""Uncompressed bytes per stored byte assumed for a layer before it is read (a root filesystem
gzips about 3:1); runs of zeros, the usual exception, are written as holes and cost no space."""
_SHM = "/dev/shm"


def materialise_parent(image_bytes: int) -> str | None:
    """Where to materialise: $CI_GATE_STIG_TMPDIR, else $TMPDIR when set, else /dev/shm when it has
    room for twice the image (tmpfs: creating thousands of files there is ~10x faster than on a
    CI runner's disk), else the system default."""
    for variable in ("CI_GATE_STIG_TMPDIR", "TMPDIR"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        stats = os.statvfs(_SHM)
        if os.access(_SHM, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize > 2 * image_bytes + 2**26:
            return _SHM
    except OSError:
        pass
    return None


def digest_index_dir(image_digest: str) -> Path:
    """Where the latest evaluation of each profile for one image digest is kept (read by the stig gate)."""
    return stig_cache_dir() / "by-digest" / hashlib.sha256(image_digest.encode()).hexdigest()[:32]


def _profile_file_name(profile: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", profile.removeprefix(PROFILE_PREFIX)) + ".json"


def record_for_gate(evaluation: StigEvaluation) -> None:
    """Keep `evaluation` as the one the stig gate sees for its image digest and profile (only one whose
    content matched the image: a profile that excluded every rule evaluated nothing)."""
    if not evaluation.image_digest or not evaluation.platform_matched:
        return
    try:
        directory = digest_index_dir(evaluation.image_digest)
        if not make_private_dir(directory):
            return
        write_private(directory / _profile_file_name(evaluation.profile_id), json.dumps(evaluation.to_json()))
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
    found = [evaluation for evaluation in map(load_evaluation, files) if evaluation is not None]
    return [evaluation for evaluation in found if evaluation.image_digest == image_digest]


def evaluate_image(reference: str, source: SourceOptions, profile: str = "auto",
                   datastream: Path | None = None, use_cache: bool = True,
                   log: Callable[[str], None] | None = None) -> StigEvaluation:
    """Evaluate `reference` with `profile` of the content (auto: SSG's for its distribution); a cached
    result of the same request is answered after reading the manifest and config only."""
    binary = oscap.oscap_binary()
    version = oscap.oscap_version(binary)
    scanner = "OpenSCAP " + ".".join(map(str, version))
    raw = open_image(reference, source)
    try:
        identity = cache.image_identity(raw) if use_cache else None
        request = None if identity is None else cache.Request(
            image=identity, profile=profile, datastream=str(datastream.absolute()) if datastream else "",
            content_dir=str(oscap.SSG_CONTENT_DIR.absolute()), scanner=f"{binary} {scanner}",
            owners_kept=os.geteuid() == 0)
        cached = cache.lookup(request) if request is not None else None
        if cached is not None:
            if log:
                log(f"the evaluation of {cached.image_digest} with {cached.profile_id} is cached; --no-cache "
                    "evaluates again")
            return _reused(cached, reference)
        # The tree goes to tmpfs when it has room for the estimated image; if the estimate was short
        # and tmpfs fills up, once more on disk.
        parent = materialise_parent(sum(blob.size for blob in raw.layers) * INFLATION_ESTIMATE)
        arguments = (raw, reference, source, profile, datastream, binary, version, scanner, request, log)
        try:
            return _evaluate(*arguments, parent=parent)
        except OSError as error:
            if parent != _SHM or error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            return _evaluate(*arguments, parent=None)
    finally:
        raw.close()


def _reused(cached: StigEvaluation, reference: str) -> StigEvaluation:
    """A cached evaluation shown for `reference` (the same digest may be named another way)."""
    evaluation = dataclasses.replace(cached, image=reference)
    record_for_gate(evaluation)
    return evaluation


def _evaluate(raw: RawImage, reference: str, source: SourceOptions, profile: str, datastream: Path | None,
              binary: str, version: tuple[int, ...], scanner: str, request: cache.Request | None,
              log: Callable[[str], None] | None, parent: str | None) -> StigEvaluation:
    from ci_gate.analyze.distro import parse_os_release
    from ci_gate.stig.rootfs import materialized_image

    digest = raw.manifest_digest or raw.config_digest or ""
    warnings = list(raw.warnings)
    materialised = materialized_image(raw, source.limits, parent_dir=parent, capture_paths=(*_OS_RELEASE,
                                                                                             _DPKG_STATUS))
    with materialised as rootfs, tempfile.TemporaryDirectory(prefix="ci-gate-oscap-") as work:
        os_release: dict[str, str] = {}
        for path in _OS_RELEASE:
            if path in rootfs.captured:
                os_release = parse_os_release(rootfs.captured[path].decode("utf-8", "replace"))
                break
        content = oscap.choose_content(os_release, profile, datastream)
        found = cache.result_file(request, content) if request is not None else None
        if request is not None and found is not None and (cached := load_evaluation(found)) is not None:
            cache.store(request, content, cached, found)  # the resolution record, for a run that reads no layer
            return _reused(cached, reference)
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
        dpkg_based = os_release.get("ID") in ("debian", "ubuntu") or "debian" in os_release.get("ID_LIKE", "")
        if version < (1, 4) and dpkg_based:
            warnings.extend(_packages_from_catalogue(parsed, rootfs.captured.get(_DPKG_STATUS), Path(work),
                                                     version, content.datastream))
    evaluation = StigEvaluation(
        image=reference, image_digest=digest, datastream=str(content.datastream),
        benchmark_id=parsed.benchmark_id, benchmark_title=parsed.benchmark_title,
        benchmark_version=parsed.benchmark_version, profile_id=content.profile,
        profile_title=parsed.profile_title, scanner=scanner, rules=parsed.rules, warnings=warnings)
    if not parsed.rules:
        raise AnalysisError(f"profile {content.profile} of {content.datastream.name} selects no rules")
    if request is not None:
        cache.store(request, content, evaluation, found)
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

