"""Waking this process's delivery threads when a notification is queued.

`ci_gate.server.events.add_event` calls `queued` once the transaction that wrote the outbox row
has committed (so the woken thread can see the row), and each running Dispatcher listens here.
Rows written by other replicas sharing a PostgreSQL database are theirs to wake for; this process
finds any they leave behind at its slow poll.
"""

from __future__ import annotations

import threading

_listeners: set[threading.Event] = set()
_guard = threading.Lock()


def listen(event: threading.Event) -> None:
    with _guard:
        _listeners.add(event)


def forget(event: threading.Event) -> None:
    with _guard:
        _listeners.discard(event)


def queued() -> None:
    """A notification entered the outbox: every delivery thread of this process looks now."""
    with _guard:
        listeners = list(_listeners)
    for event in listeners:
        event.set()
