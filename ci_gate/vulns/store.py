"""The offline vulnerability store: one SQLite file, looked up by (ecosystem or distro release, name).

Location: `--vuln-db PATH`, else `$CI_GATE_VULN_DB`, else `$XDG_DATA_HOME/ci-gate/vulns.sqlite`
(`~/.local/share/ci-gate/vulns.sqlite`). The file is self-contained (rollback journal, no WAL side
files), so an air-gapped site can copy it as it is.

Writes happen in one transaction per import (`vulns.store_writer.StoreWriter`): SQLite's journal guarantees that an
import which fails, is interrupted or is killed leaves the previous contents intact, and readers
never see half an import.

Schema 2 adds CISA's Known Exploited Vulnerabilities catalog (`known_exploited` and the `kev_*`
meta keys). A schema 1 store is still read (it simply has no KEV catalog) and is migrated to
schema 2 by the next import, in that import's transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from ci_gate.errors import VulnerabilityDataError
from ci_gate.vulns.records import AffectedPackage, Range, Severity, VulnerabilityRecord

SCHEMA_VERSION = "2"
READABLE_SCHEMA_VERSIONS = ("1", "2")
"""Schema 1 lacks only the KEV catalog; the next import migrates it."""
ENVIRONMENT_VARIABLE = "CI_GATE_VULN_DB"

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    location TEXT PRIMARY KEY,
    imported_at TEXT NOT NULL,
    records INTEGER NOT NULL,
    added INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    newest_modified TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vulnerabilities (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    published TEXT NOT NULL,
    withdrawn TEXT NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT NOT NULL,
    severities TEXT NOT NULL,
    vendor_severity TEXT NOT NULL,
    refs TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS affected (
    ecosystem TEXT NOT NULL,
    normalized_name TEXT NOT NULL,
    vuln_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    severity TEXT NOT NULL,
    spec TEXT NOT NULL,
    PRIMARY KEY (ecosystem, normalized_name, vuln_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS affected_by_vulnerability ON affected (vuln_id);
CREATE TABLE IF NOT EXISTS aliases (alias TEXT NOT NULL, vuln_id TEXT NOT NULL, PRIMARY KEY (alias, vuln_id))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_by_vulnerability ON aliases (vuln_id);
CREATE TABLE IF NOT EXISTS known_exploited (
    cve_id TEXT PRIMARY KEY,
    date_added TEXT NOT NULL,
    due_date TEXT NOT NULL,
    ransomware TEXT NOT NULL,
    vendor_project TEXT NOT NULL,
    product TEXT NOT NULL,
    name TEXT NOT NULL
) WITHOUT ROWID;
"""

KEV_META_KEYS = ("kev_catalog_version", "kev_date_released", "kev_count", "kev_source", "kev_imported_at")


def default_path() -> Path:
    """`$XDG_DATA_HOME/ci-gate/vulns.sqlite`, XDG's default data folder when the variable is unset."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ci-gate" / "vulns.sqlite"


def resolve_path(explicit: Path | str | None = None) -> Path:
    """The store file: the explicit path, else $CI_GATE_VULN_DB, else the default."""
    return locate(explicit)[0]


def locate(explicit: Path | str | None = None) -> tuple[Path, str]:
    """The store file and how it was chosen: `--vuln-db`, `$CI_GATE_VULN_DB` or `default`.

    Only the default may be absent (then the policy's vulnerability_data_unavailable rule decides);
    a location the user gave must hold a store, or the gate cannot check what was asked (exit 2)."""
    if explicit:
        return Path(explicit), "--vuln-db"
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        return Path(from_environment), f"${ENVIRONMENT_VARIABLE}"
    return default_path(), "default"


SQLITE_HEADER = b"SQLite format 3\x00"


def check_store_file(path: Path, origin: str = "--vuln-db") -> None:
    """Fail closed on a store location that cannot be read as a store: one line naming it and the fix.

    The schema itself is checked when the store is opened (`VulnerabilityStore`)."""
    given = f"{origin} {path}" if origin != "default" else f"the vulnerability store {path}"
    create = f"`ci-gate db import OSV-DATA --vuln-db {path}` or `ci-gate db update --vuln-db {path}`"
    try:
        status = path.stat()
    except FileNotFoundError:
        raise VulnerabilityDataError(f"{given} does not exist: create it with {create}, or correct the path"
                                     ) from None
    except OSError as error:
        raise VulnerabilityDataError(f"cannot read {given}: {error.strerror or error}; fix the path or its "
                                     "permissions") from None
    if path.is_dir():
        raise VulnerabilityDataError(f"{given} is a directory, not a store file: give the store file itself "
                                     f"(e.g. {path / 'vulns.sqlite'})")
    if not path.is_file():
        raise VulnerabilityDataError(f"{given} is not a regular file: give the store file written by {create}")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise VulnerabilityDataError(f"cannot read {given}: {error.strerror or error}; fix its permissions or "
                                     "choose another --vuln-db") from None
    if header != SQLITE_HEADER:
        kind = "an empty file" if status.st_size == 0 else "not an SQLite database"
        raise VulnerabilityDataError(f"{given} is not a ci-gate vulnerability store ({kind}): point --vuln-db "
                                     f"at the store file, or create one with {create}")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One imported source (a file, folder or URL) as `db status` shows it."""

    location: str
    imported_at: str
    records: int
    """Valid records read from it on its last import."""
    added: int
    updated: int
    unchanged: int
    """Records skipped because the store already had them at the same or a newer `modified`."""
    skipped: int
    """Invalid documents skipped."""
    newest_modified: str


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What `db status` reports and the stale_feed_data trigger reads."""

    path: str
    built_at: str
    """When the store was created."""
    updated_at: str
    """When the last import committed (the "last sync" of Anchore's feed triggers); empty if never."""
    newest_modified: str
    """The newest `modified` time among the records: how fresh the data itself is."""
    vulnerability_count: int
    withdrawn_count: int
    ecosystems: tuple[tuple[str, int], ...]
    """(ecosystem, number of vulnerabilities) sorted by ecosystem."""
    sources: tuple[SourceStatus, ...]
    schema_version: str = SCHEMA_VERSION
    size_bytes: int = 0
    kev_catalog_version: str = ""
    """The imported CISA KEV catalog's `catalogVersion`; empty when none was imported."""
    kev_date_released: str = ""
    """The catalog's `dateReleased` (normalised UTC time)."""
    kev_count: int = 0
    """Entries (CVE ids) in the imported catalog."""

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the last import; None when nothing was ever imported."""
        if not self.updated_at:
            return None
        moment = parse_time(self.updated_at)
        return ((now or datetime.now(timezone.utc)) - moment).total_seconds()


def parse_time(value: str) -> datetime:
    """Read a normalised store time back."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


# --- (de)serialisation ---------------------------------------------------------------------------


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dump_json(value: Any) -> str:
    return _ENCODER.encode(value)


def severities_to_json(items: Sequence[Severity]) -> str:
    return dump_json([[s.type, s.score, s.base_score, s.exploitability_score, s.impact_score, s.version]
                      for s in items])


def _severities_from_json(text: str) -> tuple[Severity, ...]:
    return tuple(Severity(*item) for item in json.loads(text))


def _record_from_row(row: Sequence[Any], affected: tuple[AffectedPackage, ...] = ()) -> VulnerabilityRecord:
    return VulnerabilityRecord(
        id=row[0], modified=row[1], published=row[2], withdrawn=row[3], aliases=tuple(json.loads(row[4])),
        summary=row[5], severities=_severities_from_json(row[6]), vendor_severity=row[7],
        references=tuple(json.loads(row[8])), source=row[9], imported_at=row[10], affected=affected,
    )


def affected_spec(affected: AffectedPackage) -> str:
    """Ranges, versions and severities in one JSON text: one parse per row when matching."""
    return dump_json([
        [[r.type, [list(event) for event in r.events]] for r in affected.ranges],
        list(affected.versions),
        [[s.type, s.score, s.base_score, s.exploitability_score, s.impact_score, s.version]
         for s in affected.severities],
    ])


def _affected_from_row(row: Sequence[Any]) -> AffectedPackage:
    ranges, versions, severities = json.loads(row[4])
    return AffectedPackage(
        ecosystem=row[0], name=row[1], normalized_name=row[2],
        ranges=tuple([Range(kind, tuple(map(tuple, events))) for kind, events in ranges]),
        versions=tuple(versions), severity=row[3],
        severities=tuple([Severity(*item) for item in severities]) if severities else (),
    )


RECORD_COLUMNS = "id, modified, published, withdrawn, aliases, summary, severities, vendor_severity, refs, " \
                  "source, imported_at"
AFFECTED_COLUMNS = "ecosystem, name, normalized_name, severity, spec"


def connect(path: Path, create: bool, origin: str = "--vuln-db") -> sqlite3.Connection:
    if not create:
        check_store_file(path, origin)
    else:
        if path.is_dir():
            raise VulnerabilityDataError(f"--vuln-db {path} is a directory: give the path of the store file "
                                         f"(e.g. {path / 'vulns.sqlite'})")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VulnerabilityDataError(f"cannot create the folder {path.parent}: {error.strerror}") from None
    try:
        connection = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA foreign_keys=OFF")
        return connection
    except sqlite3.DatabaseError as error:
        raise VulnerabilityDataError(
            f"{path} is not a ci-gate vulnerability store ({error}); re-create it with `ci-gate db import` "
            "or choose another --vuln-db path") from None
    except sqlite3.Error as error:
        raise VulnerabilityDataError(f"cannot open the vulnerability store {path}: {error}") from None


def roll_back(connection: sqlite3.Connection) -> None:
    """End the open transaction without keeping it. A failing ROLLBACK (a connection already broken)
    is ignored: SQLite's journal undoes the transaction when the connection closes anyway."""
    with suppress(sqlite3.Error):
        connection.execute("ROLLBACK")


class VulnerabilityStore:
    """Read access to a store file. Use as a context manager or call `close()`."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path, origin = locate(path)
        self._connection = connect(self.path, create=False, origin=origin)
        try:
            version = self._meta("schema_version")
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise VulnerabilityDataError(
                f"{self.path} is not a ci-gate vulnerability store ({error}); re-create it with `ci-gate db import`"
            ) from None
        if version not in READABLE_SCHEMA_VERSIONS:
            self._connection.close()
            if version.isdigit() and int(version) > int(SCHEMA_VERSION):
                raise VulnerabilityDataError(
                    f"{self.path} was written by a newer ci-gate (store schema {version}; this one reads "
                    f"{SCHEMA_VERSION}): upgrade ci-gate, or re-create the store with this version's `ci-gate db "
                    "import`")
            raise VulnerabilityDataError(
                f"{self.path} has store schema {version or 'unknown'}, this ci-gate reads {SCHEMA_VERSION}: "
                "re-create it with `ci-gate db import` or `ci-gate db update`")

    def __enter__(self) -> VulnerabilityStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def _meta(self, key: str) -> str:
        row = self._connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    def affected(self, ecosystem: str, normalized_names: Iterable[str]) -> list[tuple[str, AffectedPackage]]:
        """(vulnerability id, affected entry) for these names in this ecosystem (exact ecosystem string)."""
        names = sorted(set(normalized_names))
        result: list[tuple[str, AffectedPackage]] = []
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._connection.execute(
                f"SELECT vuln_id, {AFFECTED_COLUMNS} FROM affected "
                f"WHERE ecosystem = ? AND normalized_name IN ({marks})",
                (ecosystem, *chunk),
            )
            result.extend((row[0], _affected_from_row(row[1:])) for row in rows)
        return result

    def ecosystems(self) -> list[str]:
        """Every ecosystem string present (distinct), e.g. to map a distro release to its key.

        Each import records the list in `meta`, so a gate run does not scan the index for it."""
        cached = self._meta("ecosystems")
        if cached:
            return list(json.loads(cached))
        rows = self._connection.execute("SELECT DISTINCT ecosystem FROM affected ORDER BY ecosystem")
        return [row[0] for row in rows]

    def records(self, ids: Iterable[str], with_affected: bool = False) -> dict[str, VulnerabilityRecord]:
        """The records with these ids (missing ids are simply absent)."""
        wanted = sorted(set(ids))
        result: dict[str, VulnerabilityRecord] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._connection.execute(
                f"SELECT {RECORD_COLUMNS} FROM vulnerabilities WHERE id IN ({marks})", chunk
            ):
                affected: tuple[AffectedPackage, ...] = ()
                if with_affected:
                    affected = tuple(_affected_from_row(r) for r in self._connection.execute(
                        f"SELECT {AFFECTED_COLUMNS} FROM affected WHERE vuln_id = ? ORDER BY position", (row[0],)))
                result[row[0]] = _record_from_row(row, affected)
        return result

    def changed_since(self, stamp: str) -> tuple[str, set[str], set[tuple[str, str]]]:
        """What imports after `stamp` (an `imported_at` value, '' for everything) added or replaced.

        Returns the newest `imported_at` in the store (the stamp for the next call), the ids of the
        records written after `stamp`, and the (ecosystem, normalised name) keys those records affect
        now. For incremental re-matching (`ci_gate.rematch`): only packages under these keys, or
        matched by these ids before, can have changed."""
        newest = self._connection.execute("SELECT COALESCE(MAX(imported_at), '') FROM vulnerabilities").fetchone()[0]
        ids = {row[0] for row in self._connection.execute(
            "SELECT id FROM vulnerabilities WHERE imported_at > ?", (stamp,))}
        keys: set[tuple[str, str]] = set()
        wanted = sorted(ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            keys.update((row[0], row[1]) for row in self._connection.execute(
                "SELECT DISTINCT ecosystem, normalized_name FROM affected "
                f"WHERE vuln_id IN ({','.join('?' * len(chunk))})", chunk))
        return str(newest), ids, keys

    def known_exploited(self) -> KnownExploitedCatalog | None:
        """The imported CISA KEV catalog, or None when none was imported (KEV checks cannot be made)."""
        version = self._meta("kev_catalog_version")
        if not version:
            return None
        ids = frozenset(row[0] for row in self._connection.execute("SELECT cve_id FROM known_exploited"))
        return KnownExploitedCatalog(catalog_version=version, date_released=self._meta("kev_date_released"),
                                     cve_ids=ids, source=self._meta("kev_source"))

    def record(self, identifier: str) -> VulnerabilityRecord | None:
        return self.records([identifier], with_affected=True).get(identifier)

    def related(self, cve_ids: Iterable[str]) -> dict[str, list[str]]:
        """For each CVE id, the ids of every record that names it as an alias (or is it)."""
        wanted = sorted({c.upper() for c in cve_ids})
        result: dict[str, list[str]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for alias, vuln_id in self._connection.execute(
                f"SELECT alias, vuln_id FROM aliases WHERE alias IN ({marks})", chunk
            ):
                result.setdefault(alias, []).append(vuln_id)
            for (vuln_id,) in self._connection.execute(
                f"SELECT id FROM vulnerabilities WHERE id IN ({marks})", chunk
            ):
                result.setdefault(vuln_id.upper(), []).append(vuln_id)
        return result

    def status(self, full: bool = True) -> StoreStatus:
        """The store's status; `full=False` skips the counts (cheap enough for every gate run)."""
        connection = self._connection
        count = withdrawn = 0
        ecosystems: tuple[tuple[str, int], ...] = ()
        if full:
            count, withdrawn = connection.execute(
                "SELECT COUNT(*), COALESCE(SUM(withdrawn != ''), 0) FROM vulnerabilities").fetchone()
            ecosystems = tuple(
                (row[0], int(row[1])) for row in connection.execute(
                    "SELECT ecosystem, COUNT(DISTINCT vuln_id) FROM affected GROUP BY ecosystem ORDER BY ecosystem")
            )
        sources = tuple(
            SourceStatus(*row) for row in connection.execute(
                "SELECT location, imported_at, records, added, updated, unchanged, skipped, newest_modified "
                "FROM sources ORDER BY location")
        )
        return StoreStatus(
            path=str(self.path),
            built_at=self._meta("built_at"),
            updated_at=self._meta("updated_at"),
            newest_modified=self._meta("newest_modified"),
            vulnerability_count=int(count),
            withdrawn_count=int(withdrawn),
            ecosystems=ecosystems,
            sources=sources,
            schema_version=self._meta("schema_version"),
            size_bytes=self.path.stat().st_size if self.path.exists() else 0,
            kev_catalog_version=self._meta("kev_catalog_version"),
            kev_date_released=self._meta("kev_date_released"),
            kev_count=int(self._meta("kev_count") or 0),
        )


@dataclass(frozen=True, slots=True)
class KnownExploitedCatalog:
    """CISA's Known Exploited Vulnerabilities catalog as imported: which CVEs are exploited in the wild."""

    catalog_version: str
    """`catalogVersion`, e.g. `2025.01.10`."""
    date_released: str
    """`dateReleased`, normalised UTC time."""
    cve_ids: frozenset[str]
    """Upper-case CVE ids."""
    source: str = ""
    """Where it was imported from."""

    def lists(self, identifier: str) -> bool:
        return identifier.upper() in self.cve_ids


@dataclass
class ImportCounts:
    """What one import did (mutable while the import runs)."""

    read: int = 0
    """Valid records read."""
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Invalid documents (bad JSON, not a record) skipped."""
    unknown_ecosystems: int = 0
    """Affected entries in ecosystems ci-gate has no version scheme for (stored, compared exactly)."""
    newest_modified: str = ""
    problems: list[str] | None = None
    """The first few reasons for skipped documents (for the import summary)."""

    def note(self, problem: str) -> None:
        self.skipped += 1
        if self.problems is None:
            self.problems = []
        if len(self.problems) < 20:
            self.problems.append(problem)


@contextmanager
def open_store(path: Path | str | None = None) -> Iterator[VulnerabilityStore]:
    store = VulnerabilityStore(path)
    try:
        yield store
    finally:
        store.close()
