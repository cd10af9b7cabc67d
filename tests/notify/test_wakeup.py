"""The running delivery thread is woken by an event queued in this process, and by a retry falling due;
its slow poll is set to an hour here, so only those can deliver within the test's deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_gate.notify import outbox
from ci_gate.notify.dispatcher import Dispatcher
from ci_gate.server.records import CredentialBox
from ci_gate.server.store import Store
from tests.notify.conftest import TAG
from tests.notify.receivers import Receiver, start_receiver
from tests.notify.test_delivery import LOCAL, TAG_MOVED, add_endpoint, record

HOUR = 3600.0


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"not within {deadline:g} s: {what}")


def test_a_queued_event_and_a_due_retry_wake_a_thread_polling_hourly(
        store: Store, box: CredentialBox, receivers: list[Receiver],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_NOTIFY_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("CI_GATE_NOTIFY_BACKOFF_SECONDS", "1")  # the retry is not yet due at the pass after the 503
    hook = start_receiver(receivers, "webhook", outage=[503])
    add_endpoint(store, box, "webhook", {"url": hook.url + "/in"})
    dispatcher = Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL, interval=HOUR)
    dispatcher.start()
    try:
        time.sleep(0.3)  # the first pass found nothing: the thread is asleep for the hour now
        first = record(store, "tag_update", TAG_MOVED)
        wait_for(lambda: [r.status for r in hook.received] == [503, 200], "the event, then its retry")
        time.sleep(0.3)
        second = record(store, "tag_update", {**TAG_MOVED, "curr_eval": ["sha256:" + "c" * 64]})
        wait_for(lambda: len(hook.received) == 3, "a second event")
        # The receiver has answered before the dispatcher records the delivery: wait for the record too.
        wait_for(lambda: {d["event_id"] for d in outbox.list_deliveries(store, state=outbox.DELIVERED)}
                 == {first, second}, "both deliveries recorded as delivered")
    finally:
        dispatcher.stop()


def test_an_event_in_a_transaction_that_rolls_back_wakes_nothing(store: Store) -> None:
    import threading

    from ci_gate.notify import wakeup

    woken = threading.Event()
    wakeup.listen(woken)
    try:
        with pytest.raises(RuntimeError), store._transaction() as connection:
            from ci_gate.server.store import add_event

            add_event(connection, "admin", "tag_update", "registry.example.test/team/app:1.0", TAG_MOVED)
            raise RuntimeError("the request failed after recording the event")
        assert not woken.is_set()
        record(store, "tag_update", TAG_MOVED)
        assert woken.is_set()
    finally:
        wakeup.forget(woken)


_OTHER_REPLICA = """
import sys
from pathlib import Path
from ci_gate.database_url import parse_database_url
from ci_gate.server.store import Store, add_event
store = Store(Path(sys.argv[2]), parse_database_url(sys.argv[1]))
with store._transaction() as connection:
    add_event(connection, "admin", "tag_update", sys.argv[3], {"last_eval": ["a"], "curr_eval": ["b"]})
store.close()
"""


def test_an_event_another_replica_queues_wakes_this_one_on_postgresql(
        postgres_url: str, tmp_path: Path, box: CredentialBox, receivers: list[Receiver]) -> None:
    import subprocess
    import sys

    from ci_gate.database_url import parse_database_url
    from ci_gate.server.records import initialise_subscriptions

    database = parse_database_url(postgres_url)
    store = Store(tmp_path / "this", database)
    initialise_subscriptions(store, TAG, ("tag_update",))
    hook = start_receiver(receivers, "webhook")
    add_endpoint(store, box, "webhook", {"url": hook.url + "/in"})
    dispatcher = Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL, interval=HOUR)
    dispatcher.start()
    try:
        time.sleep(0.5)  # the first pass found nothing, the listener is listening: asleep for the hour
        subprocess.run([sys.executable, "-c", _OTHER_REPLICA, database.url, str(tmp_path / "other"), TAG],
                       check=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        wait_for(lambda: len(hook.received) == 1, "the other replica's event")
    finally:
        dispatcher.stop()
        store.close()
