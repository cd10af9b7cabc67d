"""Waking delivery threads across replicas that share a PostgreSQL database (LISTEN/NOTIFY).

`add_event` sends `NOTIFY ci_gate_outbox` inside the transaction that writes the outbox row;
PostgreSQL delivers it when, and only if, that transaction commits. Each replica's Dispatcher keeps
one connection listening on the channel and wakes its thread, so an event recorded by an `api`
replica is sent by a `worker` replica at once, not at its slow poll. SQLite has one process per data
dir: the in-process wakeup (ci_gate.notify.wakeup) is enough there.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

CHANNEL = "ci_gate_outbox"
RECONNECT_SECONDS = 1.0
LOG = logging.getLogger("ci_gate.notify")


def announce(connection: Any) -> None:
    """Inside the transaction that queued a notification: tell every listening replica at commit."""
    if not isinstance(connection, sqlite3.Connection):
        connection.execute(f"NOTIFY {CHANNEL}")


def listen(url: str, wake: threading.Event, stopping: threading.Event) -> None:
    """Set `wake` at each notification on the channel until `stopping` (reconnecting after an outage)."""
    import psycopg

    while not stopping.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                wake.set()  # what was queued while this replica was not listening
                while not stopping.is_set():
                    for _ in connection.notifies(timeout=1.0, stop_after=1):
                        wake.set()
        except psycopg.Error:  # PostgreSQL restarting: the slow poll covers the gap
            LOG.debug("notification listener lost the database; reconnecting")
            stopping.wait(RECONNECT_SECONDS)
