"""The analysis cache: an image digest analysed once is not analysed again.

Entries live in `$CI_GATE_CACHE_DIR` or `$XDG_CACHE_HOME/ci-gate/analysis` (default
~/.cache/ci-gate/analysis), one JSON file per (image, options) key, written atomically. The key
is the manifest or config digest — both were verified while reading — plus a fingerprint of the
tool version and of every option that changes the result. A `dir:` source has no trustworthy digest
of its content, so it is never cached. A corrupt entry is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import operator
import os
from dataclasses import replace
from pathlib import Path

from ci_gate.fileio import atomic_text_writer
from ci_gate.model import Analysis, FileRecord, from_dict, write_json
from ci_gate.sources.interface import RawImage


def cache_dir() -> Path:
    explicit = os.environ.get("CI_GATE_CACHE_DIR")
    if explicit:
        return Path(explicit) / "analysis"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ci-gate" / "analysis"


def key_for(raw: RawImage, fingerprint: str) -> str | None:
    if raw.scheme == "dir":
        return None
    digest = raw.manifest_digest or raw.config_digest
    if not digest:
        return None
    # Every digest the walk verifies is in the key, each with its algorithm: an entry is stored only
    # after all of them matched, so a wrong blob can never be cached under a right digest.
    layers = ",".join(f"{blob.digest}/{blob.diff_id or ''}" for blob in raw.layers)
    identity = f"{digest}\x00{raw.config_digest or ''}\x00{layers}\x00{fingerprint}"
    return hashlib.sha256(identity.encode()).hexdigest()


CACHE_FORMAT = 3
"""Bumped whenever the layout below changes, or an older entry may be wrong; another format is a miss.
3: entries written before every digest algorithm was verified (a sha512 layer was not) are dropped."""

_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileRecord))


def load(key: str, raw: RawImage | None = None) -> Analysis | None:
    path = cache_dir() / f"{key}.json"
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
        if data.get("format") != CACHE_FORMAT or data.get("file_fields") != list(_FILE_FIELDS):
            return None
        # Files are stored as rows: 100,000 of them load in a tenth of the time dicts would take.
        files = tuple(FileRecord(*row) for row in data["files"])
        analysis = replace(from_dict(Analysis, data["analysis"]), files=files)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if raw is not None:
        identity = replace(analysis.identity, reference=raw.reference, scheme=raw.scheme)
        analysis = replace(analysis, identity=identity)
    return analysis


def store(key: str, analysis: Analysis) -> None:
    """Best effort: a cache that cannot be written only costs time next run."""
    directory = cache_dir()
    with contextlib.suppress(Exception):
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_text_writer(directory / f"{key}.json", 0o600) as out:
            out.write(f'{{"format":{CACHE_FORMAT},"file_fields":{json.dumps(_FILE_FIELDS)},"files":[')
            encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
            row = operator.attrgetter(*_FILE_FIELDS)
            for position, record in enumerate(analysis.files):
                out.write(("," if position else "") + encode(row(record)))
            out.write('],"analysis":')
            write_json(replace(analysis, files=()), out)
            out.write("}")
