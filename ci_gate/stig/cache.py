"""The STIG result cache: looked up before any layer is read, keyed by everything that changes a result.

A result depends on the image (its manifest, config and layer digests: the bytes oscap is shown),
the SCAP content (the datastream file's path and SHA-256, the profile), the scanner (oscap's path
and version), ci-gate itself (its version and `CACHE_FORMAT`: the parsing and the dpkg re-decision
are ci-gate's) and whether owners could be kept (only root can chown the tree). Which datastream
and profile `--profile auto` means depends on the image's /etc/os-release, known only after the
walk; so the first evaluation of a request also records the content it resolved to (keyed by the
image and the request as given), and a later run reads that record, hashes that datastream as it is
now and looks the result up, without inflating a layer. A changed or removed datastream file gives
another key, or none: a miss, and the evaluation runs.

Entries are trusted only when this user wrote them: the folders are created private (0700) and a
file read back must be a regular file owned by the effective user in a folder it owns, neither
writable by group or others. Keys are predictable, so anyone who could write into a shared cache
folder could otherwise plant a passing result for an image; such an entry is a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ci_gate
from ci_gate.errors import CiGateError
from ci_gate.private_files import make_private_dir, read_trusted, write_private
from ci_gate.sources.interface import RawImage
from ci_gate.stig.model import StigEvaluation, StigRule
from ci_gate.stig.oscap import Content

CACHE_FORMAT = 3
"""Raised when what a cached evaluation holds, or how it is keyed, changes."""


def stig_cache_dir() -> Path:
    explicit = os.environ.get("CI_GATE_CACHE_DIR")
    base = Path(explicit) if explicit else Path(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "ci-gate"
    return base / "stig"


@dataclass(frozen=True, slots=True)
class Request:
    """One evaluation as asked: the image and every option and circumstance that changes its result."""

    image: tuple[str, ...]
    """Manifest digest, config digest, then each layer's blob digest and diff_id."""
    profile: str
    """As given: `auto`, a short name or an XCCDF id."""
    datastream: str
    """The absolute path given with --datastream; empty for the SCAP Security Guide content."""
    content_dir: str
    """Where the SSG content for the image's distribution is looked up."""
    scanner: str
    """The oscap binary and its version."""
    owners_kept: bool
    """Running as root: the tree has the image's owners (else the owner rules are not reliable)."""

    def key(self) -> str:
        return _digest_of(CACHE_FORMAT, ci_gate.__version__, dataclasses.asdict(self))


def image_identity(raw: RawImage) -> tuple[str, ...] | None:
    """What identifies an image's bytes, or None for an image that is not content-addressed (`dir:`)."""
    if raw.scheme == "dir" or not (raw.manifest_digest or raw.config_digest):
        return None
    return (raw.manifest_digest or "", raw.config_digest or "",
            *(part for blob in raw.layers for part in (blob.digest, blob.diff_id or "")))


def _digest_of(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _resolution_file(request: Request) -> Path:
    return stig_cache_dir() / "content" / f"{request.key()}.json"


def result_file(request: Request, content: Content) -> Path | None:
    """Where the result of `request` evaluated with `content` (as the file is now) is kept; None when
    the datastream cannot be read (then nothing is cached: the evaluation says what is wrong). Taken
    before oscap reads the file, so a file replaced during the run keeps the result under the content
    that was evaluated."""
    content_hash = hashlib.sha256()
    try:
        with content.datastream.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                content_hash.update(chunk)
    except OSError:
        return None
    return stig_cache_dir() / (_digest_of(request.key(), str(content.datastream), content_hash.hexdigest(),
                                          content.profile, content.product) + ".json")


def lookup(request: Request) -> StigEvaluation | None:
    """The cached result of `request`, found without reading the image's layers; None on a miss."""
    try:
        recorded = json.loads(read_trusted(_resolution_file(request)))
        content = Content(Path(recorded["datastream"]), str(recorded["profile"]), str(recorded["product"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    found = result_file(request, content)
    return None if found is None else load_evaluation(found)


def store(request: Request, content: Content, evaluation: StigEvaluation, found: Path | None) -> None:
    """Keep `evaluation` at `found` (`result_file` as it was before the evaluation) and the content
    `request` resolved to; a cache that cannot be written must not fail the evaluation."""
    if found is None:
        return
    try:
        resolution = _resolution_file(request)
        if not (make_private_dir(found.parent) and make_private_dir(resolution.parent)):
            return
        write_private(found, json.dumps(evaluation.to_json()))
        write_private(resolution, json.dumps({"datastream": str(content.datastream), "profile": content.profile,
                                              "product": content.product}))
    except (OSError, CiGateError):
        pass


def load_evaluation(path: Path) -> StigEvaluation | None:
    """An evaluation as `StigEvaluation.to_json` wrote it, or None when the file is missing, unreadable or
    not this user's own (`read_trusted`)."""
    try:
        document = json.loads(read_trusted(path))
        values: list[dict[str, Any]] = [
            {f.name: (tuple(rule[f.name]) if isinstance(rule[f.name], list) else rule[f.name])
             for f in dataclasses.fields(StigRule) if f.name in rule} for rule in document["rules"]]
        rules = [StigRule(**value) for value in values]
        fields = {f.name: document[f.name] for f in dataclasses.fields(StigEvaluation) if f.name != "rules"}
        return StigEvaluation(**fields, rules=rules)
    except (OSError, ValueError, KeyError, TypeError):
        return None
