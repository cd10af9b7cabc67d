"""The durable outbox in each account's serve database.

`ci_gate.server.events.add_event` writes a subscribed event into `outbox` in the transaction that
records the event. The delivery thread fans each outbox row out into one `deliveries` row per
endpoint that takes its type (the idempotency key is derived from event and endpoint, so a second
fan-out after a crash inserts nothing), then sends the due ones. A delivery is marked `sending`
before it is sent and `delivered` after a 2xx: a crash in between leaves it `sending`, and the next
start sends it again under the same key (at-least-once; receivers drop repeats by the key).
Retries follow exponential backoff with full jitter (tenacity's wait strategy) until the delivery
is older than the retry window (24 h), then it is `failed`.

Replicas sharing a PostgreSQL database share the outbox: fan-out and claims lock the rows they take
(`FOR UPDATE SKIP LOCKED`), so each due delivery is claimed, and sent, by one replica. A delivery left
`sending` by a replica that died is due again after SENDING_LEASE_SECONDS by the database's clock (on
SQLite, at the next start). Retries are scheduled and found due by that clock too (`next_attempt`), so a
replica whose clock runs behind does not retry a receiver before its backoff is over, nor one whose clock
runs ahead leave a due retry waiting; and the retry window counts on it from the event's recording
(`created`, stamped by the database), so no replica gives up early or retries past the window because of
its own clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ci_gate.database import filtered
from ci_gate.database_url import SQLITE
from ci_gate.notify.endpoints import Endpoint

PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
STATES = (PENDING, SENDING, DELIVERED, FAILED)

WINDOW_VARIABLE = "CI_GATE_NOTIFY_RETRY_WINDOW_SECONDS"
BACKOFF_VARIABLE = "CI_GATE_NOTIFY_BACKOFF_SECONDS"
DEFAULT_WINDOW = 24 * 3600.0
DEFAULT_BACKOFF = 2.0
MAX_BACKOFF = 3600.0
SENDING_LEASE_SECONDS = 300.0
"""A delivery `sending` this long (its replica died mid-send) is claimed again by another replica. Judged
by the database server's clock (`Database.clock`), as the image and watcher leases are, so a replica
whose clock runs ahead does not take over a send still in progress."""
LEASE_VARIABLE = "CI_GATE_NOTIFY_SENDING_LEASE_SECONDS"


def retry_window() -> float:
    return float(os.environ.get(WINDOW_VARIABLE) or DEFAULT_WINDOW)


def sending_lease() -> float:
    return float(os.environ.get(LEASE_VARIABLE) or SENDING_LEASE_SECONDS)


def backoff_seconds(tries: int) -> float:
    """The wait after the `tries`-th failed attempt: exponential (base from the environment for tests),
    capped at an hour, with full jitter so many deliveries to one receiver do not retry in step."""
    from tenacity import RetryCallState, wait_random_exponential

    base = float(os.environ.get(BACKOFF_VARIABLE) or DEFAULT_BACKOFF)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, tries)
    wait = wait_random_exponential(multiplier=base, max=min(MAX_BACKOFF, base * 1800))
    # tenacity's full jitter may pick ~0; keep a floor of half the base so a busy receiver gets a pause
    return max(base / 2, float(wait(state)) + random.uniform(0, base / 10))


def idempotency_key(event_uuid: str, endpoint_id: str) -> str:
    return hashlib.sha256(f"{event_uuid}\n{endpoint_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for sending."""

    idempotency_key: str
    """The same on every try of this event to this endpoint."""
    endpoint_id: str
    """Where it goes."""
    event: dict[str, Any]
    """The outbox's copy of the event."""
    tries: int
    """This attempt's number (1 = first)."""
    created: float
    """When the event was recorded (epoch seconds): the retry window counts from here."""


def fan_out(store: Any, endpoints: Iterable[Endpoint]) -> int:
    """Turn waiting outbox rows into deliveries, one per enabled endpoint taking their type. Returns how many."""
    endpoints = [e for e in endpoints if e.enabled]
    made = 0
    clock = store.database.clock  # due at once, by the clock `claim_due` judges it by
    with store._transaction(exclusive=False) as connection:
        rows = connection.execute("SELECT event_uuid, notification_type, created FROM outbox WHERE fanned_out = 0 "
                                  "ORDER BY created LIMIT 500" + store.database.skip_locked()).fetchall()
        for row in rows:
            for endpoint in endpoints:
                if row["notification_type"] not in endpoint.notification_types:
                    continue
                made += connection.execute(
                    "INSERT INTO deliveries (idempotency_key, event_uuid, endpoint_id, endpoint_kind, "
                    f"notification_type, state, created, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, {clock}) "
                    "ON CONFLICT DO NOTHING",
                    (idempotency_key(row["event_uuid"], endpoint.endpoint_id), row["event_uuid"],
                     endpoint.endpoint_id, endpoint.kind, row["notification_type"], PENDING,
                     row["created"])).rowcount
            connection.execute("UPDATE outbox SET fanned_out = 1 WHERE event_uuid = ?", (row["event_uuid"],))
    return made


def resume_sending(store: Any) -> int:
    """At start, on SQLite: deliveries the data dir's previous process left `sending` are due again (same
    key). On PostgreSQL another replica may be sending them: `claim_due` takes over those whose sender
    has been silent for SENDING_LEASE_SECONDS."""
    if store.database.dialect != SQLITE:
        return 0
    with store._transaction() as connection:
        return int(connection.execute(f"UPDATE deliveries SET state = ?, next_attempt = {store.database.clock} "
                                      "WHERE state = ?", (PENDING, SENDING)).rowcount)


def claim_due(store: Any, limit: int) -> list[DueDelivery]:
    """Mark up to `limit` due deliveries `sending` and return them."""
    clock = store.database.clock  # when a retry is due and the lease's start and end: the one shared clock
    with store._transaction(exclusive=False) as connection:
        rows = connection.execute(
            "SELECT d.idempotency_key, d.endpoint_id, d.tries, d.created, o.event FROM deliveries d "
            f"JOIN outbox o ON o.event_uuid = d.event_uuid WHERE (d.state = ? AND d.next_attempt <= {clock}) "
            f"OR (d.state = ? AND d.last_attempt < {clock} - ?) ORDER BY d.next_attempt LIMIT ?"
            + store.database.skip_locked("d"), (PENDING, SENDING, sending_lease(), limit)).fetchall()
        for row in rows:
            connection.execute(f"UPDATE deliveries SET state = ?, tries = tries + 1, last_attempt = {clock} "
                               "WHERE idempotency_key = ?", (SENDING, row["idempotency_key"]))
    return [DueDelivery(row["idempotency_key"], row["endpoint_id"], json.loads(row["event"]), row["tries"] + 1,
                        row["created"]) for row in rows]


def seconds_until_next_attempt(store: Any) -> float | None:
    """How long until the earliest pending delivery is due, by the database's clock (negative: overdue);
    None when none is pending."""
    rows = store._query(f"SELECT MIN(next_attempt) - {store.database.clock} FROM deliveries WHERE state = ?",
                        [PENDING])
    return float(rows[0][0]) if rows and rows[0][0] is not None else None


def mark_delivered(store: Any, key: str, status: int | None, external_ref: str) -> None:
    with store._transaction() as connection:
        connection.execute(f"UPDATE deliveries SET state = ?, delivered_at = {store.database.clock}, last_status = ?, "
                           "last_error = '', external_ref = ? WHERE idempotency_key = ?",
                           (DELIVERED, status, external_ref, key))


def mark_failed_attempt(store: Any, delivery: DueDelivery, reason: str, status: int | None,
                        retry_after: float | None, permanent: bool) -> str:
    """Schedule the next attempt (`wait` from now by the database's clock), or give up (refused for good, or
    past the retry window, which counts from the event's recording on that clock too). The new state."""
    wait = backoff_seconds(delivery.tries)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_BACKOFF))
    with store._transaction() as connection:
        now = float(connection.execute(f"SELECT {store.database.clock}").fetchone()[0])
        state = FAILED if permanent or now + wait > delivery.created + retry_window() else PENDING
        connection.execute(f"UPDATE deliveries SET state = ?, next_attempt = {store.database.clock} + ?, "
                           "last_status = ?, last_error = ? WHERE idempotency_key = ?",
                           (state, wait, status, reason[:300], delivery.idempotency_key))
    return state


def drop_endpointless(store: Any, known: Iterable[str]) -> None:
    """Deliveries whose endpoint was deleted or disabled fail at once (nothing to send them to)."""
    known = list(known)
    marks = ",".join("?" * len(known)) or "''"
    with store._transaction() as connection:
        connection.execute(f"UPDATE deliveries SET state = ?, last_error = 'the endpoint was deleted or disabled' "
                           f"WHERE state IN (?, ?) AND endpoint_id NOT IN ({marks})",
                           (FAILED, PENDING, SENDING, *known))


KEEP_SECONDS = 7 * 24 * 3600.0
"""How long finished deliveries stay listable."""


def prune(store: Any, now: float | None = None) -> int:
    """Forget deliveries finished more than KEEP_SECONDS ago (by the database's clock, or `now`), and outbox
    rows none of whose deliveries is left."""
    with store._transaction() as connection:
        if now is None:
            now = float(connection.execute(f"SELECT {store.database.clock}").fetchone()[0])
        cutoff = now - KEEP_SECONDS
        removed = connection.execute("DELETE FROM deliveries WHERE state IN (?, ?) AND created < ?",
                                     (DELIVERED, FAILED, cutoff)).rowcount
        connection.execute("DELETE FROM outbox WHERE fanned_out = 1 AND created < ? AND event_uuid NOT IN "
                           "(SELECT event_uuid FROM deliveries)", (cutoff,))
    return int(removed)


def list_deliveries(store: Any, state: str | None = None, notification_type: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    sql, parameters = filtered("SELECT * FROM deliveries WHERE 1 = 1", [],
                               (("state", state), ("notification_type", notification_type)))
    rows = store._query(sql + " ORDER BY created DESC, idempotency_key LIMIT ?", [*parameters, limit])

    def when(value: float | None) -> str | None:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value)) if value else None

    return [{"idempotency_key": r["idempotency_key"], "event_id": r["event_uuid"], "endpoint_id": r["endpoint_id"],
             "endpoint": r["endpoint_kind"], "notification_type": r["notification_type"], "state": r["state"],
             "tries": r["tries"], "created_at": when(r["created"]), "last_attempt_at": when(r["last_attempt"]),
             "next_attempt_at": when(r["next_attempt"]) if r["state"] == PENDING else None,
             "delivered_at": when(r["delivered_at"]), "last_status": r["last_status"], "last_error": r["last_error"],
             "external_ref": r["external_ref"]} for r in rows]
