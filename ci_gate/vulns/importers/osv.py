"""Import OSV data as published: per-ecosystem `all.zip` exports, folders of OSV JSON, single files.

A CISA KEV catalog (`known_exploited_vulnerabilities.json`) among them is recognised by its shape
and stored as the store's KEV catalog (`ci_gate.vulns.importers.kev`).

Streaming: one document is parsed at a time (a zip member, a file), records are written in
batches, so memory stays flat whatever the export size. The whole import is one store
transaction: a corrupt archive, an error or an interruption leaves the previous store intact.
Documents that are not valid JSON or not usable OSV records are skipped and counted.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_gate.errors import VulnerabilityDataError
from ci_gate.vulns.importers.kev import import_catalog, is_kev_catalog
from ci_gate.vulns.importers.zipstream import ZipFormatError, read_members
from ci_gate.vulns.records import InvalidRecord, from_osv, normalize_time
from ci_gate.vulns.store import ImportCounts, utc_now
from ci_gate.vulns.store_writer import StoreWriter
from ci_gate.vulns.versions import scheme_for_ecosystem

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""A single OSV document larger than this is refused (a decompression bomb, not an advisory)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What `import_paths` did, per source and in total."""

    sources: tuple[tuple[str, ImportCounts], ...]
    store_path: str

    @property
    def total(self) -> ImportCounts:
        total = ImportCounts()
        for _, counts in self.sources:
            total.read += counts.read
            total.added += counts.added
            total.updated += counts.updated
            total.unchanged += counts.unchanged
            total.skipped += counts.skipped
            total.unknown_ecosystems += counts.unknown_ecosystems
            total.newest_modified = max(total.newest_modified, counts.newest_modified)
            for problem in counts.problems or []:
                total.problems = [*(total.problems or []), problem][:20]
        return total


def _documents_from_zip(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    """(member name, raw bytes or None, problem) for each .json member of an OSV zip, in constant memory."""
    try:
        for member, data in read_members(path, MAX_DOCUMENT_BYTES):
            if not member.name.endswith(".json"):
                continue
            if data is None:
                yield member.name, None, f"{member.name}: larger than {MAX_DOCUMENT_BYTES} bytes"
                continue
            yield member.name, data, ""
    except ZipFormatError as error:
        # A damaged archive is refused whole: importing part of it would look like a complete update.
        if "end-of-central-directory" in str(error) or "beyond the end" in str(error):
            raise VulnerabilityDataError(
                f"{path} is not a valid zip archive ({error}): fetch it again") from None
        raise VulnerabilityDataError(f"{path} is corrupt ({error}); fetch it again") from None
    except OSError as error:
        raise VulnerabilityDataError(f"cannot read {path}: {error.strerror}") from None


def _documents_from_folder(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    for file in sorted(path.rglob("*.json")):
        if not file.is_file():
            continue
        yield from _documents_from_file(file)


def _documents_from_file(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            yield str(path), None, f"{path}: larger than {MAX_DOCUMENT_BYTES} bytes"
            return
        yield str(path), path.read_bytes(), ""
    except OSError as error:
        yield str(path), None, f"{path}: {error.strerror}"


def documents(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    """The raw documents of one source path (zip, folder or JSON file)."""
    if path.is_dir():
        return _documents_from_folder(path)
    if not path.exists():
        raise VulnerabilityDataError(
            f"{path} does not exist: give an OSV all.zip, a folder of OSV JSON or a .json file")
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
        return _documents_from_zip(path)
    if path.suffix.lower() == ".json":
        return _documents_from_file(path)
    raise VulnerabilityDataError(f"{path} is not a zip, a folder or a .json file: give OSV data as published")


_BATCH = 1000


def _import_one(writer: StoreWriter, location: str, source: Iterator[tuple[str, bytes | None, str]],
                imported_at: str, ecosystems: Sequence[str]) -> ImportCounts:
    counts = ImportCounts()
    osv_documents = kev_catalogs = 0
    wanted = {e.lower() for e in ecosystems}
    batch: list[tuple[str, str, Any]] = []

    def convert(items: list[tuple[str, str, Any]]) -> None:
        # Incremental: a record the store already has at this `modified` is not even built.
        stored = writer.stored_modified([document["id"].strip() for _, _, document in items])
        for name, modified, document in items:
            previous = stored.get(document["id"].strip())
            if previous is not None and previous >= modified:
                counts.read += 1
                counts.unchanged += 1
                counts.newest_modified = max(counts.newest_modified, modified)
                continue
            try:
                record = from_osv(document, source=location, imported_at=imported_at)
            except InvalidRecord as error:
                counts.note(f"{name}: {error}")
                continue
            except (TypeError, ValueError, AttributeError) as error:
                # A shape from_osv did not foresee: skip the document, never abort the import.
                counts.note(f"{name}: not a usable OSV record ({type(error).__name__}: {error})")
                continue
            if wanted and not any(a.ecosystem.lower() in wanted or a.ecosystem.split(":", 1)[0].lower() in wanted
                                  for a in record.affected):
                continue
            counts.unknown_ecosystems += sum(1 for a in record.affected
                                             if scheme_for_ecosystem(a.ecosystem) == "generic")
            writer.add(record, counts)

    for name, data, problem in source:
        if data is None:
            counts.note(problem)
            continue
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            counts.note(f"{name}: not valid JSON ({error})")
            continue
        if is_kev_catalog(document):
            import_catalog(writer, name, document, location, counts)
            kev_catalogs += 1
            continue
        osv_documents += 1
        try:
            if not isinstance(document, dict) or not isinstance(document.get("id"), str):
                raise InvalidRecord("missing id")
            modified = normalize_time(document.get("modified"), "modified", required=True)
        except InvalidRecord as error:
            counts.note(f"{name}: {error}")
            continue
        batch.append((name, modified, document))
        if len(batch) >= _BATCH:
            convert(batch)
            batch = []
    if batch:
        convert(batch)
    writer.flush(counts)
    # A source that held only a KEV catalog is no vulnerability sync (stale_feed_data must not reset).
    writer.record_source(location, counts, vulnerability_data=osv_documents > 0 or not kev_catalogs)
    return counts


def import_paths(paths: Sequence[Path | str], store_path: Path | str | None = None,
                 ecosystems: Sequence[str] = (), location_names: Sequence[str] | None = None,
                 progress: Callable[[str, ImportCounts], None] | None = None) -> ImportResult:
    """Import every path into the store in ONE transaction; all or nothing.

    `ecosystems` keeps only records affecting these ecosystems (a family such as `Alpine` or an
    exact `Alpine:v3.19`). `location_names` replaces the recorded source names (e.g. the URLs a
    download came from).
    """
    if not paths:
        raise VulnerabilityDataError("nothing to import: give at least one OSV all.zip, folder or .json file")
    results: list[tuple[str, ImportCounts]] = []
    # Open every source up front so a missing path fails before the store is touched.
    sources = [(Path(p), documents(Path(p))) for p in paths]
    with StoreWriter(store_path) as writer:
        # Stamped once the write lock is held: imports then commit in the order of their stamps, which
        # re-matching relies on (`changed_since`); an import that waited for another's lock would else
        # commit records older than a stamp a re-match in between already moved past.
        imported_at = utc_now()
        for index, (path, source) in enumerate(sources):
            location = location_names[index] if location_names else str(path.resolve())
            counts = _import_one(writer, location, source, imported_at, ecosystems)
            results.append((location, counts))
            if progress:
                progress(location, counts)
        store = str(writer.path)
    return ImportResult(tuple(results), store)
