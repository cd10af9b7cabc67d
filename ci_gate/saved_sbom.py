"""Analyses saved by `gate --save-sbom DIR`, read back by `ci-gate watch` and `gate --compare-to sbom:FILE`.

One file per image, named by its digest (`sha256-<hex>.json`), holding the analysis JSON that
`ci-gate analyze -o json` prints plus one extra top-level key, `saved` (the tag the gate evaluated
and when), which the analysis reader ignores. Files are written atomically through the one output
writer, so a watch job that reads the folder while a gate writes never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ci_gate.errors import SourceError, UsageError
from ci_gate.fileio import write_output
from ci_gate.model import Analysis, from_dict, to_dict

SAVED_KEY = "saved"
"""The top-level key with the gate's own facts (tag, time) next to the analysis fields."""
MAX_SAVED_BYTES = 512 * 1024 * 1024


def image_digest(analysis: Analysis) -> str:
    """The digest an image is saved under: its manifest digest, else its config digest (the image id)."""
    return analysis.identity.manifest_digest or analysis.identity.config_digest or ""


def file_name(digest: str) -> str:
    """`sha256:abc…` → `sha256-abc….json` (a colon is not portable in file names)."""
    return digest.replace(":", "-") + ".json"


def prepare_folder(folder: Path) -> None:
    """Create the --save-sbom folder, or say in one line why it cannot hold the saved SBOMs.

    `gate` calls this before the image is analysed: a folder that fails only after the reports were
    written would end the run with exit 2, no verdict and reports of a run that failed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--save-sbom {folder} is not a folder: give a folder for the saved SBOMs") from None
    except OSError as error:
        reason = "a parent of it is not a folder" if isinstance(error, NotADirectoryError) else (
            f"cannot create it: {error.strerror or error}")
        raise UsageError(f"--save-sbom {folder}: {reason}; give a writable folder for the saved SBOMs") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--save-sbom {folder} is not writable: give a writable folder for the saved SBOMs")


def save_analysis(analysis: Analysis, folder: Path, tag: str | None = None) -> Path:
    """Write the analysis into `folder` under its digest; returns the file written.

    An image with no digest (a `dir:` root filesystem, some SBOMs) is saved under the sha256 of
    its package list, so the same content always lands in the same file."""
    prepare_folder(folder)
    document: dict[str, Any] = to_dict(analysis)
    digest = image_digest(analysis)
    if not digest:
        packages = json.dumps(document.get("packages", []), sort_keys=True, separators=(",", ":"))
        digest = "sha256:" + hashlib.sha256(packages.encode("utf-8")).hexdigest()
    document[SAVED_KEY] = {"digest": digest, "tag": tag or "",
                           "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return write_output(folder / file_name(digest), json.dumps(document, separators=(",", ":")) + "\n")


def read_document(path: Path) -> dict[str, Any]:
    """The JSON object of a saved file; SourceError with one line when it is not one."""
    try:
        size = path.stat().st_size
        if size > MAX_SAVED_BYTES:
            raise SourceError(f"{path} is {size:,} bytes, more than {MAX_SAVED_BYTES:,}: not a saved SBOM")
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}; check the path") from None
    except (ValueError, RecursionError) as error:
        raise SourceError(f"{path} is not JSON ({type(error).__name__}); give a file written by "
                          "`ci-gate gate --save-sbom DIR`") from None
    if not isinstance(document, dict):
        raise SourceError(f"{path} is not a JSON object; give a file written by `ci-gate gate --save-sbom DIR`")
    return document


def is_analysis_document(document: Mapping[str, Any]) -> bool:
    """Whether a JSON object is ci-gate's analysis JSON (saved or from `analyze -o json`)."""
    return isinstance(document.get("identity"), dict) and isinstance(document.get("packages"), list)


def saved_tag(document: Mapping[str, Any]) -> str:
    """The tag the gate evaluated, else the image's own tag, else its reference."""
    saved = document.get(SAVED_KEY)
    if isinstance(saved, dict) and saved.get("tag"):
        return str(saved["tag"])
    identity = document.get("identity") or {}
    tags = identity.get("repo_tags") or []
    return str(tags[0]) if tags else str(identity.get("reference") or "")


def saved_digest(document: Mapping[str, Any], path: Path) -> str:
    saved = document.get(SAVED_KEY)
    if isinstance(saved, dict) and saved.get("digest"):
        return str(saved["digest"])
    identity = document.get("identity") or {}
    return str(identity.get("manifest_digest") or identity.get("config_digest") or path.stem.replace("-", ":", 1))


def load_analysis(path: Path) -> Analysis:
    """A saved analysis (or `analyze -o json` output), or any SBOM the `sbom:` scheme reads."""
    document = read_document(path)
    if is_analysis_document(document):
        try:
            return from_dict(Analysis, document)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise SourceError(f"{path} is not a valid ci-gate analysis ({type(error).__name__}: {error})") from None
    from ci_gate.sbom.reader import analysis_from_sbom

    return analysis_from_sbom(path)


def saved_files(folder: Path) -> Iterator[Path]:
    """The saved files of a folder, in name order (temporary files of a writer in progress are skipped)."""
    if not folder.is_dir():
        raise UsageError(f"--sbom-dir {folder} is not a folder: give the folder `gate --save-sbom` writes")
    for path in sorted(folder.glob("*.json")):
        if path.is_file() and not path.name.startswith("."):
            yield path
