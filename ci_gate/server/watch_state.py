"""The vulnerability watcher's re-match state, kept in the database (table `watcher_state`, migration 3).

The incremental engine (`ci_gate.rematch`) works on a SQLite file in the data dir. Replicas sharing a
PostgreSQL database take turns running the watcher (its lease), so the file of one replica would be
stale, or missing, on the next holder: it would record again the events its predecessor recorded, or
take a new baseline and miss the changes in between. So the committed file is stored in the database
after every pass, as a numbered generation, and a replica whose file is not the newest generation
replaces it with the stored one before its pass: a takeover continues where the last holder stopped.

A holder that lost its lease in the middle of a pass (another replica stored a newer generation since
it read its own) does not overwrite the newer state; its next pass starts from the stored one.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS watcher_state (
    name TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    state BLOB NOT NULL,
    updated REAL NOT NULL
)
"""


class SharedState:
    """One watcher's state file and its copy in a store's database."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.generation = 0
        """The stored generation the local file holds (0: none known yet)."""

    def pull(self, store: Any) -> bool:
        """Replace the local file by the stored state when that is another generation; True when it did.
        With nothing stored yet (the first pass, or a data dir from before the state was shared), the local
        file stays as it is and the next `push` stores it."""
        rows = store._query("SELECT generation FROM watcher_state WHERE name = ?", (self.name,))
        if not rows or int(rows[0]["generation"]) == self.generation:
            return False
        rows = store._query("SELECT generation, state FROM watcher_state WHERE name = ?", (self.name,))
        if not rows:
            return False
        self._write(zlib.decompress(bytes(rows[0]["state"])))
        self.generation = int(rows[0]["generation"])
        return True

    def push(self, store: Any) -> bool:
        """Store the local file as the next generation; False when another replica stored one since this
        replica's (then this replica's pass is dropped, and the next `pull` takes theirs)."""
        state = zlib.compress(self.path.read_bytes(), 6)
        clock = store.database.clock
        with store._transaction() as connection:
            if self.generation <= 0:  # none stored yet as far as this replica knows
                stored = connection.execute(
                    f"INSERT INTO watcher_state (name, generation, state, updated) VALUES (?, 1, ?, {clock}) "
                    "ON CONFLICT (name) DO NOTHING", (self.name, state)).rowcount
            else:
                stored = connection.execute(
                    f"UPDATE watcher_state SET generation = generation + 1, state = ?, updated = {clock} "
                    "WHERE name = ? AND generation = ?", (state, self.name, self.generation)).rowcount
        self.generation = self.generation + 1 if stored else -1  # -1: differs from every stored generation
        return bool(stored)

    def _write(self, state: bytes) -> None:
        """The stored state as the local file, whole or not at all; only the serve user reads it."""
        pulled = self.path.with_name(self.path.name + ".pulled")
        descriptor = os.open(pulled, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        for leftover in ("-journal", "-wal", "-shm"):  # a crashed pass's journal must not roll back onto it
            Path(str(self.path) + leftover).unlink(missing_ok=True)
        os.replace(pulled, self.path)
