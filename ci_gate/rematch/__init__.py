"""Incremental re-match: which stored images gained, lost or changed vulnerabilities after an import.

After `ci-gate db import|update`, every image gated earlier may have new vulnerabilities. Matching
every package of every stored SBOM again is the naive way; this engine re-matches only what the
import can have changed:

* The store says which records were written since the last run (`VulnerabilityStore.changed_since`,
  by their `imported_at`) and which (ecosystem, normalised name) keys they affect now.
* Packages are indexed by their *variant*: the distribution plus what matching reads of a package
  (type, name, version, purl, source/origin/epoch metadata). Thousands of images built on the same
  base share a few thousand variants, so a package is matched once per variant, not once per image.
* A variant is re-matched when its lookup key is among the changed keys, or when it matched one of
  the changed records before (a record that no longer names it, or was withdrawn), or a record that
  shares a CVE with a changed one (matches borrow CVSS scores across such records), or a CVE whose
  CISA KEV listing changed.
* The variant's old and new matches are compared, and the difference is fanned out to the images
  that hold the variant: added / updated / removed vulnerabilities per image, in anchore-engine's
  `vuln_update` shape (`summary`, `identity`, `diff` below: VulnerabilitySummary items keyed by
  vulnerability, feed group, package, version and path, as `catalog/utils.py
  diff_image_vulnerabilities`), each with a `KEV` flag.

The index and the last matches live in one SQLite state file (`ci-gate watch --state`; `ci-gate serve`
keeps its own in the data dir, `ci_gate.server.vuln_watch`). A run is
one transaction: `RematchState.commit()` after the events were delivered, `rollback()` when they
were not, so the next run finds the same differences again (at-least-once delivery). Images seen
for the first time are matched as a baseline and produce no event, as anchore-engine does for a
tag it first looks at.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ci_gate.errors import CiGateError, UsageError
from ci_gate.rematch.variants import (
    VariantMatches,
    is_kev,
    lookup_keys,
    match_ids,
    match_variants,
    package_location,
    variant_body,
)
from ci_gate.saved_sbom import read_document, saved_digest, saved_files, saved_tag
from ci_gate.server.shapes import vulnerability_item
from ci_gate.vulns.engine_summary import diff, identity, summary
from ci_gate.vulns.store import VulnerabilityStore, roll_back
from ci_gate.vulns.vex import VexDocumentSet

STATE_SCHEMA_VERSION = "1"
_PATH_PLACEHOLDER = ""
"""Matches are stored per variant: the image's own path is not part of a VulnerabilitySummary."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY, digest TEXT NOT NULL, tag TEXT NOT NULL, file TEXT UNIQUE NOT NULL,
    fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (id INTEGER PRIMARY KEY, body TEXT UNIQUE NOT NULL, matched INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS variant_keys (ecosystem TEXT NOT NULL, name TEXT NOT NULL, variant_id INTEGER NOT NULL,
    PRIMARY KEY (ecosystem, name, variant_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS variant_keys_by_variant ON variant_keys (variant_id);
CREATE TABLE IF NOT EXISTS members (variant_id INTEGER NOT NULL, image_id INTEGER NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (variant_id, image_id, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_image ON members (image_id);
CREATE TABLE IF NOT EXISTS variant_matches (variant_id INTEGER NOT NULL, vuln_id TEXT NOT NULL, item TEXT NOT NULL,
    kev INTEGER NOT NULL, PRIMARY KEY (variant_id, vuln_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS match_ids (id TEXT NOT NULL, variant_id INTEGER NOT NULL, PRIMARY KEY (id, variant_id))
    WITHOUT ROWID;
"""


class StateError(CiGateError):
    """The watch state file cannot be used."""


@dataclass(frozen=True, slots=True)
class ImageDiff:
    """What changed for one stored image: anchore-engine's `diff_vulnerability_result`."""

    digest: str
    tag: str
    """The tag the gate evaluated (the event's subscription key)."""
    added: tuple[dict[str, Any], ...]
    updated: tuple[dict[str, Any], ...]
    removed: tuple[dict[str, Any], ...]
    """Each a VulnerabilitySummary (`CVE_ID`, `Severity`, `Vulnerable_Package`, `Fix_Available`, …) plus `KEV`."""
    key: str = ""
    """What the image was indexed under: the saved file (`ci-gate watch`), the account and tag (serve)."""

    def result(self) -> dict[str, list[dict[str, Any]]]:
        return {"added": list(self.added), "updated": list(self.updated), "removed": list(self.removed)}


@dataclass
class RematchResult:
    """One run: the per-image differences, and what the run looked at."""

    diffs: list[ImageDiff] = field(default_factory=list)
    changed_records: int = 0
    """Records written since the previous run."""
    rematched_variants: int = 0
    """Distinct package variants matched again (a variant is shared by every image that holds it)."""
    new_images: int = 0
    """Images seen for the first time (matched as a baseline, no event)."""
    removed_images: int = 0
    images: int = 0
    first_run: bool = False


def _check_state_path(path: Path) -> None:
    """A regular file or nothing yet: SQLite on a device (/dev/null) fails at commit, and on /dev/stdout
    writes the database to the terminal (or into the job log, when stdout is a file)."""
    if path.absolute().parts[1:2] in (("dev",), ("proc",)):
        raise UsageError(f"--state {path} is not a regular file (a device or a process's file): give a file "
                         "path for the watch state")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise UsageError(f"--state {path}: a parent of it is not a folder; give a file path for the watch "
                         "state") from None
    except OSError as error:
        raise UsageError(f"--state {path} cannot be read ({error.strerror or error}); give a file path for the "
                         "watch state") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"--state {path} is a folder: give a file path for the watch state")
    if not stat.S_ISREG(mode):
        raise UsageError(f"--state {path} is not a regular file (a device, pipe or socket): give a file path "
                         "for the watch state")


class RematchState:
    """The watch state file: the package index and the last matches of every stored image."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _check_state_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
            self._connection.execute("PRAGMA journal_mode=DELETE")
            self._connection.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._connection.execute(statement)
            version = self._meta("schema_version")
        except (sqlite3.Error, OSError) as error:
            raise StateError(f"cannot use the watch state {path} ({error}): move it away, or give another "
                             "--state file") from None
        if version and version != STATE_SCHEMA_VERSION:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            raise StateError(f"the watch state {path} has schema {version}, this ci-gate writes "
                             f"{STATE_SCHEMA_VERSION}: move it away (the next run records a new baseline)")
        self._set_meta("schema_version", STATE_SCHEMA_VERSION)
        self._open = True
        self._new_images: set[int] = set()
        """Images indexed in this run: their first look is their baseline, never an event."""
        self._variant_ids: dict[str, int] = {}
        """Variant body → id, for the files indexed in this run (most packages repeat across images)."""

    def __enter__(self) -> RematchState:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.rollback()

    def _meta(self, key: str) -> str:
        row = self._connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    def _set_meta(self, key: str, value: str) -> None:
        self._connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def commit(self) -> None:
        """Keep this run: the new matches become the baseline of the next run."""
        if self._open:
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as error:  # a full disk, an I/O error: rollback() closes the connection
                raise StateError(f"cannot save the watch state {self.path} ({error}); the next run finds the same "
                                 "changes again: free space or give another --state file") from None
            self._open = False
            self._connection.close()

    def rollback(self) -> None:
        """Forget this run: the next run finds the same differences (nothing delivered is lost)."""
        if self._open:
            roll_back(self._connection)
            self._open = False
            self._connection.close()

    # --- the index of stored images ----------------------------------------------------------------

    def _variant_id(self, body: str, available: Sequence[str], fresh: list[int]) -> int:
        known = self._variant_ids.get(body)
        if known is not None:
            return known
        row = self._connection.execute("SELECT id FROM variants WHERE body = ?", (body,)).fetchone()
        if row is not None:
            self._variant_ids[body] = int(row[0])
            return int(row[0])
        cursor = self._connection.execute("INSERT INTO variants (body, matched) VALUES (?, 0)", (body,))
        variant_id = int(cursor.lastrowid or 0)
        keys = lookup_keys(json.loads(body), available)
        self._connection.executemany("INSERT OR IGNORE INTO variant_keys (ecosystem, name, variant_id) "
                                     "VALUES (?, ?, ?)", [(e, n, variant_id) for e, n in keys])
        fresh.append(variant_id)
        self._variant_ids[body] = variant_id
        return variant_id

    def add_image(self, digest: str, tag: str, file: str, fingerprint: str, distro: Mapping[str, Any] | None,
                  packages: Iterable[Mapping[str, Any]], available: Sequence[str], fresh: list[int]) -> None:
        """Index one image's packages (replacing what was indexed for the same file)."""
        self._forget_file(file)
        cursor = self._connection.execute("INSERT INTO images (digest, tag, file, fingerprint) VALUES (?, ?, ?, ?)",
                                          (digest, tag, file, fingerprint))
        image_id = int(cursor.lastrowid or 0)
        self._new_images.add(image_id)
        rows = {(self._variant_id(variant_body(package, distro), available, fresh), image_id, package_location(package))
                for package in packages}
        self._connection.executemany("INSERT OR IGNORE INTO members (variant_id, image_id, path) VALUES (?, ?, ?)",
                                     rows)

    def indexed_images(self) -> dict[str, str]:
        """Every indexed image: the key it was indexed under (`add_image`'s `file`) → its fingerprint."""
        return {str(row[0]): str(row[1]) for row in self._connection.execute("SELECT file, fingerprint FROM images")}

    def forget_image(self, file: str) -> bool:
        """Stop watching an image (its variants go with the next `rematch` when no other image holds them)."""
        return self._forget_file(file)

    def _forget_file(self, file: str) -> bool:
        row = self._connection.execute("SELECT id FROM images WHERE file = ?", (file,)).fetchone()
        if row is None:
            return False
        self._connection.execute("DELETE FROM members WHERE image_id = ?", (row[0],))
        self._connection.execute("DELETE FROM images WHERE id = ?", (row[0],))
        return True

    def forget_stale(self, folder: Path) -> tuple[dict[str, tuple[Path, str]], int]:
        """Forget images whose file is gone or was rewritten; returns the files to index (name → (path,
        fingerprint)) and how many images were removed. Done before re-matching, so a removed image gets
        no event and a rewritten one is judged on its new content (as a new baseline).

        A file is known by its name inside the folder and by its content: a moved folder, or a file
        whose mtime changed but not its bytes (a CI cache restore, `touch`), keeps its baseline, so the
        pending differences are still found (re-baselining it would lose them without a word)."""
        known = {row[0]: row[1] for row in self._connection.execute("SELECT file, fingerprint FROM images")}
        known = self._adopt_absolute_names(known, folder)
        present: dict[str, tuple[Path, str]] = {}
        unchanged: set[str] = set()
        for path in saved_files(folder):
            name = path.name  # saved files lie directly in the folder: the name is the path inside it
            stat = path.stat()
            # The change time too: size and mtime can be put back (`touch -r`, tools that keep
            # timestamps) over different bytes; no write or rename leaves the ctime as it was.
            quick = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
            before = known.get(name, "")
            if before.startswith(quick + ":"):
                unchanged.add(name)
                present[name] = (path, before)
                continue
            fingerprint = f"{quick}:{_content_hash(path)}"  # size, mtime or ctime moved: the content decides
            # (`size:mtime`: a state from before content hashes, the file untouched since)
            legacy = before == f"{stat.st_size}:{stat.st_mtime_ns}"
            if legacy or before.endswith(":" + fingerprint.rsplit(":", 1)[1]):
                unchanged.add(name)  # same bytes: remember the new fingerprint, so the next run skips the hash
                self._connection.execute("UPDATE images SET fingerprint = ? WHERE file = ?", (fingerprint, name))
            present[name] = (path, fingerprint)
        removed = 0
        for name in known:
            if name not in present:
                removed += self._forget_file(name)
            elif name not in unchanged:
                self._forget_file(name)
        waiting = {name: entry for name, entry in present.items() if name not in unchanged}
        return waiting, removed

    def _adopt_absolute_names(self, known: dict[str, str], folder: Path) -> dict[str, str]:
        """A state written before files were known by name holds absolute paths: rename those of this
        folder to their name, so upgrading does not re-baseline (and silence) every image."""
        adopted: dict[str, str] = {}
        root = folder.resolve()
        for name, fingerprint in known.items():
            if Path(name).is_absolute() and Path(name).parent == root and name.endswith(".json"):
                self._connection.execute("UPDATE images SET file = ? WHERE file = ?", (Path(name).name, name))
                name = Path(name).name
            adopted[name] = fingerprint
        return adopted

    def index_files(self, files: Mapping[str, tuple[Path, str]], available: Sequence[str], fresh: list[int]) -> int:
        """Index these saved files; returns how many were indexed."""
        for name, (path, fingerprint) in sorted(files.items()):
            document = read_document(path)
            packages = document.get("packages")
            if not isinstance(packages, list) or not isinstance(document.get("identity"), dict):
                raise UsageError(f"{path} is not a saved analysis: `ci-gate watch` reads the files written by "
                                 "`ci-gate gate --save-sbom DIR`")
            distro = document.get("distro") if isinstance(document.get("distro"), dict) else None
            self.add_image(saved_digest(document, path), saved_tag(document), name, fingerprint, distro,
                           (p for p in packages if isinstance(p, dict)), available, fresh)
        return len(files)

    def _drop_orphans(self) -> None:
        orphans = "SELECT id FROM variants WHERE id NOT IN (SELECT variant_id FROM members)"
        for table in ("variant_keys", "variant_matches", "match_ids"):
            self._connection.execute(f"DELETE FROM {table} WHERE variant_id IN ({orphans})")
        self._connection.execute(f"DELETE FROM variants WHERE id IN ({orphans})")

    # --- matching ----------------------------------------------------------------------------------

    def _store_matches(self, found: Mapping[int, VariantMatches], kev: frozenset[str]
                       ) -> dict[int, dict[str, tuple[dict[str, Any], bool]]]:
        """Replace the stored matches of these variants; returns vuln id → (listing item, KEV) per variant.
        Only the matches that apply are kept as matches; the ids of those VEX suppressed are indexed too,
        so a statement withdrawn later finds the variants it was hiding."""
        result: dict[int, dict[str, tuple[dict[str, Any], bool]]] = {}
        connection = self._connection
        for variant_id, matched in found.items():
            connection.execute("DELETE FROM variant_matches WHERE variant_id = ?", (variant_id,))
            connection.execute("DELETE FROM match_ids WHERE variant_id = ?", (variant_id,))
            current: dict[str, tuple[dict[str, Any], bool]] = {}
            ids = {i.upper() for match in matched.suppressed for i in (match.vulnerability_id, *match.aliases)}
            for match in matched.applying:
                item = vulnerability_item(match, False, False)
                item["package_path"] = _PATH_PLACEHOLDER
                flagged = is_kev(match_ids(match), kev)
                current[match.vulnerability_id] = (item, flagged)
                ids |= match_ids(match)
            connection.executemany(
                "INSERT OR REPLACE INTO variant_matches (variant_id, vuln_id, item, kev) VALUES (?, ?, ?, ?)",
                [(variant_id, vuln_id, json.dumps(item, separators=(",", ":")), int(flagged))
                 for vuln_id, (item, flagged) in current.items()])
            connection.executemany("INSERT OR IGNORE INTO match_ids (id, variant_id) VALUES (?, ?)",
                                   [(i, variant_id) for i in ids])
            connection.execute("UPDATE variants SET matched = 1 WHERE id = ?", (variant_id,))
            result[variant_id] = current
        return result

    def _stored_matches(self, variant_ids: Sequence[int]) -> dict[int, dict[str, tuple[dict[str, Any], bool]]]:
        result: dict[int, dict[str, tuple[dict[str, Any], bool]]] = {v: {} for v in variant_ids}
        for chunk in _chunks(variant_ids):
            for variant_id, vuln_id, item, kev in self._connection.execute(
                f"SELECT variant_id, vuln_id, item, kev FROM variant_matches WHERE variant_id IN ({_marks(chunk)})",
                chunk,
            ):
                result[variant_id][vuln_id] = (json.loads(item), bool(kev))
        return result

    def _variants_for(self, keys: set[tuple[str, str]], ids: set[str]) -> set[int]:
        """Variants under any of these lookup keys, or that matched any of these ids last time."""
        found: set[int] = set()
        by_ecosystem: dict[str, list[str]] = {}
        for ecosystem, name in keys:
            by_ecosystem.setdefault(ecosystem, []).append(name)
        for ecosystem, names in by_ecosystem.items():
            for chunk in _chunks(sorted(names)):
                found.update(row[0] for row in self._connection.execute(
                    f"SELECT variant_id FROM variant_keys WHERE ecosystem = ? AND name IN ({_marks(chunk)})",
                    (ecosystem, *chunk)))
        for chunk in _chunks(sorted(ids)):
            found.update(row[0] for row in self._connection.execute(
                f"SELECT variant_id FROM match_ids WHERE id IN ({_marks(chunk)})", chunk))
        # A variant never matched has no "before": it gets its baseline, not a difference.
        return found - {row[0] for row in self._connection.execute("SELECT id FROM variants WHERE matched = 0")}

    def rematch(self, store: VulnerabilityStore, folder: Path | None = None,
                vex: VexDocumentSet | None = None) -> RematchResult:
        """Re-match what the store's changes since the last run can affect; index new files of `folder`.
        Matches `vex` suppresses do not count (as in a gate); a statement added or withdrawn since the
        last run re-matches the variants that matched its vulnerabilities.

        Without a folder (a server that keeps analyses elsewhere), images are indexed with `add_image`
        (then `available` is `store.ecosystems()` and `fresh` a list to discard) before calling this."""
        result = RematchResult()
        previous_stamp = self._meta("records_stamp")
        result.first_run = not self._meta("initialised")
        newest, changed_ids, changed_keys = store.changed_since(previous_stamp)
        result.changed_records = len(changed_ids) if not result.first_run else 0
        catalog = store.known_exploited()
        kev = catalog.cve_ids if catalog is not None else frozenset()
        previous_kev = frozenset(json.loads(self._meta("kev_ids") or "[]"))
        available = store.ecosystems()
        previous_available = json.loads(self._meta("ecosystems") or "null")
        statements = vex.suppressing() if vex is not None else {}
        previous_statements: dict[str, list[str]] = json.loads(self._meta("vex_statements") or "{}")
        vex_ids = {i for key in statements.keys() ^ previous_statements.keys()
                   for i in statements.get(key) or previous_statements.get(key) or []}

        waiting: dict[str, tuple[Path, str]] = {}
        if folder is not None:
            waiting, result.removed_images = self.forget_stale(folder)
        suspects: set[int] = set()
        if not result.first_run:
            if previous_available != available:
                suspects |= self._rekey(available)
            # A changed record's CVEs: records that share them lend their scores to matches.
            cves = {i.upper() for record in store.records(changed_ids).values()
                    for i in (record.id, *record.aliases) if i.upper().startswith("CVE-")}
            related = {vuln_id.upper() for ids in store.related(cves).values() for vuln_id in ids}
            vex_related = {vuln_id.upper() for ids in store.related(vex_ids).values() for vuln_id in ids}
            suspects |= self._variants_for(changed_keys, {i.upper() for i in changed_ids} | cves | related
                                           | set(kev ^ previous_kev) | vex_ids | vex_related)
        if suspects:
            ordered = sorted(suspects)
            before = self._stored_matches(ordered)
            after = self._store_matches(match_variants(store, self._bodies(ordered), vex), kev)
            result.rematched_variants = len(ordered)
            result.diffs = self._fan_out(before, after)

        fresh: list[int] = []
        result.new_images = self.index_files(waiting, available, fresh)
        # New variants (from these files, or from `add_image` calls before this run) get their baseline.
        unmatched = [row[0] for row in self._connection.execute("SELECT id FROM variants WHERE matched = 0")]
        for chunk in _chunks(unmatched, 5000):
            self._store_matches(match_variants(store, self._bodies(chunk), vex), kev)
        self._drop_orphans()
        result.images = int(self._connection.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        self._set_meta("records_stamp", newest)
        self._set_meta("kev_ids", json.dumps(sorted(kev)))
        self._set_meta("ecosystems", json.dumps(available))
        self._set_meta("vex_statements", json.dumps(statements, sort_keys=True))
        self._set_meta("initialised", "1")
        return result

    def _bodies(self, variant_ids: Sequence[int]) -> dict[int, str]:
        bodies: dict[int, str] = {}
        for chunk in _chunks(variant_ids):
            bodies.update((row[0], row[1]) for row in self._connection.execute(
                f"SELECT id, body FROM variants WHERE id IN ({_marks(chunk)})", chunk))
        return bodies

    def _rekey(self, available: Sequence[str]) -> set[int]:
        """The store gained or lost an ecosystem: recompute every variant's keys; returns those that moved."""
        moved: set[int] = set()
        for variant_id, body in self._connection.execute("SELECT id, body FROM variants").fetchall():
            keys = lookup_keys(json.loads(body), available)
            old = {(row[0], row[1]) for row in self._connection.execute(
                "SELECT ecosystem, name FROM variant_keys WHERE variant_id = ?", (variant_id,))}
            if keys != old:
                moved.add(variant_id)
                self._connection.execute("DELETE FROM variant_keys WHERE variant_id = ?", (variant_id,))
                self._connection.executemany("INSERT INTO variant_keys (ecosystem, name, variant_id) VALUES (?, ?, ?)",
                                             [(e, n, variant_id) for e, n in keys])
        return moved

    def _fan_out(self, before: Mapping[int, Mapping[str, tuple[dict[str, Any], bool]]],
                 after: Mapping[int, Mapping[str, tuple[dict[str, Any], bool]]]) -> list[ImageDiff]:
        """Each changed variant's difference (`diff`), handed to every image that holds it.

        A summary does not depend on where the package lies, so a variant's difference is computed
        once; images are streamed one at a time, so memory holds the differences, not the matches."""
        def summaries(matches: Mapping[str, tuple[dict[str, Any], bool]]) -> dict[str, dict[str, Any]]:
            return {identity(item): {**summary(item), "KEV": kev} for item, kev in matches.values()}

        variant_diffs: dict[int, dict[str, list[dict[str, Any]]]] = {}
        for variant_id, matches in after.items():
            changes = diff(summaries(before.get(variant_id, {})), summaries(matches))
            if any(changes.values()):
                variant_diffs[variant_id] = changes
        per_image: dict[int, dict[str, list[dict[str, Any]]]] = {}
        changed = sorted(variant_diffs)
        for chunk in _chunks(changed):
            for variant_id, image_id in self._connection.execute(
                f"SELECT DISTINCT variant_id, image_id FROM members WHERE variant_id IN ({_marks(chunk)})", chunk
            ):
                if image_id in self._new_images:
                    continue
                target = per_image.setdefault(image_id, {"added": [], "updated": [], "removed": []})
                for kind, entries in variant_diffs[variant_id].items():
                    target[kind].extend(entries)
        diffs = []
        for image_id in sorted(per_image):
            digest, tag, file = self._connection.execute("SELECT digest, tag, file FROM images WHERE id = ?",
                                                         (image_id,)).fetchone()
            changes = per_image[image_id]
            diffs.append(ImageDiff(digest=digest, tag=tag, added=tuple(changes["added"]),
                                   updated=tuple(changes["updated"]), removed=tuple(changes["removed"]), key=file))
        return diffs


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(chunk: Sequence[Any]) -> str:
    return ",".join("?" * len(chunk))


def rematch_folder(state_path: Path, folder: Path, store: VulnerabilityStore, vex: VexDocumentSet | None = None
                   ) -> tuple[RematchState, RematchResult]:
    """Open the state, re-match and index `folder`; the caller commits after delivery (or rolls back)."""
    state = RematchState(state_path)
    try:
        return state, state.rematch(store, folder, vex)
    except BaseException:
        state.rollback()
        raise
