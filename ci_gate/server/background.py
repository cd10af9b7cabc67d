"""A serve background loop (the tag watcher, the vulnerability watcher): one daemon thread that runs
`_run` until `stop()`, which sets `_stopping` (the event the loop waits on) and waits for the thread.

Replicas sharing a database each run the loop, but only the one holding its lease (`lease`, set by
the service; `Store.hold_lease`) does a pass, so events are recorded once. A replica that stops
hands its lease back (`release`), so another takes the loop over at its next poll, not a lease later."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

LOG = logging.getLogger("ci_gate.server")


class BackgroundLoop:
    thread_name = "ci-gate-background"

    pass_seconds = 60.0
    """About how often the loop makes a pass (its lease outlasts a few of them)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.lease: Callable[[float], bool] | None = None
        """Takes or renews this loop's lease for the given seconds; None = no other replica to share with."""
        self.release: Callable[[], None] | None = None
        """Gives this loop's lease up (this replica stops)."""

    def leading(self) -> bool:
        """Whether this replica makes the next pass (it holds, or just took, the loop's lease)."""
        if self.lease is None:
            return True
        try:
            return self.lease(max(30.0, 3 * self.pass_seconds))
        except Exception as error:  # the database is away: no pass now; the next one asks again
            LOG.info("cannot take the %s lease: %s", self.thread_name, error)
            return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            if self._thread.is_alive() or self.release is None:  # a pass still running keeps its lease
                return
            try:
                self.release()
            except Exception as error:  # the database is away: the lease runs out on its own
                LOG.info("cannot hand the %s lease back: %s", self.thread_name, error)

    def _run(self) -> None:
        raise NotImplementedError
