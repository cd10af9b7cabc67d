"""The delivery thread of `ci-gate serve`: fans the outbox out and sends due deliveries.

It runs beside the analysis workers and the API and shares nothing with them but the database: a
receiver that hangs holds one of its sender threads for at most the send timeout, never a request
or an analysis.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ci_gate.database import DatabaseUnavailable
from ci_gate.database_url import POSTGRESQL
from ci_gate.notify import hosts, listener, outbox, wakeup
from ci_gate.notify.endpoints import CredentialSealer, Endpoint, list_endpoints
from ci_gate.notify.senders import Delivery, Refused, RetryLater, send

LOG = logging.getLogger("ci_gate.notify")

POLL_VARIABLE = "CI_GATE_NOTIFY_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 10.0
"""The slow poll: an event queued in this process (ci_gate.notify.wakeup) or, on PostgreSQL, by another
replica (ci_gate.notify.listener) wakes the thread at once, and a retry is waited for until it is due; the
poll finds what is left over (a delivery whose replica died mid-send, a notification missed in an outage)."""
PAUSE_AFTER_ERROR = 1.0
SENDERS = 4
"""Deliveries in flight at once (a slow receiver delays the others by at most the send timeout)."""


class Dispatcher:
    """Delivers every account's outbox; `stores` maps account names to their stores at each pass."""

    def __init__(self, stores: Callable[[], Mapping[str, Any]], box: CredentialSealer,
                 configured: Sequence[Endpoint] = (), interval: float | None = None,
                 allowed_hosts: Sequence[str] = ()) -> None:
        self._stores = stores
        self._box = box
        self.configured = list(configured)
        """Endpoints from the engine-style `webhooks` file: every account's events go to them."""
        self.allowed_hosts = tuple(dict.fromkeys([*allowed_hosts, *hosts.trusted_hosts(configured)]))
        """Hosts API-configured endpoints may reach: `serve --allow-notify-host` and the file's hosts."""
        self.interval = interval if interval is not None else float(os.environ.get(POLL_VARIABLE)
                                                                     or DEFAULT_POLL_SECONDS)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="ci-gate-notify-send")
        self._next_prune = 0.0

    def endpoints(self, store: Any) -> list[Endpoint]:
        return [*self.configured, *list_endpoints(store, self._box)]

    def hosts_for(self, endpoint: Endpoint) -> tuple[str, ...] | None:
        """The allowlist a delivery to `endpoint` is held to; None for the operator's own file's endpoints."""
        return None if any(endpoint.endpoint_id == c.endpoint_id for c in self.configured) else self.allowed_hosts

    def check_host(self, endpoint: Endpoint) -> None:
        """Raise hosts.HostNotAllowed when an API-configured endpoint would reach a host not allowed."""
        allowlist = self.hosts_for(endpoint)
        if allowlist is not None:
            hosts.check_endpoint(endpoint, allowlist)

    def start(self) -> None:
        for store in self._stores().values():
            resumed = outbox.resume_sending(store)
            if resumed:
                LOG.info("%d notification deliveries interrupted by the last stop will be sent again", resumed)
        wakeup.listen(self._wake)
        self._thread = threading.Thread(target=self._run, name="ci-gate-notify", daemon=True)
        self._thread.start()
        shared = next((store.database.location.url for store in self._stores().values()
                       if store.database.dialect == POSTGRESQL), None)
        if shared:  # replicas share the outbox: wake when any of them queues a notification
            threading.Thread(target=listener.listen, args=(shared, self._wake, self._stopping),
                             name="ci-gate-notify-listen", daemon=True).start()

    def stop(self) -> None:
        wakeup.forget(self._wake)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Look at the outbox now (an event was just recorded)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before the pass: an event queued during it wakes the next wait
            try:
                busy = self.pass_once()
                idle = 0.0 if busy else self._until_next_retry()
            except DatabaseUnavailable:  # PostgreSQL restarting: the next pass tries again
                LOG.warning("notification delivery waits for the database")
                idle = min(self.interval, PAUSE_AFTER_ERROR)
            except Exception:  # a broken store must not end the thread; the next pass tries again
                LOG.exception("notification delivery pass failed")
                idle = min(self.interval, PAUSE_AFTER_ERROR)
            if idle > 0:
                self._wake.wait(idle)

    def _until_next_retry(self) -> float:
        """Seconds to sleep: until the earliest scheduled retry in any account, at most the slow poll."""
        wait = self.interval
        for store in list(self._stores().values()):
            until = outbox.seconds_until_next_attempt(store)
            if until is not None:
                wait = min(wait, max(0.01, until))
        return wait

    def pass_once(self) -> bool:
        """Fan out and send what is due, in every account; True when there was work."""
        worked = False
        prune = time.monotonic() >= self._next_prune
        if prune:
            self._next_prune = time.monotonic() + 3600
        for account, store in list(self._stores().items()):
            if prune:
                outbox.prune(store)
            endpoints = {e.endpoint_id: e for e in self.endpoints(store)}
            outbox.fan_out(store, endpoints.values())
            outbox.drop_endpointless(store, [key for key, endpoint in endpoints.items() if endpoint.enabled])
            due = outbox.claim_due(store, SENDERS * 4)
            worked = worked or bool(due)
            futures = [self._pool.submit(self._deliver, account, store, endpoints[d.endpoint_id], d) for d in due
                       if d.endpoint_id in endpoints]
            for future in futures:
                future.result()
        return worked

    def _deliver(self, account: str, store: Any, endpoint: Endpoint, due: outbox.DueDelivery) -> None:
        delivery = Delivery(due.idempotency_key, due.event, account, due.tries,
                            int(due.created + outbox.retry_window()), self.hosts_for(endpoint))
        try:
            sent = send(endpoint, delivery)
        except RetryLater as later:
            state = outbox.mark_failed_attempt(store, due, str(later), later.status, later.retry_after, False)
            outcome = "will retry" if state == outbox.PENDING else "gave up after the retry window"
            LOG.info("notification %s to %s endpoint %s: %s (%s)", due.idempotency_key[:12], endpoint.kind,
                     endpoint.name, later, outcome)
        except Refused as refused:
            outbox.mark_failed_attempt(store, due, str(refused), refused.status, None, True)
            LOG.warning("notification %s to %s endpoint %s refused: %s", due.idempotency_key[:12], endpoint.kind,
                        endpoint.name, refused)
        except Exception as error:  # a bug in a sender: retried like an outage, logged with its traceback
            LOG.exception("notification %s to %s endpoint %s failed", due.idempotency_key[:12], endpoint.kind,
                          endpoint.name)
            outbox.mark_failed_attempt(store, due, f"internal error: {type(error).__name__}", None, None, False)
        else:
            outbox.mark_delivered(store, due.idempotency_key, sent.status, sent.external_ref)
