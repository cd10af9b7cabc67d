"""Accounts besides `admin`, and their users: Anchore Enterprise's `POST /v2/accounts` and
`POST /v2/accounts/{account}/users`, for the admin user only.

Each account's images, analyses, policies, keys and everything else the server stores live in a
database of their own (`accounts/NAME/ci-gate-serve.sqlite` under the data dir; on PostgreSQL a
schema of their own), so one account can never read or change another's data through any query,
present or future: isolation is structural, not a WHERE clause each handler must remember. The
admin account keeps the data dir's main database. Accounts and users are kept in
`ci-gate-accounts.sqlite` (the `ci_gate_accounts` schema); passwords only as salted scrypt hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ci_gate.database import Database, insert_new
from ci_gate.database_url import DEFAULT_DATABASE, DatabaseUrl
from ci_gate.server.migrations import ACCOUNTS_MIGRATIONS
from ci_gate.server.status_error import StatusError
from ci_gate.server.store import ACCOUNT, now_text

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESERVED = frozenset({ACCOUNT, "_api_key", "anchore-system", "accounts"})
MIN_PASSWORD_LENGTH = 12
VERIFIED_SECONDS = 300.0
"""A password that verified is not hashed again for this long (scrypt on every request would be slow)."""


class AccountError(StatusError, ValueError):
    """An account or user request that cannot be honoured: the HTTP status and a one-line message."""


@dataclass(frozen=True)
class AccountRow:
    name: str
    """The account's name."""
    email: str
    """Contact address (free text, may be empty)."""
    created_at: str
    """When it was created."""


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class AccountDirectory:
    """The accounts and users table, thread-safe."""

    def __init__(self, data_dir: Path, database: DatabaseUrl = DEFAULT_DATABASE) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._database = Database(database, data_dir / "ci-gate-accounts.sqlite", "accounts", ACCOUNTS_MIGRATIONS)
        self._verified: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def close(self) -> None:
        self._database.close()

    def store_dir(self, account: str) -> Path:
        """Where an account's database lives."""
        return self.data_dir if account == ACCOUNT else self.data_dir / "accounts" / account

    def accounts(self) -> list[AccountRow]:
        rows = self._database.query("SELECT name, email, created_at FROM accounts ORDER BY name")
        return [AccountRow(*row) for row in rows]

    def exists(self, account: str) -> bool:
        if account == ACCOUNT:
            return True
        return bool(self._database.query("SELECT 1 FROM accounts WHERE name = ?", (account,)))

    def create_account(self, name: object, email: object = "") -> AccountRow:
        if not isinstance(name, str) or not NAME_PATTERN.match(name) or name in RESERVED:
            raise AccountError(400, "an account needs a name of 1-64 lower-case letters, digits, '_' or '-' "
                                    "(not admin): {\"name\": \"team-b\"}")
        if not isinstance(email, str) or len(email) > 256:
            raise AccountError(400, "email must be a string of at most 256 characters")
        now = now_text()
        with self._database.transaction() as connection:
            if not insert_new(connection, "accounts", {"name": name, "email": email, "created_at": now}):
                raise AccountError(409, f"account {name!r} already exists")
        return AccountRow(name, email, now)

    def add_user(self, account: str, username: object, password: object) -> str:
        if not self.exists(account) or account == ACCOUNT:
            raise AccountError(404, f"account not found: {account[:64]}")
        if not isinstance(username, str) or not NAME_PATTERN.match(username) or username in RESERVED:
            raise AccountError(400, "a user needs a username of 1-64 lower-case letters, digits, '_' or '-' "
                                    "and a password: {\"username\": \"bob\", \"password\": \"...\"}")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH or len(password) > 1024:
            raise AccountError(400, f"the password must be {MIN_PASSWORD_LENGTH} to 1024 characters long")
        salt = secrets.token_bytes(16)
        digest = _hash(password, salt)
        with self._database.transaction() as connection:
            if not insert_new(connection, "users", {"username": username, "account": account, "salt": salt,
                                                    "password_hash": digest, "created_at": now_text()}):
                raise AccountError(409, f"user {username!r} already exists")
        return username

    def verify(self, username: str, password: str) -> str | None:
        """The account of `username` when `password` is right; None otherwise."""
        if username in RESERVED or len(password) > 1024:
            return None
        remembered = hashlib.sha256(f"{username}\0{password}".encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(remembered)
            if cached is not None and now - cached[1] < VERIFIED_SECONDS:
                return cached[0]
        rows = self._database.query("SELECT account, salt, password_hash FROM users WHERE username = ?", (username,))
        row = rows[0] if rows else None
        if row is None:
            _hash(password, b"\0" * 16)  # as slow as a known user: no oracle for which users exist
            return None
        account, salt, expected = row
        if not hmac.compare_digest(_hash(password, bytes(salt)), bytes(expected)):
            return None
        with self._lock:
            self._verified[remembered] = (account, now)
            while len(self._verified) > 1024:
                self._verified.popitem(last=False)
        return str(account)
