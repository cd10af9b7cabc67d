"""Persistence for `ci-gate serve`: images (the analysis queue is their status), analyses, policies,
API keys, registry credentials, subscriptions and events, in the serve database
(ci_gate/database.py: SQLite in the data dir, or PostgreSQL shared by many replicas).

The image row is the queue: `not_analyzed` rows wait for a worker. A worker claims one by moving it
to `analyzing` with a lease (`claimed_by`, `lease_expires`) in one transaction: under SQLite's
database lock, or on PostgreSQL with `SELECT ... FOR UPDATE SKIP LOCKED`, so two workers, in one
replica or in several, never take the same digest. The worker renews its lease while it analyses
(`renew_lease`); an `analyzing` row whose lease ran out (its replica died) is claimed again by
whoever asks next, and `finish` records a result only for the claim that still holds the lease,
so a slow replica that lost its lease cannot overwrite its successor's result. Analyses are
stored zlib-compressed JSON in both databases.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ci_gate.database import Connection, Database, insert_new
from ci_gate.database_url import DEFAULT_DATABASE, SQLITE, DatabaseUrl
from ci_gate.server.events import EVENT_TYPES, add_event  # noqa: F401 (re-exported)
from ci_gate.server.keys import effective_status
from ci_gate.server.migrations import STORE_MIGRATIONS
from ci_gate.server.rows import (
    ACCOUNT,
    ANALYSIS_FAILED,
    ANALYZED,
    ANALYZING,
    NOT_ANALYZED,
    ApiKeyRow,
    Counters,
    ImageRecord,
    PolicyRow,
    StatusChange,
    key_hash,
    now_text,
)

REPLICA_ID = f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
"""This process among the replicas sharing a database (in claims and leases)."""
DEFAULT_LEASE_SECONDS = 30.0
"""How long a claim or a named lease lasts without renewal: a dead replica's work is taken over after it."""


class Store:
    """One account's tables: `ci-gate-serve.sqlite` in `data_dir`, or the account's schema in PostgreSQL."""

    def __init__(self, data_dir: Path, database: DatabaseUrl = DEFAULT_DATABASE, account: str = ACCOUNT,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        # Analyses and submitted Dockerfiles are private: the directory 0700 and the database 0600
        # from the start (SQLite gives its -wal and -shm files the database file's mode).
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = data_dir / "ci-gate-serve.sqlite"
        self.database = Database(database, self.path, f"account_{account}", STORE_MIGRATIONS)
        self.lease_seconds = lease_seconds
        self.counters = Counters()

    def close(self) -> None:
        self.database.close()

    @contextmanager
    def _transaction(self, exclusive: bool = True) -> Iterator[Connection]:
        with self.database.transaction(exclusive) as connection:
            yield connection

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self.database.query(sql, parameters)

    # --- images ---------------------------------------------------------------------------------

    def add_image(self, digest: str, pull_string: str, tag: str | None, annotations: Mapping[str, str],
                  dockerfile: str | None, force: bool) -> tuple[ImageRecord, bool]:
        """Create or update the record for `digest`; (record, queued) where queued says it (re)entered the queue.

        A known digest is not analysed again unless `force` or its last analysis failed; while an
        analysis is running, every submission shares it.
        """
        now = now_text()
        # Not the namespace-wide lock: submissions of different images and tags run side by side on
        # PostgreSQL. The image row is inserted or locked (`_insert_or_lock_image`); the tag's history is
        # read then appended to, so submissions of one tag take turns on a lock of that tag alone.
        with self._transaction(exclusive=False) as connection:
            if tag:
                self.database.lock_name(connection, f"tag:{tag}")
            previous = _latest_digest_for_tag(connection, tag) if tag else None
            if tag and previous != digest:  # the tag (now) names this digest: ordered by seq, not by clock
                connection.execute("INSERT INTO tag_history (tag, digest) VALUES (?, ?)", (tag, digest))
            new_row = {"digest": digest, "account": ACCOUNT, "analysis_status": NOT_ANALYZED,
                       "status_history": json.dumps([_change("", NOT_ANALYZED, now, "api")]),
                       "pull_string": pull_string, "tags": json.dumps([[tag, now]] if tag else []),
                       "annotations": json.dumps(dict(annotations)), "dockerfile": dockerfile,
                       "created_at": now, "last_updated": now}
            row = self._insert_or_lock_image(connection, new_row)
            if row is None:
                queued = True
            else:
                tags = json.loads(row["tags"])
                if tag and tag not in [t for t, _ in tags]:
                    tags.append([tag, now])
                elif tag and previous is not None and previous != digest:  # the tag moved back to this digest
                    tags = [[t, now if t == tag else seen] for t, seen in tags]
                merged = {**json.loads(row["annotations"]), **annotations}
                status = row["analysis_status"]
                history = json.loads(row["status_history"])
                queued = status == ANALYSIS_FAILED or (force and status == ANALYZED)
                if queued:
                    history.append(_change(status, NOT_ANALYZED, now, "api"))
                    status = NOT_ANALYZED
                connection.execute(
                    "UPDATE images SET analysis_status = ?, status_history = ?, tags = ?, annotations = ?, "
                    "pull_string = ?, dockerfile = COALESCE(?, dockerfile), failure_reason = "
                    "CASE WHEN ? THEN '' ELSE failure_reason END, last_updated = ?, "
                    "record_version = record_version + 1 WHERE digest = ?",
                    (status, json.dumps(history), json.dumps(tags), json.dumps(merged), pull_string,
                     dockerfile, queued, now, digest))
            record = self._image_from_row(connection.execute("SELECT * FROM images WHERE digest = ?",
                                                             (digest,)).fetchone())
            if tag and previous is not None and previous != digest:
                add_event(connection, ACCOUNT, "tag_update", tag, {"last_eval": [previous], "curr_eval": [digest]})
        return record, queued

    def _insert_or_lock_image(self, connection: Connection, new_row: Mapping[str, Any]) -> Any | None:
        """Lock the existing image row, or insert it: the row, locked until the transaction ends, else None
        when this transaction inserted it. The locking select comes first because a re-submission of a
        known digest (CI gating the same image again) is the common case: one statement then. A new digest
        is inserted with ON CONFLICT DO NOTHING, one statement that decides who creates it, so two replicas
        submitting it at once get one row; the one that lost finds the row on its next turn of the loop
        (once the winner committed) and updates it like any re-submission."""
        select = "SELECT * FROM images WHERE digest = ?" + self.database.for_update
        while True:
            row = connection.execute(select, (new_row["digest"],)).fetchone()
            if row is not None:
                return row
            if insert_new(connection, "images", new_row):
                return None
            # another replica inserted it after the select (or it was deleted again since): look again

    def delete_image(self, digest: str) -> bool:
        """Forget an image and its analysis; an analysis still running finds no row and is dropped."""
        with self._transaction() as connection:
            deleted = connection.execute("DELETE FROM images WHERE digest = ?", (digest,)).rowcount
            connection.execute("DELETE FROM analyses WHERE digest = ?", (digest,))
            # its stored checks too (they hold its findings): re-added, it starts a history of its own
            connection.execute("DELETE FROM stored_evaluations WHERE digest = ?", (digest,))
        return bool(deleted)

    def get_image(self, digest: str) -> ImageRecord | None:
        rows = self._query("SELECT * FROM images WHERE digest = ?", (digest,))
        return self._image_from_row(rows[0]) if rows else None

    def list_images(self, full_tag: str | None = None, analysis_status: str | None = None) -> list[ImageRecord]:
        if full_tag:  # narrowed in SQL (the tag as it appears in the JSON column), then checked exactly
            pattern = "%" + json.dumps(full_tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._query("SELECT * FROM images WHERE tags LIKE ? ESCAPE '\\' ORDER BY created_at, digest",
                               (pattern,))
        else:
            rows = self._query("SELECT * FROM images ORDER BY created_at, digest")
        records = [self._image_from_row(row) for row in rows]
        if full_tag:
            records = [r for r in records if any(t == full_tag for t, _ in r.tags)]
        if analysis_status:
            records = [r for r in records if r.analysis_status == analysis_status]
        return records

    def images_for_tag(self, full_tag: str, history: bool = False) -> list[ImageRecord]:
        """The images `full_tag` was seen on, newest detection first (anchore-engine's order); with
        `history` False only the newest: the digest the tag points to now."""
        order = {row["digest"]: row["seq"] for row in self._query(
            "SELECT digest, MAX(seq) AS seq FROM tag_history WHERE tag = ? GROUP BY digest", (full_tag,))}
        holders = sorted(((order.get(record.digest, 0), seen, record.created_at, record.digest, record)
                          for record in self.list_images(full_tag) for tag, seen in record.tags if tag == full_tag),
                         key=lambda h: h[:4], reverse=True)
        records = [holder[4] for holder in holders]
        return records if history else records[:1]

    def claim_next(self) -> ImageRecord | None:
        """Claim the oldest queued image (or one whose lease ran out) for this replica: `analyzing`, with a
        lease until now + lease_seconds by the database's clock; None when there is nothing to do. Rows
        other replicas hold locked are skipped (PostgreSQL), so concurrent claims never wait for or take
        the same digest."""
        now = now_text()
        claim = f"{REPLICA_ID}/{uuid.uuid4().hex[:8]}"
        clock = self.database.clock
        with self._transaction(exclusive=False) as connection:
            row = connection.execute(
                f"SELECT * FROM images WHERE analysis_status = ? OR (analysis_status = ? AND lease_expires < {clock}) "
                "ORDER BY last_updated, digest LIMIT 1" + self.database.skip_locked(),
                (NOT_ANALYZED, ANALYZING)).fetchone()
            if row is None:
                return None
            history = json.loads(row["status_history"])
            if row["analysis_status"] == ANALYZING:  # its replica stopped renewing: taken over
                history.append(_change(ANALYZING, NOT_ANALYZED, now, "lease_expired"))
            history.append(_change(NOT_ANALYZED, ANALYZING, now, "worker"))
            connection.execute(
                "UPDATE images SET analysis_status = ?, status_history = ?, analysis_count = analysis_count + 1, "
                f"claimed_by = ?, lease_expires = {clock} + ?, last_updated = ?, record_version = record_version + 1 "
                "WHERE digest = ?",
                (ANALYZING, json.dumps(history), claim, self.lease_seconds, now, row["digest"]))
            claimed = self._image_from_row(connection.execute("SELECT * FROM images WHERE digest = ?",
                                                              (row["digest"],)).fetchone())
        self.counters.analyses_started += 1
        self.counters.by_digest[claimed.digest] = self.counters.by_digest.get(claimed.digest, 0) + 1
        return claimed

    def renew_lease(self, digest: str, claim: str) -> bool:
        """The heartbeat of a running analysis: extend its lease; False when the claim no longer holds it."""
        with self._transaction(exclusive=False) as connection:
            return bool(connection.execute(
                f"UPDATE images SET lease_expires = {self.database.clock} + ? WHERE digest = ? AND claimed_by = ? "
                "AND analysis_status = ?", (self.lease_seconds, digest, claim, ANALYZING)).rowcount)

    def finish(self, digest: str, analysis: Mapping[str, Any] | None, failure_reason: str = "",
               metadata: Mapping[str, Any] | None = None, claim: str | None = None) -> bool:
        """Record the end of an analysis: the document when it succeeded, the reason when it failed.
        With `claim` (a worker's), only while that claim still holds the image: False when it lost it
        (its lease ran out and another replica took the image over) or the image was deleted."""
        now = now_text()
        status = ANALYZED if analysis is not None else ANALYSIS_FAILED
        # Compressed before taking the lock: status polls on the event loop wait for that lock.
        blob = zlib.compress(json.dumps(analysis, separators=(",", ":")).encode(), 6) if analysis is not None else b""
        with self._transaction(exclusive=False) as connection:
            row = connection.execute("SELECT status_history, tags, claimed_by, analysis_status FROM images "
                                     "WHERE digest = ?" + self.database.for_update, (digest,)).fetchone()
            if row is None or (claim is not None and (row["claimed_by"] != claim
                                                      or row["analysis_status"] != ANALYZING)):
                return False
            for full_tag, _ in json.loads(row["tags"]):
                add_event(connection, ACCOUNT, "analysis_update", full_tag,
                          {"image_digest": digest, "analysis_status": status,
                           **({"error": failure_reason} if failure_reason else {})})
            history = json.loads(row["status_history"])
            history.append(_change(ANALYZING, status, now, "worker"))
            if analysis is not None:
                connection.execute("INSERT INTO analyses (digest, document) VALUES (?, ?) ON CONFLICT (digest) "
                                   "DO UPDATE SET document = excluded.document", (digest, blob))
            connection.execute(
                "UPDATE images SET analysis_status = ?, status_history = ?, failure_reason = ?, last_updated = ?, "
                "analyzed_at = CASE WHEN ? THEN ? ELSE analyzed_at END, metadata = COALESCE(?, metadata), "
                "claimed_by = NULL, lease_expires = NULL, record_version = record_version + 1 WHERE digest = ?",
                (status, json.dumps(history), failure_reason, now, analysis is not None, now,
                 json.dumps(metadata) if metadata is not None else None, digest))
        if analysis is None:
            self.counters.analyses_failed += 1
        return True

    def resume_interrupted(self) -> int:
        """At start, on SQLite: images left `analyzing` (by this data dir's previous process) go back to the
        queue at once. Returns how many. On PostgreSQL other replicas may be analysing them: a dead
        replica's images are taken over when their lease runs out (`claim_next`)."""
        if self.database.dialect != SQLITE:
            return 0
        now = now_text()
        with self._transaction() as connection:
            rows = connection.execute("SELECT digest, status_history FROM images WHERE analysis_status = ?",
                                      (ANALYZING,)).fetchall()
            for row in rows:
                history = json.loads(row["status_history"])
                history.append(_change(ANALYZING, NOT_ANALYZED, now, "startup"))
                connection.execute("UPDATE images SET analysis_status = ?, status_history = ?, last_updated = ?, "
                                   "claimed_by = NULL, lease_expires = NULL, record_version = record_version + 1 "
                                   "WHERE digest = ?", (NOT_ANALYZED, json.dumps(history), now, row["digest"]))
        return len(rows)

    def hold_lease(self, name: str, seconds: float | None = None, holder: str = REPLICA_ID) -> bool:
        """Take or renew the named lease (work one replica does at a time, such as the watchers) for
        `seconds` (default lease_seconds); False while another holder's lease runs."""
        clock = self.database.clock
        with self._transaction() as connection:
            row = connection.execute(f"SELECT holder, expires >= {clock} AS running FROM leases WHERE name = ?",
                                     (name,)).fetchone()
            if row is not None and row["holder"] != holder and row["running"]:
                return False
            connection.execute(f"INSERT INTO leases (name, holder, expires) VALUES (?, ?, {clock} + ?) "
                               "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires",
                               (name, holder, seconds or self.lease_seconds))
        return True

    def release_lease(self, name: str, holder: str = REPLICA_ID) -> None:
        """Give the named lease up, when `holder` holds it (a replica that stops)."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def analysis_document(self, digest: str) -> dict[str, Any] | None:
        rows = self._query("SELECT document FROM analyses WHERE digest = ?", (digest,))
        if not rows:
            return None
        document: dict[str, Any] = json.loads(zlib.decompress(rows[0]["document"]))
        return document

    def status_counts(self) -> dict[str, int]:
        return {row["analysis_status"]: row["n"] for row in
                self._query("SELECT analysis_status, COUNT(*) AS n FROM images GROUP BY analysis_status")}

    def analysis_counts(self) -> dict[str, int]:
        """Analyses started per digest over the data dir's whole life (survives restarts)."""
        rows = self._query("SELECT digest, analysis_count FROM images")
        return {row["digest"]: row["analysis_count"] for row in rows}

    @staticmethod
    def _image_from_row(row: Any) -> ImageRecord:
        return ImageRecord(
            digest=row["digest"], account=row["account"], analysis_status=row["analysis_status"],
            status_history=tuple(StatusChange(**c) for c in json.loads(row["status_history"])),
            failure_reason=row["failure_reason"], pull_string=row["pull_string"],
            tags=tuple((t, seen) for t, seen in json.loads(row["tags"])),
            annotations=json.loads(row["annotations"]), dockerfile=row["dockerfile"],
            created_at=row["created_at"], last_updated=row["last_updated"], analyzed_at=row["analyzed_at"],
            analysis_count=row["analysis_count"], record_version=row["record_version"],
            metadata=json.loads(row["metadata"]), claimed_by=row["claimed_by"])

    # --- policies -------------------------------------------------------------------------------

    def add_policy(self, policy_id: str, name: str, description: str, document: Mapping[str, Any],
                   source: str = "local", active: bool = False) -> PolicyRow | None:
        """Insert a policy; None when the id exists (409)."""
        now = now_text()
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM policies WHERE policy_id = ?", (policy_id,)).fetchone():
                return None
            if active:
                connection.execute("UPDATE policies SET active = 0 WHERE account = ?", (ACCOUNT,))
            connection.execute(
                "INSERT INTO policies (policy_id, account, name, description, active, policy_source, document, "
                "created_at, last_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (policy_id, ACCOUNT, name, description, int(active), source, json.dumps(document), now, now))
        return self.get_policy(policy_id)

    def update_policy(self, policy_id: str, document: Mapping[str, Any] | None, activate: bool) -> PolicyRow | None:
        now = now_text()
        with self._transaction() as connection:
            if not connection.execute("SELECT 1 FROM policies WHERE policy_id = ?", (policy_id,)).fetchone():
                return None
            if document is not None:
                connection.execute("UPDATE policies SET document = ?, name = ?, description = ?, last_updated = ? "
                                   "WHERE policy_id = ?",
                                   (json.dumps(document), str(document.get("name", policy_id)),
                                    str(document.get("description", "")), now, policy_id))
            if activate:
                connection.execute("UPDATE policies SET active = 0 WHERE account = ?", (ACCOUNT,))
                connection.execute("UPDATE policies SET active = 1, last_updated = ? WHERE policy_id = ?",
                                   (now, policy_id))
        return self.get_policy(policy_id)

    def delete_policy(self, policy_id: str) -> str:
        """Delete an inactive policy: `deleted`, `active` (refused: the account keeps exactly one active
        policy) or `missing`. Checked and deleted in one transaction, so an activation that lands
        between a check and a delete can never leave the account without an active policy."""
        with self._transaction() as connection:
            if connection.execute("DELETE FROM policies WHERE policy_id = ? AND active = 0",
                                  (policy_id,)).rowcount:
                # a policy added again under this id must not show the deleted one's checks as its history
                connection.execute("DELETE FROM stored_evaluations WHERE policy_id = ?", (policy_id,))
                return "deleted"
            exists = connection.execute("SELECT 1 FROM policies WHERE policy_id = ?", (policy_id,)).fetchone()
        return "active" if exists else "missing"

    def get_policy(self, policy_id: str) -> PolicyRow | None:
        rows = self._query("SELECT * FROM policies WHERE policy_id = ?", (policy_id,))
        return _policy_from_row(rows[0]) if rows else None

    def active_policy(self) -> PolicyRow | None:
        rows = self._query("SELECT * FROM policies WHERE account = ? AND active = 1", (ACCOUNT,))
        return _policy_from_row(rows[0]) if rows else None

    def list_policies(self) -> list[PolicyRow]:
        return [_policy_from_row(row) for row in self._query("SELECT * FROM policies ORDER BY created_at, policy_id")]

    # --- API keys -------------------------------------------------------------------------------

    def add_api_key(self, name: str, description: str, value: str, expires_at: str,
                    account: str = ACCOUNT) -> ApiKeyRow | None:
        """Insert a key (its value only as a hash); None when the name is taken (409)."""
        now = now_text()
        with self._transaction() as connection:
            if not insert_new(connection, "api_keys", {
                    "name": name, "account": account, "description": description, "value_hash": key_hash(value),
                    "expires_at": expires_at, "created_at": now, "updated_at": now}):
                return None
        return self.get_api_key(name, account)

    def list_api_keys(self, account: str = ACCOUNT) -> list[ApiKeyRow]:
        return [_api_key_from_row(row) for row in
                self._query("SELECT * FROM api_keys WHERE account = ? ORDER BY created_at, name", (account,))]

    def get_api_key(self, name: str, account: str = ACCOUNT) -> ApiKeyRow | None:
        rows = self._query("SELECT * FROM api_keys WHERE name = ? AND account = ?", (name, account))
        return _api_key_from_row(rows[0]) if rows else None

    def revoke_api_key(self, name: str, account: str = ACCOUNT) -> ApiKeyRow | None:
        """Mark a key revoked (it stops working at once); None when the account has no such key."""
        with self._transaction() as connection:
            changed = connection.execute("UPDATE api_keys SET status = 'revoked', updated_at = ? WHERE name = ? "
                                         "AND account = ?", (now_text(), name, account)).rowcount
        return self.get_api_key(name, account) if changed else None

    def delete_api_key(self, name: str, account: str = ACCOUNT) -> bool:
        with self._transaction() as connection:
            return bool(connection.execute("DELETE FROM api_keys WHERE name = ? AND account = ?",
                                           (name, account)).rowcount)

    def api_key_for_value(self, value: str) -> ApiKeyRow | None:
        """The active, unexpired key with this value; None for an unknown, revoked or expired key."""
        rows = self._query("SELECT * FROM api_keys WHERE value_hash = ?", (key_hash(value),))
        if not rows:
            return None
        key = _api_key_from_row(rows[0])
        return key if key.status == "active" else None

    def api_key_account(self, value: str) -> str | None:
        """The account an active, unexpired key acts as; None for an unknown, revoked or expired key."""
        key = self.api_key_for_value(value)
        return key.account if key is not None else None


def _latest_digest_for_tag(connection: Connection, full_tag: str) -> str | None:
    """The digest `full_tag` was most recently seen on (inside a transaction): the tag history's last
    entry; for a data dir from before the history, the image whose tag was seen last."""
    row = connection.execute("SELECT digest FROM tag_history WHERE tag = ? ORDER BY seq DESC LIMIT 1",
                             (full_tag,)).fetchone()
    if row is not None:
        return str(row["digest"])
    pattern = "%" + json.dumps(full_tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    latest: tuple[str, str] | None = None
    for row in connection.execute("SELECT digest, tags FROM images WHERE tags LIKE ? ESCAPE '\\'", (pattern,)):
        for tag, seen in json.loads(row["tags"]):
            if tag == full_tag and (latest is None or (seen, row["digest"]) > latest):
                latest = (seen, row["digest"])
    return latest[1] if latest else None


def _api_key_from_row(row: Any) -> ApiKeyRow:
    return ApiKeyRow(name=row["name"], account=row["account"], description=row["description"],
                     expires_at=row["expires_at"], created_at=row["created_at"], updated_at=row["updated_at"],
                     status=effective_status(row["status"], row["expires_at"], row["created_at"],
                                             datetime.now(timezone.utc)))


def _change(from_status: str, to_status: str, timestamp: str, source: str) -> dict[str, str]:
    return {"from_status": from_status, "to_status": to_status, "timestamp": timestamp, "source": source}


def _policy_from_row(row: Any) -> PolicyRow:
    return PolicyRow(policy_id=row["policy_id"], account=row["account"], name=row["name"],
                     description=row["description"], active=bool(row["active"]), policy_source=row["policy_source"],
                     document=json.loads(row["document"]), created_at=row["created_at"],
                     last_updated=row["last_updated"])
