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
_PASSWORD_IN_QUERY = re.compile(r"(?i)([?&](?:ssl)?password=)[^&#\s]*")
"""libpq takes the password as a query parameter too (`?password=`), and a client key's as `sslpassword`."""
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,19})://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_WHITESPACE = re.compile(r"\s")
_ENCODE = ("percent-encode the password's special characters (@ as %40, : as %3A, / as %2F, ? as %3F, "
           "# as %23, % as %25, a space as %20)")
EXPECTED = ("give --database postgresql://USER@HOST[:PORT]/DATABASE (USER:PASSWORD@ when the server wants a "
            "password), or leave it out for SQLite in --data-dir")


def redact_url(text: str) -> str:
    """`text` with the password of any PostgreSQL URL in it masked (in the user info or the query)."""
    return _PASSWORD_IN_QUERY.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1***@", text))


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

    A malformed value is a UsageError that never quotes it: a value that does not parse may hold its
    password anywhere (an unencoded `@`, `/` or `#` in the password moves where the host seems to start,
    and Python's parser and libpq's then disagree on it), so the message says what is wrong instead."""
    text = (text or "").strip()
    if not text:
        return DEFAULT_DATABASE
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(1).lower() not in ("postgresql", "postgres"):
        found = f"it starts with {scheme.group(1)[:20]}://" if scheme else "it does not start with postgresql://"
        raise UsageError(f"--database is not a PostgreSQL URL ({found}); {EXPECTED}")
    after_scheme = text[scheme.end():]
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"--database is not a valid URL: check that its port is a number, and {_ENCODE}; "
                         f"{EXPECTED}") from None
    userinfo = parts.netloc.rpartition("@")[0]
    if (after_scheme.count("@") != parts.netloc.count("@") or parts.netloc.count("@") > 1 or "#" in text
            or _WHITESPACE.search(text) or _BAD_ESCAPE.search(userinfo)):
        raise UsageError(f"--database is not a valid URL: {_ENCODE}; {EXPECTED}")
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    # libpq's forms of a Unix-domain socket: the host percent-encoded (postgresql://%2Frun%2Fpostgresql/db)
    # or given as a query parameter (postgresql:///db?host=/run/postgresql).
    host = parts.hostname or query.get("host", "")
    if not host or not (parts.path.strip("/") or query.get("dbname")):
        raise UsageError(f"--database {redact_url(text)} needs a host and a database name; {EXPECTED}")
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--database {redact_url(text)} has no valid port; {EXPECTED}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UsageError("--database postgresql://... needs psycopg: pip install 'ci-gate[server]'") from None
    return DatabaseUrl(POSTGRESQL, text)


def _password(database: DatabaseUrl) -> str:
    """The password the URL carries (decoded), in the user info or the query; empty when none."""
    parts = urllib.parse.urlsplit(database.url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    return urllib.parse.unquote(parts.password or "") or query.get("password", "")


def check_reachable(database: DatabaseUrl) -> None:
    """Log in once (at start): an unreachable server or a refused login is one UsageError line (exit 2)."""
    if database.dialect != POSTGRESQL:
        return
    import psycopg

    try:
        psycopg.connect(database.url, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.Error as error:
        reason = " ".join(redact_url(str(error)).split())
        password = _password(database)
        if len(password) >= 4:  # libpq may quote a value it could not use; a short one would mask too much
            reason = reason.replace(password, "***")
        raise UsageError(f"cannot connect to the database {database.redacted}: {reason}; check --database and "
                         "that PostgreSQL is running and reachable") from None
