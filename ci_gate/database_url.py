"""Where the serve database is: `--database` / $CI_GATE_DATABASE parsed, checked once at start, and
kept secret (a password in a PostgreSQL URL never reaches a message or log line). The database itself
is `ci_gate.database`.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from ci_gate.errors import UsageError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DATABASE_VARIABLE = "CI_GATE_DATABASE"
"""The environment variable `--database` falls back to."""
CONNECT_TIMEOUT_SECONDS = 5

_PASSWORD_IN_URL = re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@")


def redact_url(text: str) -> str:
    """`text` with the password of any PostgreSQL URL in it masked."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


@dataclass(frozen=True)
class DatabaseUrl:
    """Where the serve database is: SQLite in the data dir, or a PostgreSQL URL (its password kept secret)."""

    dialect: str
    """`sqlite` or `postgresql`."""
    url: str = field(default="", repr=False)
    """The PostgreSQL URL as given (with its password); empty for SQLite."""

    @property
    def redacted(self) -> str:
        return redact_url(self.url) if self.url else "SQLite in the data dir"

    def __str__(self) -> str:
        return self.redacted


DEFAULT_DATABASE = DatabaseUrl(SQLITE)


def parse_database_url(text: str | None) -> DatabaseUrl:
    """`--database` (or $CI_GATE_DATABASE): empty = SQLite in the data dir; else a postgresql:// URL.
    A malformed value is a UsageError naming the expected form, with any password masked."""
    text = (text or "").strip()
    if not text:
        return DEFAULT_DATABASE
    shown = redact_url(text)
    expected = ("give --database postgresql://USER@HOST[:PORT]/DATABASE (USER:PASSWORD@ when the server wants a "
                "password), or leave it out for SQLite in --data-dir")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"--database {shown} is not a valid URL; {expected}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError(f"--database {shown} is not a PostgreSQL URL; {expected}")
    if not parts.hostname or not parts.path.strip("/"):
        raise UsageError(f"--database {shown} needs a host and a database name; {expected}")
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--database {shown} has no valid port; {expected}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UsageError("--database postgresql://... needs psycopg: pip install 'ci-gate[server]'") from None
    return DatabaseUrl(POSTGRESQL, text)


def check_reachable(database: DatabaseUrl) -> None:
    """Log in once (at start): an unreachable server or a refused login is one UsageError line (exit 2)."""
    if database.dialect != POSTGRESQL:
        return
    import psycopg

    try:
        psycopg.connect(database.url, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.Error as error:
        reason = " ".join(redact_url(str(error)).split())
        raise UsageError(f"cannot connect to the database {database.redacted}: {reason}; check --database and "
                         "that PostgreSQL is running and reachable") from None
