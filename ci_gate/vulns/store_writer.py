"""Writing the vulnerability store: one import, one transaction (see `ci_gate.vulns.store`).

SQLite's journal guarantees that an import which fails, is interrupted or is killed leaves the
previous contents intact, and readers never see half an import. A schema 1 store is migrated to
schema 2 by the next import, in that import's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ci_gate.errors import VulnerabilityDataError
from ci_gate.vulns.records import VulnerabilityRecord
from ci_gate.vulns.store import (
    AFFECTED_COLUMNS,
    KEV_META_KEYS,
    RECORD_COLUMNS,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    ImportCounts,
    KnownExploitedCatalog,
    affected_spec,
    connect,
    dump_json,
    resolve_path,
    roll_back,
    severities_to_json,
    utc_now,
)


@dataclass(frozen=True, slots=True)
class KnownExploitedEntry:
    """One `vulnerabilities[]` entry of the KEV catalog (the fields ci-gate keeps)."""

    cve_id: str
    date_added: str = ""
    due_date: str = ""
    ransomware: str = ""
    """`knownRansomwareCampaignUse`: Known or Unknown."""
    vendor_project: str = ""
    product: str = ""
    name: str = ""



class StoreWriter:
    """One import: everything written through it commits together, or not at all.

    Incremental by `modified`: a record replaces the stored one only when it is newer, so
    importing the same export twice changes nothing, and an older export never rolls data back.
    """

    BATCH = 1000

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = resolve_path(path)
        self._connection = connect(self.path, create=True)
        self._pending: list[VulnerabilityRecord] = []
        self._counts = ImportCounts()
        self._open = False
        self._synced_vulnerabilities = False
        """True once an OSV source was imported: only then is `updated_at` (the feed's last sync) moved."""

    def __enter__(self) -> StoreWriter:
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            self._open = True
            # One statement at a time: executescript() would commit the open transaction.
            for statement in SCHEMA_SQL.split(";"):
                if statement.strip():
                    connection.execute(statement)
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as error:
            self._abort()
            raise VulnerabilityDataError(
                f"{self.path} is not a ci-gate vulnerability store ({error}); move it away or choose another "
                "--vuln-db path") from None
        if row is None:
            connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                   [("schema_version", SCHEMA_VERSION), ("built_at", utc_now())])
        elif row[0] == "1":
            # Migration 1 → 2: the schema statements above created the KEV table; nothing else changed.
            connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            self._abort()
            raise VulnerabilityDataError(
                f"{self.path} has store schema {row[0]}, this ci-gate writes {SCHEMA_VERSION}: import into a new file")
        return self

    def _abort(self) -> None:
        if self._open:
            roll_back(self._connection)
            self._open = False
        self._connection.close()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None:
            self._abort()
            return
        try:
            self.flush()
            newest = self._connection.execute("SELECT COALESCE(MAX(modified), '') FROM vulnerabilities").fetchone()
            ecosystems = [row[0] for row in self._connection.execute(
                "SELECT DISTINCT ecosystem FROM affected ORDER BY ecosystem")]
            # A KEV-only import is no vulnerability sync: stale_feed_data must still see the old date.
            synced = [("updated_at", utc_now())] if self._synced_vulnerabilities else []
            self._connection.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [*synced, ("newest_modified", newest[0]), ("ecosystems", dump_json(ecosystems))])
            self._connection.execute("COMMIT")
            self._open = False
        except sqlite3.Error as failure:
            self._abort()
            raise VulnerabilityDataError(f"the import into {self.path} failed and was rolled back: {failure}") from None
        self._connection.close()

    def add(self, record: VulnerabilityRecord, counts: ImportCounts) -> None:
        """Queue a record; written in batches."""
        self._counts = counts
        counts.read += 1
        if record.modified > counts.newest_modified:
            counts.newest_modified = record.modified
        self._pending.append(record)
        if len(self._pending) >= self.BATCH:
            self.flush(counts)

    def flush(self, counts: ImportCounts | None = None) -> None:
        if not self._pending:
            return
        counts = counts or self._counts
        batch, self._pending = self._pending, []
        # The newest version of each id within the batch wins (an id can appear in several zips).
        newest: dict[str, VulnerabilityRecord] = {}
        for record in batch:
            if record.id not in newest or record.modified > newest[record.id].modified:
                if record.id in newest:
                    counts.unchanged += 1
                newest[record.id] = record
            else:
                counts.unchanged += 1
        connection = self._connection
        marks = ",".join("?" * len(newest))
        stored = dict(connection.execute(
            f"SELECT id, modified FROM vulnerabilities WHERE id IN ({marks})", list(newest)).fetchall())
        writes = []
        for identifier, record in newest.items():
            previous = stored.get(identifier)
            if previous is not None and previous >= record.modified:
                counts.unchanged += 1
                continue
            if previous is None:
                counts.added += 1
            else:
                counts.updated += 1
            writes.append(record)
        if not writes:
            return
        replaced = [r.id for r in writes if r.id in stored]
        if replaced:
            connection.execute(
                f"DELETE FROM affected WHERE vuln_id IN ({','.join('?' * len(replaced))})", replaced)
            connection.execute(
                f"DELETE FROM aliases WHERE vuln_id IN ({','.join('?' * len(replaced))})", replaced)
        connection.executemany(
            f"INSERT OR REPLACE INTO vulnerabilities ({RECORD_COLUMNS}) VALUES ({','.join('?' * 11)})",
            [(r.id, r.modified, r.published, r.withdrawn, dump_json(list(r.aliases)), r.summary,
              severities_to_json(r.severities), r.vendor_severity, dump_json(list(r.references)), r.source,
              r.imported_at) for r in writes],
        )
        connection.executemany(
            f"INSERT OR REPLACE INTO affected (vuln_id, position, {AFFECTED_COLUMNS}) "
            f"VALUES ({','.join('?' * 7)})",
            [(r.id, position, a.ecosystem, a.name, a.normalized_name, a.severity, affected_spec(a))
             for r in writes for position, a in enumerate(r.affected)],
        )
        connection.executemany(
            "INSERT OR IGNORE INTO aliases (alias, vuln_id) VALUES (?, ?)",
            [(alias.upper(), r.id) for r in writes for alias in r.aliases if alias.upper().startswith("CVE-")],
        )

    def stored_modified(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored `modified` time of these ids (absent ids are missing), pending writes included."""
        marks = ",".join("?" * len(ids))
        stored = dict(self._connection.execute(
            f"SELECT id, modified FROM vulnerabilities WHERE id IN ({marks})", list(ids)).fetchall())
        for record in self._pending:
            if record.id in stored and record.modified > stored[record.id]:
                stored[record.id] = record.modified
        return stored

    def replace_known_exploited(self, catalog: KnownExploitedCatalog, entries: Sequence[KnownExploitedEntry],
                                counts: ImportCounts) -> None:
        """Store a KEV catalog in place of the previous one, unless the stored one is newer.

        The catalog is published whole, so it replaces rather than merges: a CVE CISA removed
        stops counting as known exploited."""
        counts.read += len(entries)
        stored = self._connection.execute(
            "SELECT value FROM meta WHERE key = 'kev_date_released'").fetchone()
        if stored is not None and stored[0] > catalog.date_released:
            counts.unchanged += len(entries)
            counts.problems = [*(counts.problems or []),
                               f"the store holds a newer KEV catalog (released {stored[0]}): kept it"][:20]
            return
        previous = {row[0] for row in self._connection.execute("SELECT cve_id FROM known_exploited")}
        self._connection.execute("DELETE FROM known_exploited")
        self._connection.executemany(
            "INSERT OR REPLACE INTO known_exploited (cve_id, date_added, due_date, ransomware, vendor_project, "
            "product, name) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.cve_id, e.date_added, e.due_date, e.ransomware, e.vendor_project, e.product, e.name)
             for e in entries])
        current = {e.cve_id for e in entries}
        counts.added += len(current - previous)
        counts.unchanged += len(current & previous)
        self._connection.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            list(zip(KEV_META_KEYS, (catalog.catalog_version, catalog.date_released, str(len(current)),
                                     catalog.source, utc_now()), strict=True)))

    def record_source(self, location: str, counts: ImportCounts, vulnerability_data: bool = True) -> None:
        """Record an imported source; `vulnerability_data` False for a KEV catalog (no OSV records)."""
        self._synced_vulnerabilities = self._synced_vulnerabilities or vulnerability_data
        self._connection.execute(
            "INSERT OR REPLACE INTO sources (location, imported_at, records, added, updated, unchanged, skipped, "
            "newest_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (location, utc_now(), counts.read, counts.added, counts.updated, counts.unchanged, counts.skipped,
             counts.newest_modified),
        )
