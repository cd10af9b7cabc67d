"""The serve database's schema, as versioned migrations (ci_gate/database.py applies them once
per namespace, the same statements on SQLite and PostgreSQL).

Never edit a released migration: add the next version. Version 1 is the schema from before
migrations were recorded (`CREATE ... IF NOT EXISTS`), so an existing data dir adopts it as is.
"""

from __future__ import annotations

from ci_gate.database import Migration
from ci_gate.server import check_history, watch_state
from ci_gate.server.rows import _SCHEMA

LEASES = """
ALTER TABLE images ADD COLUMN claimed_by TEXT;
ALTER TABLE images ADD COLUMN lease_expires REAL;
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires REAL NOT NULL
);
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT
"""
"""Queue claims across replicas: who analyses an image and until when its lease runs (renewed by a
heartbeat); named leases for work one replica does at a time (the watchers); who sends a delivery."""

STORE_MIGRATIONS = (
    Migration(1, "images, analyses, policies, keys, registries, subscriptions, events, outbox", _SCHEMA),
    Migration(2, "leases for the queue, the watchers and deliveries", LEASES),
    Migration(3, "the vulnerability watcher's re-match state, shared by the replicas", watch_state.SCHEMA),
    Migration(4, "stored policy evaluations: a check's history", check_history.SCHEMA),
)
"""An account's tables (the admin account's, and each other account's in a namespace of its own)."""

ACCOUNTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, email TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    salt BLOB NOT NULL,
    password_hash BLOB NOT NULL,
    created_at TEXT NOT NULL
)
"""

ACCOUNTS_MIGRATIONS = (Migration(1, "accounts and their users", ACCOUNTS_SCHEMA),)
"""The account directory (ci-gate-accounts.sqlite, or the ci_gate_accounts schema)."""
