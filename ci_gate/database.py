"""The serve database: SQLite files in the data dir (the default) or one PostgreSQL database shared by
any number of replicas (`ci-gate serve --database postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`).

Every query is written once, in the SQL both speak (`?` placeholders, `ON CONFLICT` upserts); the
differences are kept here and nowhere else:

- placeholders: `?` is rewritten to psycopg's `%s` (`_postgres_sql`);
- column types in the schema: BLOB, REAL and an autoincrement key (`schema_sql`);
- the clock leases are judged by: the database server's (`clock`);
- row locks: `skip_locked()` is `FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on SQLite, where a
  write transaction (`BEGIN IMMEDIATE`) already holds the whole database;
- serialised writes: an exclusive transaction takes `pg_advisory_xact_lock` on the namespace, so
  check-then-insert code behaves on PostgreSQL as under SQLite's database lock. The hot writes do
  not serialise: queue claims and `finish` use row locks (`for_update` locks a row a transaction
  will change), submissions `INSERT ... ON CONFLICT` plus a row lock, and `lock_name` orders only
  the transactions about one name (a tag's history) instead of the whole namespace;
- namespaces: an account's tables are a file of their own on SQLite and a schema of their own on
  PostgreSQL (isolation stays structural, never a WHERE clause);
- migrations: versions recorded in `schema_migrations`, applied once under `pg_advisory_lock`
  (PostgreSQL) or an IMMEDIATE transaction (SQLite), the same statements for both.

When PostgreSQL goes away (a restart, a failover) the connection is re-opened on next use, with a
short backoff (tenacity); while it cannot be, operations raise `DatabaseUnavailable` (HTTP 503 for
API calls; workers wait and try again). A password in the URL never appears in a message or log line.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ci_gate.database_url import CONNECT_TIMEOUT_SECONDS, POSTGRESQL, SQLITE, DatabaseUrl

RECONNECT_SECONDS = 2.0
"""How long an operation waits for a lost PostgreSQL connection to come back before giving up (503)."""
QUIET_SECONDS = 1.0
"""After reconnecting failed, operations fail at once for this long (no pile of callers each waiting)."""
SCHEMA_PREFIX = "ci_gate_"
"""PostgreSQL schema names: `ci_gate_accounts` (the account directory), `ci_gate_account_NAME` (an account)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now (PostgreSQL restarting): API calls answer 503, workers wait."""

    status = 503
    message = "the server's database is not reachable right now; retry in a few seconds"

    def __init__(self) -> None:
        super().__init__(self.message)


class Cursor(Protocol):
    """What `Connection.execute` returns (sqlite3's and psycopg's cursors both are one)."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a transaction body uses: `execute(sql, parameters)` with `?` placeholders; rows are read by
    column name (`row["digest"]`) or unpacked as tuples."""

    def execute(self, sql: str, parameters: Sequence[Any] = ...) -> Cursor: ...


# --- work to run once the current thread's transaction commits (never if it rolls back) -----------
# A transaction body that must not act before its writes are visible to other connections (waking
# the notification delivery thread for an outbox row) registers with `after_commit`.

_commit_scopes = threading.local()


def _commit_stack() -> list[list[Callable[[], None]]]:
    if not hasattr(_commit_scopes, "stack"):
        _commit_scopes.stack = []
    return _commit_scopes.stack


def _open_commit_scope() -> None:
    _commit_stack().append([])


def _close_commit_scope(committed: bool) -> None:
    """End the innermost transaction's scope; run its callbacks (once each, in order) when it committed."""
    callbacks = _commit_stack().pop()
    if committed:
        for callback in dict.fromkeys(callbacks):
            callback()


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` when the current thread's transaction commits; at once outside a transaction."""
    stack = _commit_stack()
    if stack:
        stack[-1].append(callback)
    else:
        callback()


@dataclass(frozen=True)
class Migration:
    """One schema step: applied once per namespace, in version order, recorded in schema_migrations."""

    version: int
    description: str
    statements: str
    """`;`-separated DDL in SQLite's words (`schema_sql` turns it into PostgreSQL's)."""


def schema_sql(statement: str, dialect: str) -> str:
    """A DDL statement for `dialect` (the only column types the two spell differently)."""
    if dialect != POSTGRESQL:
        return statement
    statement = statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY "
                                  "PRIMARY KEY")
    statement = re.sub(r"\bBLOB\b", "BYTEA", statement)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)


@functools.lru_cache(maxsize=1024)
def _postgres_sql(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (a literal `%` doubled). No statement has a `?` in a literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def schema_name(namespace: str) -> str:
    """The PostgreSQL schema of a namespace. PostgreSQL cuts identifiers at 63 bytes, which would map
    two long account names to one schema: a long name is shortened with a hash of the whole instead."""
    name = SCHEMA_PREFIX + namespace
    if len(name.encode()) <= 63:
        return name
    return f"{name[:40]}_{hashlib.sha256(namespace.encode()).hexdigest()[:16]}"


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a namespace."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class _Row(tuple):
    """A PostgreSQL row read as sqlite3.Row reads: by position, by column name, unpacked."""

    _columns: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._columns[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._columns)


def _row_factory(cursor: Any) -> Any:
    columns = {column.name: index for index, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        row = _Row(values)
        row._columns = columns
        return row

    return make


class _PostgresConnection:
    """psycopg's connection behind the `Connection` interface: `?` placeholders; a lost connection raises
    DatabaseUnavailable."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        import psycopg

        try:
            if parameters:
                return self.raw.execute(_postgres_sql(sql), tuple(parameters))
            return self.raw.execute(sql)
        except psycopg.OperationalError:
            if self.raw.broken or self.raw.closed:
                raise DatabaseUnavailable() from None
            raise


_CLOCKS = {POSTGRESQL: "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION",
           SQLITE: "((julianday('now') - 2440587.5) * 86400.0)"}


def clock_of(connection: Connection) -> str:
    """`Database.clock` for code handed only the connection of a transaction (ci_gate.server.events)."""
    return _CLOCKS[POSTGRESQL if isinstance(connection, _PostgresConnection) else SQLITE]


class Database:
    """One namespace of the serve database (an account's tables, or the account directory). On SQLite one
    connection guarded by a lock (every statement is short; analyses run outside it); on PostgreSQL a
    connection for transactions and one for reads, so a status poll never waits behind a write
    transaction that waits for another replica's lock.

    `path` is the namespace's SQLite file (also a stable name for caches on PostgreSQL); `namespace`
    names its PostgreSQL schema.
    """

    def __init__(self, location: DatabaseUrl, path: Path, namespace: str, migrations: Sequence[Migration]) -> None:
        self.location = location
        self.dialect = location.dialect
        self.path = path
        self.schema = schema_name(namespace)
        self._locks = {"write": threading.RLock(), "read": threading.RLock()}
        self._lock = self._locks["write"]
        self._links: dict[str, Any] = {"write": None, "read": None}
        self._read_slot = "write" if self.dialect == SQLITE else "read"
        self._down_until = 0.0
        self._lock_key = _lock_key(self.schema)
        self._raw = self._open_sqlite() if self.dialect == SQLITE else self._open_postgres(wait=0.0)
        self._migrate(migrations)

    @property
    def _raw(self) -> Any:
        """The connection transactions use."""
        return self._links["write"]

    @_raw.setter
    def _raw(self, raw: Any) -> None:
        self._links["write"] = raw

    def skip_locked(self, of: str = "") -> str:
        """Appended to a queue SELECT: rows other replicas are claiming are skipped, not waited for
        (`of`: lock only that table's rows of a join). SQLite's write transaction holds the whole
        database, so there it is nothing."""
        if self.dialect != POSTGRESQL:
            return ""
        return f" FOR UPDATE OF {of} SKIP LOCKED" if of else " FOR UPDATE SKIP LOCKED"

    @property
    def clock(self) -> str:
        """SQL for the database server's clock in epoch seconds: leases are set and judged by one clock,
        so replicas on machines whose clocks disagree still agree on when a lease ran out."""
        return _CLOCKS[self.dialect]

    def lock_name(self, connection: Connection, name: str) -> None:
        """Inside a non-exclusive transaction: wait for, then hold until it ends, a lock on `name` in this
        namespace (PostgreSQL: an advisory transaction lock keyed by the schema and the name), so the
        transactions that read then append to one name's rows (a tag's history) take turns while those
        about other names run side by side. SQLite's write transaction holds the whole database already."""
        if self.dialect == POSTGRESQL:
            connection.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(f"{self.schema}\0{name}"),))

    @property
    def for_update(self) -> str:
        """Appended to a SELECT of a row the transaction will change: locked against a concurrent claim
        (PostgreSQL); SQLite's write transaction holds the whole database already."""
        return " FOR UPDATE" if self.dialect == POSTGRESQL else ""

    # --- connections -----------------------------------------------------------------------------

    def _open_sqlite(self) -> sqlite3.Connection:
        if not self.path.exists():  # private from the start; SQLite gives -wal and -shm the same mode
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _open_postgres(self, wait: float) -> Any:
        """A new connection with this namespace's schema on its search path; retried for `wait` seconds
        (tenacity, exponential backoff) before DatabaseUnavailable."""
        import psycopg
        from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

        def connect() -> Any:
            raw = psycopg.connect(self.location.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                  row_factory=_row_factory)
            raw.execute(f'SET search_path TO "{self.schema}"')
            # A replica that stalls inside a transaction (a lost network) must not hold its locks for ever.
            raw.execute("SET idle_in_transaction_session_timeout = '60s'")
            return raw

        try:
            for attempt in Retrying(stop=stop_after_delay(wait), wait=wait_exponential(multiplier=0.1, max=1.0),
                                    retry=retry_if_exception_type(psycopg.OperationalError), reraise=True):
                with attempt:
                    return connect()
        except psycopg.OperationalError:
            raise DatabaseUnavailable() from None
        raise DatabaseUnavailable()  # unreachable: Retrying either returns or re-raises

    def _connection(self, slot: str = "write") -> Any:
        """The live connection of `slot` (re-opened after a PostgreSQL restart). Called under its lock."""
        raw = self._links[slot]
        if self.dialect == POSTGRESQL and (raw is None or raw.closed or raw.broken):
            self._drop(slot)
            if time.monotonic() < self._down_until:
                raise DatabaseUnavailable()
            try:
                self._links[slot] = self._open_postgres(wait=RECONNECT_SECONDS)
            except DatabaseUnavailable:
                self._down_until = time.monotonic() + QUIET_SECONDS
                raise
        return self._links[slot]

    def close(self) -> None:
        for slot, lock in self._locks.items():
            with lock:
                if self._links[slot] is not None:
                    self._links[slot].close()
                    self._links[slot] = None

    # --- statements ------------------------------------------------------------------------------

    def _wrap(self, raw: Any) -> Connection:
        return raw if self.dialect == SQLITE else _PostgresConnection(raw)

    def _begin(self, exclusive: bool) -> Connection:
        """BEGIN on a live connection: a connection the server dropped while idle fails here, before the
        caller ran anything, so it is re-opened once and the transaction starts on the new one."""
        if self.dialect == SQLITE:
            self._raw.execute("BEGIN IMMEDIATE")
            return self._wrap(self._raw)
        import psycopg

        for attempt in (1, 2):
            connection = self._wrap(self._connection())
            try:
                connection.execute("BEGIN")
                if exclusive:
                    connection.execute("SELECT pg_advisory_xact_lock(?)", (self._lock_key,))
                return connection
            except (DatabaseUnavailable, psycopg.OperationalError):
                if attempt == 2:
                    raise DatabaseUnavailable() from None
                self._drop()
        raise DatabaseUnavailable()

    def _drop(self, slot: str = "write") -> None:
        if self._links[slot] is not None and self.dialect == POSTGRESQL:
            self._links[slot].close()
            self._links[slot] = None

    @contextmanager
    def transaction(self, exclusive: bool = True) -> Iterator[Connection]:
        """A transaction. `exclusive` (the default) serialises it with every other exclusive transaction
        on this namespace, across replicas, as SQLite's database lock does; the hot writes (a claim,
        `finish`, a submission) pass False and rely on row locks, constraints and `lock_name`."""
        with self._lock:
            connection = self._begin(exclusive)
            _open_commit_scope()  # work the transaction's body asks to run once its writes are visible
            committed = False
            try:
                try:
                    yield connection
                except BaseException:
                    try:
                        connection.execute("ROLLBACK")
                    except Exception:  # the connection is gone: the server rolled back already
                        self._drop()
                    raise
                try:
                    connection.execute("COMMIT")
                except DatabaseUnavailable:
                    self._drop()
                    raise
                committed = True
            finally:
                _close_commit_scope(committed)

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """A read outside a transaction (retried once on a fresh connection when the old one was lost)."""
        slot = self._read_slot
        with self._locks[slot]:
            for attempt in (1, 2):
                connection = self._wrap(self._connection(slot))
                try:
                    return list(connection.execute(sql, parameters))
                except DatabaseUnavailable:
                    self._drop(slot)
                    if attempt == 2:
                        raise
        raise DatabaseUnavailable()

    # --- migrations ------------------------------------------------------------------------------

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply the migrations this namespace has not had, each once, under a lock every replica takes."""
        with self._lock:
            raw = self._raw
            if self.dialect == SQLITE:
                raw.execute("BEGIN IMMEDIATE")
            else:
                raw.execute("SELECT pg_advisory_lock(%s)", (self._lock_key,))
                raw.execute("BEGIN")
                raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            try:
                connection = self._wrap(raw)
                connection.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                                   "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
                applied = {row[0] for row in connection.execute("SELECT version FROM schema_migrations")}
                for migration in sorted(migrations, key=lambda m: m.version):
                    if migration.version in applied:
                        continue
                    for statement in migration.statements.split(";"):
                        if statement.strip():
                            connection.execute(schema_sql(statement.strip(), self.dialect))
                    connection.execute("INSERT INTO schema_migrations (version, description, applied_at) "
                                       "VALUES (?, ?, ?)", (migration.version, migration.description, _now()))
                connection.execute("COMMIT")
            except BaseException:
                self._raw.execute("ROLLBACK")
                raise
            finally:
                if self.dialect == POSTGRESQL:
                    raw.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))

    def applied_migrations(self) -> list[int]:
        return [int(row[0]) for row in self.query("SELECT version FROM schema_migrations ORDER BY version")]


def database_errors() -> tuple[type[BaseException], ...]:
    """What opening or using either database may raise (psycopg's only when it is installed)."""
    errors: tuple[type[BaseException], ...] = (OSError, sqlite3.Error, DatabaseUnavailable)
    try:
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.Error)


def insert_new(connection: Connection, table: str, row: Mapping[str, Any]) -> bool:
    """Insert `row` unless a row with its key exists; False then (a 409 for the caller). One statement, so
    two replicas creating the same name at once get one row and one refusal."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    return bool(connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                                   tuple(row.values())).rowcount)


def filtered(sql: str, parameters: Sequence[Any], equal: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`sql` (ending in a WHERE clause) narrowed by `AND column = ?` for each (column, value) whose value
    is given (not None or empty)."""
    narrowed = list(parameters)
    for column, value in equal:
        if value:
            sql += f" AND {column} = ?"
            narrowed.append(value)
    return sql, narrowed


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
