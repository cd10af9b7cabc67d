"""The serve store on both databases (SQLite in a data dir; a real PostgreSQL server): the same code
path, the same migrations, compressed analyses, leases on queue claims, the outbox, named leases.

Multi-replica behaviour is checked with several real processes on one PostgreSQL database: claims
are unique, a SIGKILLed claimer's lease is taken over, migrations run once, each delivery is claimed
by one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ci_gate.database_url import SQLITE, DatabaseUrl, parse_database_url
from ci_gate.notify import outbox
from ci_gate.notify.endpoints import Endpoint, list_endpoints, save_endpoint
from ci_gate.server import records
from ci_gate.server.accounts import AccountDirectory, AccountError
from ci_gate.server.store import ANALYZED, ANALYZING, NOT_ANALYZED, Store
from tests.support.postgres import PostgresServer

REPOSITORY = Path(__file__).resolve().parents[2]
DIGESTS = [f"sha256:{index:064x}" for index in range(1, 41)]

StoreFactory = Callable[..., Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseUrl:
    """Each test below runs once on SQLite in a data dir and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return DatabaseUrl(SQLITE)
    return parse_database_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def open_store(backend: DatabaseUrl, tmp_path: Path) -> Iterator[StoreFactory]:
    """`open_store(account="admin", lease_seconds=30)`: a Store on the test's backend (a second call is
    a second connection, as another replica would have)."""
    opened: list[Store] = []

    def make(account: str = "admin", lease_seconds: float = 30.0) -> Store:
        store = Store(tmp_path / "data" / account, backend, account, lease_seconds)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _queue(store: Store, digests: list[str], tag_prefix: str = "127.0.0.1:5000/app") -> None:
    for index, digest in enumerate(digests):
        store.add_image(digest, f"127.0.0.1:5000/app@{digest}", f"{tag_prefix}:{index}", {}, None, force=False)


def test_analysis_round_trips_compressed(open_store: StoreFactory) -> None:
    store = open_store()
    _queue(store, DIGESTS[:1])
    claimed = store.claim_next()
    assert claimed is not None and claimed.analysis_status == ANALYZING and claimed.claimed_by
    document = {"packages": [{"name": "openssl", "version": "3.0.11"}] * 200, "note": "ü 100%"}
    assert store.finish(claimed.digest, document, metadata={"layer_count": 2}, claim=claimed.claimed_by)
    assert store.analysis_document(claimed.digest) == document
    raw = bytes(store._query("SELECT document FROM analyses WHERE digest = ?", (claimed.digest,))[0]["document"])
    assert len(raw) < len(json.dumps(document)) / 10  # stored compressed, not as JSON text
    assert json.loads(zlib.decompress(raw)) == document
    record = store.get_image(claimed.digest)
    assert record is not None and record.analysis_status == ANALYZED and record.claimed_by is None
    assert record.metadata == {"layer_count": 2} and record.analysis_count == 1


def test_state_lives_in_the_database(open_store: StoreFactory, backend: DatabaseUrl, tmp_path: Path) -> None:
    """Policies, keys, subscriptions, events, evaluation history, endpoints and the outbox all go through
    the store; a second connection (another replica) sees them."""
    store = open_store()
    assert store.add_policy("p1", "one", "", {"id": "p1", "name": "one"}, active=True) is not None
    assert store.add_policy("p1", "again", "", {"id": "p1"}) is None  # 409, not an IntegrityError
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert store.add_api_key("ci", "", "secret-value-1", tomorrow) is not None
    _queue(store, DIGESTS[:1], tag_prefix="127.0.0.1:5000/watched")
    tag = "127.0.0.1:5000/watched:0"
    records.initialise_subscriptions(store, tag, ("policy_eval", "analysis_update"))
    assert records.record_evaluation(store, tag, "p1", DIGESTS[0], "pass") is False
    assert records.record_evaluation(store, tag, "p1", DIGESTS[0], "fail") is True  # flipped: a policy_eval event
    box = records.CredentialBox("admin-password-for-test")
    endpoint = Endpoint(endpoint_id="hook-1", kind="webhook", name="hook", settings={"url": "http://127.0.0.1:9/x"},
                        notification_types=("policy_eval",), secrets={"password": "hook-secret"})
    save_endpoint(store, box, endpoint, "2024-01-01T00:00:00Z")
    save_endpoint(store, box, endpoint, "2024-02-01T00:00:00Z")  # an update keeps one row (upsert)

    other = open_store()
    assert other.active_policy() is not None and other.active_policy().policy_id == "p1"  # type: ignore[union-attr]
    assert other.api_key_account("secret-value-1") == "admin"
    events = records.list_events(other, {}, 1, 100)["results"]
    assert [e["event"]["type"] for e in events] == ["user.checks.tag.policy_evaluation.update"]
    assert [s["subscription_type"] for s in records.list_subscriptions(other, key=tag) if s["active"]] == [
        "analysis_update", "policy_eval"]
    [listed] = list_endpoints(other, box)
    assert listed.secrets == {"password": "hook-secret"}
    assert outbox.fan_out(other, [listed]) == 1
    [due] = outbox.claim_due(other, 10)
    assert due.event["notification_type"] == "policy_eval" and outbox.claim_due(store, 10) == []
    history = other._query("SELECT status FROM evaluation_history WHERE tag = ? ORDER BY seq", (tag,))
    assert [row["status"] for row in history] == ["pass", "fail"]
    assert [r.digest for r in other.list_images(tag)] == DIGESTS[:1]  # LIKE ... ESCAPE on the tags column
    assert [r.digest for r in other.images_for_tag(tag)] == DIGESTS[:1]
    assert records.list_events(other, {"event_type": "user.checks.*"}, 1, 10)["item_count"] == 1
    assert records.list_events(other, {"event_type": "user.image.*"}, 1, 10)["item_count"] == 0
    assert len(records.delete_events(other, level="info")) == 1 and records.list_events(other, {}, 1, 10)[
        "item_count"] == 0


def test_each_account_has_tables_of_its_own(open_store: StoreFactory) -> None:
    admin, team = open_store("admin"), open_store("team-b")
    _queue(admin, DIGESTS[:2])
    _queue(team, DIGESTS[2:3])
    assert [r.digest for r in admin.list_images()] == DIGESTS[:2]
    assert [r.digest for r in team.list_images()] == DIGESTS[2:3] and team.get_image(DIGESTS[0]) is None
    assert team.claim_next().digest == DIGESTS[2] and team.claim_next() is None  # type: ignore[union-attr]


def test_long_account_names_keep_schemas_of_their_own() -> None:
    from ci_gate.database import schema_name

    first, second = "a" * 60 + "-one", "a" * 60 + "-two"
    assert schema_name(first) != schema_name(second)
    assert all(len(schema_name(name).encode()) <= 63 for name in (first, second))
    assert schema_name("account_admin") == "ci_gate_account_admin"


def test_a_claim_whose_lease_ran_out_is_taken_over_and_cannot_finish(open_store: StoreFactory) -> None:
    slow = open_store(lease_seconds=1.0)
    fast = open_store(lease_seconds=1.0)
    _queue(slow, DIGESTS[:1])
    first = slow.claim_next()
    assert first is not None and fast.claim_next() is None  # claimed and leased: nobody else takes it
    assert slow.renew_lease(first.digest, first.claimed_by or "")
    time.sleep(1.3)
    second = fast.claim_next()
    assert second is not None and second.digest == first.digest and second.claimed_by != first.claimed_by
    assert [c.source for c in second.status_history][-2:] == ["lease_expired", "worker"]
    assert not slow.renew_lease(first.digest, first.claimed_by or "")
    assert not slow.finish(first.digest, {"from": "the slow replica"}, claim=first.claimed_by)  # lost its lease
    assert fast.finish(second.digest, {"from": "the new holder"}, claim=second.claimed_by)
    assert slow.analysis_document(first.digest) == {"from": "the new holder"}
    record = slow.get_image(first.digest)
    assert record is not None and record.analysis_count == 2 and record.analysis_status == ANALYZED


def test_named_leases_run_one_holder_at_a_time(open_store: StoreFactory) -> None:
    one, two = open_store(lease_seconds=1.0), open_store(lease_seconds=1.0)
    assert one.hold_lease("watcher:test", holder="replica-1")
    assert not two.hold_lease("watcher:test", holder="replica-2")
    assert one.hold_lease("watcher:test", holder="replica-1")  # renewal
    time.sleep(1.2)
    assert two.hold_lease("watcher:test", holder="replica-2")
    assert not one.hold_lease("watcher:test", holder="replica-1")


def test_migrations_are_recorded_and_not_applied_again(open_store: StoreFactory) -> None:
    store = open_store()
    assert store.database.applied_migrations() == [1, 2, 3, 4]
    _queue(store, DIGESTS[:1])
    again = open_store()  # opening again applies nothing and keeps the data
    assert again.database.applied_migrations() == [1, 2, 3, 4] and again.get_image(DIGESTS[0]) is not None


def test_accounts_directory_on_both_databases(backend: DatabaseUrl, tmp_path: Path) -> None:
    directory = AccountDirectory(tmp_path, backend)
    try:
        directory.create_account("team-b", "b@example.com")
        with pytest.raises(AccountError) as taken:
            directory.create_account("team-b")
        assert taken.value.status == 409
        directory.add_user("team-b", "bob", "a-long-password-1")
        assert directory.verify("bob", "a-long-password-1") == "team-b"
        assert directory.verify("bob", "a-wrong-password!") is None
        assert [a.name for a in directory.accounts()] == ["team-b"]
    finally:
        directory.close()


# --- several processes on one PostgreSQL database ----------------------------------------------------

_CLAIMER = """
import json, sys, time
from pathlib import Path
from ci_gate.notify import outbox
from ci_gate.database_url import parse_database_url
from ci_gate.server.store import Store
url, data, mode, lease = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
store = Store(data, parse_database_url(url), "admin", lease)
print("ready", flush=True)
sys.stdin.readline()  # every process starts claiming at once
if mode == "drain":
    claimed = []
    while (record := store.claim_next()) is not None:
        claimed.append(record.digest)
    print(json.dumps(claimed), flush=True)
elif mode == "hold":
    record = store.claim_next()
    print(record.digest, flush=True)
    time.sleep(600)  # killed here, mid-analysis
elif mode == "submit":  # this process (its data dir's name) submits at the same moment as the others
    me, rounds = int(data.name), int(sys.argv[5])
    queued = []
    for index in range(rounds):
        shared = f"sha256:{index + 100:064x}"  # a new digest every process submits, each with a tag of its own
        time.sleep(0.05 - time.time() % 0.05)  # all processes on the same clock tick: the submissions collide
        record, fresh = store.add_image(shared, f"127.0.0.1:5000/app@{shared}", f"127.0.0.1:5000/app{me}:{index}",
                                        {f"replica{me}": "yes"}, None, force=False)
        queued += [shared] if fresh else []
        mine = f"sha256:{me + 2:064x}"  # the moving tag: each process points it at its own digest
        store.add_image(mine, f"127.0.0.1:5000/moving@{mine}", f"127.0.0.1:5000/moving:{index}", {}, None, False)
    print(json.dumps(queued), flush=True)
elif mode == "checks":  # this process's checks of shared tags: its own digest, pass or fail by its number
    me, rounds = int(data.name), int(sys.argv[5])
    from ci_gate.server import records
    for index in range(rounds):
        time.sleep(0.05 - time.time() % 0.05)  # all processes on the same clock tick: the checks collide
        records.record_evaluation(store, f"127.0.0.1:5000/checked:{index}", "policy", f"sha256:{me + 2:064x}",
                                  "fail" if me % 2 else "pass")
    print("[]", flush=True)
elif mode == "finish":  # analyses what the submitters queue while they still submit
    finished, deadline = [], time.monotonic() + 60
    while len(finished) < int(sys.argv[5]) and time.monotonic() < deadline:
        record = store.claim_next()
        if record is None:
            time.sleep(0.01)
        elif store.finish(record.digest, {"digest": record.digest}, claim=record.claimed_by):
            finished.append(record.digest)
    print(json.dumps(finished), flush=True)
elif mode == "deliveries":
    keys = []
    for _ in range(20):
        keys += [due.idempotency_key for due in outbox.claim_due(store, 3)]
    print(json.dumps(keys), flush=True)
"""


def _started_together(scripts: list[list[str]]) -> list[subprocess.Popen[str]]:
    """Python processes (`-c` SCRIPT ARGS...) that each print `ready`, then all told `go` at once."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    started = [subprocess.Popen([sys.executable, "-c", *script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=environment) for script in scripts]
    for process in started:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready", process.stderr
    for process in started:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    return started


def _processes(url: str, data: Path, mode: str, count: int, lease: float = 30.0, *extra: str,
               first: int = 0) -> list[subprocess.Popen[str]]:
    return _started_together([[_CLAIMER, url, str(data / str(n)), mode, str(lease), *extra]
                              for n in range(first, first + count)])


def test_replicas_claim_each_digest_once(postgres_url: str, tmp_path: Path) -> None:
    store = Store(tmp_path / "queue", parse_database_url(postgres_url))
    _queue(store, DIGESTS)
    claims = []
    for process in _processes(postgres_url, tmp_path, "drain", 3):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        claims.append(json.loads(out.strip().splitlines()[-1]))
    every = [digest for claimed in claims for digest in claimed]
    assert sorted(every) == sorted(DIGESTS)  # nothing lost, nothing claimed twice
    assert sum(1 for claimed in claims if claimed) >= 2  # the claims really ran side by side
    assert set(store.analysis_counts().values()) == {1}
    store.close()


def test_replicas_submitting_at_once_keep_every_tag_and_record_each_tag_move_once(postgres_url: str,
                                                                                   tmp_path: Path) -> None:
    """Submissions take no namespace-wide lock on PostgreSQL: four processes submit the same new digests
    at once (each with its own tag and annotation) and move shared tags to their own digests, while a
    fifth analyses what they queue. Each digest is created once (not a unique-key error), analysed once
    and never re-queued; no tag or annotation is lost; each tag's moves form one chain of events."""
    store = Store(tmp_path / "seed", parse_database_url(postgres_url))
    rounds, submitters = 30, 4
    moving = [f"127.0.0.1:5000/moving:{index}" for index in range(rounds)]
    for tag in moving:  # every moving tag starts on DIGESTS[0]
        store.add_image(DIGESTS[0], f"127.0.0.1:5000/moving@{DIGESTS[0]}", tag, {}, None, force=False)
    every = [f"sha256:{index + 100:064x}" for index in range(rounds)] + DIGESTS[:submitters + 1]
    started = _processes(postgres_url, tmp_path, "finish", 1, 30.0, str(len(every)), first=submitters)
    started += _processes(postgres_url, tmp_path, "submit", submitters, 30.0, str(rounds))
    outputs = []
    for process in started:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err  # a missing ON CONFLICT: "duplicate key value violates unique ..."
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    finished, queued = outputs[0], [digest for out in outputs[1:] for digest in out]
    shared = every[:rounds]
    assert sorted(queued) == sorted(shared)  # each new digest queued by exactly one of the submitters
    assert sorted(finished) == sorted(every)  # each analysed once, while the submissions went on
    for index, digest in enumerate(shared):
        record = store.get_image(digest)
        assert record is not None and record.analysis_status == ANALYZED and record.analysis_count == 1
        assert sorted(tag for tag, _ in record.tags) == [f"127.0.0.1:5000/app{me}:{index}" for me in range(submitters)]
        assert record.annotations == {f"replica{me}": "yes" for me in range(submitters)}
    for tag in moving:
        moves = dict(json.loads(row["details"])["last_eval"] + json.loads(row["details"])["curr_eval"]
                     for row in store._query("SELECT details FROM events WHERE notification_type = 'tag_update' "
                                             "AND resource_id = ?", (tag,)))
        assert len(moves) == submitters, moves  # two moves from one digest: a submission missed another's move
        chain, at = [], DIGESTS[0]
        while at in moves:
            at = moves[at]
            chain.append(at)
        assert sorted(chain) == sorted(DIGESTS[1:submitters + 1])  # one chain through every submitter's digest
        assert [record.digest for record in store.images_for_tag(tag)] == [at]  # the tag is where it ended
    store.close()


def test_replicas_checking_one_tag_at_once_record_each_flip_once(postgres_url: str, tmp_path: Path) -> None:
    """Checks record their result without the namespace-wide lock: four processes check the same tags
    at once (two pass, two fail). Each tag's policy_eval events alternate from the result before, each
    from a result of its own: two flips from one result mean two checks read the same last result."""
    store = Store(tmp_path / "seed", parse_database_url(postgres_url))
    rounds, checkers = 20, 4
    tags = [f"127.0.0.1:5000/checked:{index}" for index in range(rounds)]
    for tag in tags:
        records.record_evaluation(store, tag, "policy", DIGESTS[0], "fail")
    for process in _processes(postgres_url, tmp_path, "checks", checkers, 30.0, str(rounds)):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    for tag in tags:  # events in the order they were recorded (one clock: the processes share a machine)
        flips = [json.loads(row["details"]) for row in store._query(
            "SELECT details FROM events WHERE notification_type = 'policy_eval' AND resource_id = ? "
            "ORDER BY timestamp", (tag,))]
        assert len({(f["last_eval"]["image_digest"], f["last_eval"]["status"]) for f in flips}) == len(flips) >= 1
        status = "fail"
        for flip in flips:  # each flip starts from the result the one before it recorded
            assert flip["last_eval"]["status"] == status != flip["curr_eval"]["status"], flips
            status = flip["curr_eval"]["status"]
        [last] = store._query("SELECT status FROM evaluation_status WHERE tag = ?", (tag,))
        assert last["status"] == status
    store.close()


def test_a_sigkilled_replicas_claim_is_taken_over_after_its_lease(postgres_url: str, tmp_path: Path) -> None:
    store = Store(tmp_path / "survivor", parse_database_url(postgres_url), lease_seconds=2.0)
    _queue(store, DIGESTS[:1])
    [holder] = _processes(postgres_url, tmp_path, "hold", 1, lease=2.0)
    assert holder.stdout is not None and holder.stdout.readline().strip() == DIGESTS[0]
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert store.claim_next() is None  # its lease still runs: not taken yet
    deadline = time.monotonic() + 10
    taken = None
    while taken is None and time.monotonic() < deadline:
        time.sleep(0.2)
        taken = store.claim_next()
    assert taken is not None and taken.digest == DIGESTS[0] and taken.analysis_count == 2
    assert store.finish(taken.digest, {"ok": True}, claim=taken.claimed_by)
    store.close()


def test_concurrent_starters_apply_the_migrations_once(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database()
    starters = [subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from ci_gate.database_url import "
         "parse_database_url; from ci_gate.server.store import Store; "
         "Store(Path(sys.argv[2]), parse_database_url(sys.argv[1])).close()", url, str(tmp_path / str(n))],
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, stderr=subprocess.PIPE, text=True) for n in range(5)]
    for starter in starters:
        _, err = starter.communicate(timeout=120)
        assert starter.returncode == 0, err
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT version FROM ci_gate_account_admin.schema_migrations "
                                  "ORDER BY version").fetchall()
    assert rows == [(1,), (2,), (3,), (4,)]


def test_replicas_claim_each_delivery_once(postgres_url: str, tmp_path: Path) -> None:
    store = Store(tmp_path / "outbox", parse_database_url(postgres_url))
    endpoint = Endpoint(endpoint_id="hook", kind="webhook", name="hook", settings={"url": "http://127.0.0.1:9/"},
                        notification_types=("tag_update",))
    tags = [f"127.0.0.1:5000/moving{n}:latest" for n in range(15)]
    for tag in tags:
        records.initialise_subscriptions(store, tag, ("tag_update",))
        store.add_image(DIGESTS[0], f"127.0.0.1:5000/x@{DIGESTS[0]}", tag, {}, None, force=False)
        store.add_image(DIGESTS[1], f"127.0.0.1:5000/x@{DIGESTS[1]}", tag, {}, None, force=False)  # tag_update
    assert outbox.fan_out(store, [endpoint]) == len(tags)
    claims = []
    for process in _processes(postgres_url, tmp_path, "deliveries", 3):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        claims.append(json.loads(out.strip().splitlines()[-1]))
    every = [key for claimed in claims for key in claimed]
    assert len(every) == len(tags) and len(set(every)) == len(tags)  # each delivery claimed by one process
    assert all(row["state"] == outbox.SENDING for row in outbox.list_deliveries(store))
    store.close()


def test_the_queue_states_on_sqlite_resume_at_start(tmp_path: Path) -> None:
    """SQLite keeps its behaviour: a restart puts the data dir's interrupted analyses back at once."""
    store = Store(tmp_path / "data")
    _queue(store, DIGESTS[:1])
    assert store.claim_next() is not None
    store.close()
    again = Store(tmp_path / "data")
    assert again.resume_interrupted() == 1
    record = again.get_image(DIGESTS[0])
    assert record is not None and record.analysis_status == NOT_ANALYZED and record.claimed_by is None
    again.close()


_SKEWED_CLAIM = """
import json, sys, time
from pathlib import Path
real_time = time.time
time.time = lambda: real_time() + float(sys.argv[3])  # this replica's clock is off by that many seconds
from ci_gate.notify import outbox
from ci_gate.database_url import parse_database_url
from ci_gate.server.store import Store
store = Store(Path(sys.argv[2]), parse_database_url(sys.argv[1]))
print(json.dumps([due.idempotency_key for due in outbox.claim_due(store, 10)]), flush=True)
"""


def _store_with_one_pending_delivery(postgres_url: str, tmp_path: Path) -> Store:
    """A store whose outbox holds one pending delivery: a tag_update to a webhook nobody listens on."""
    store = Store(tmp_path / "outbox", parse_database_url(postgres_url))
    endpoint = Endpoint(endpoint_id="hook", kind="webhook", name="hook", settings={"url": "http://127.0.0.1:9/"},
                        notification_types=("tag_update",))
    tag = "127.0.0.1:5000/moving:latest"
    records.initialise_subscriptions(store, tag, ("tag_update",))
    store.add_image(DIGESTS[0], f"127.0.0.1:5000/x@{DIGESTS[0]}", tag, {}, None, force=False)
    store.add_image(DIGESTS[1], f"127.0.0.1:5000/x@{DIGESTS[1]}", tag, {}, None, force=False)  # tag_update
    assert outbox.fan_out(store, [endpoint]) == 1
    return store


def test_the_sending_lease_is_judged_by_the_database_clock_not_a_skewed_replicas(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(outbox.LEASE_VARIABLE, "2")
    store = _store_with_one_pending_delivery(postgres_url, tmp_path)
    [sending] = outbox.claim_due(store, 10)  # this replica is sending it now

    def claim_on_a_replica_off_by(seconds: float) -> list[str]:
        result = subprocess.run([sys.executable, "-c", _SKEWED_CLAIM, postgres_url, str(tmp_path / "skewed"),
                                 str(seconds)], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout.strip().splitlines()[-1]))

    assert claim_on_a_replica_off_by(+3600) == []  # an hour ahead, yet the send is still in its lease
    time.sleep(2.5)
    # the lease ran out by the database's clock: a replica an hour behind takes the delivery over
    assert claim_on_a_replica_off_by(-3600) == [sending.idempotency_key]
    [row] = outbox.list_deliveries(store)
    assert row["state"] == outbox.SENDING and row["tries"] == 2
    store.close()


_SKEWED_CLAIM_AND_FAIL = """
import json, sys, time
from pathlib import Path
real_time = time.time
time.time = lambda: real_time() + float(sys.argv[3])  # this replica's clock is off by that many seconds
from ci_gate.notify import outbox
from ci_gate.database_url import parse_database_url
from ci_gate.server.store import Store
store = Store(Path(sys.argv[2]), parse_database_url(sys.argv[1]))
claimed = outbox.claim_due(store, 10)
for delivery in claimed:  # the receiver answered 503 with Retry-After: argv[4] seconds
    outbox.mark_failed_attempt(store, delivery, "busy", 503, float(sys.argv[4]), permanent=False)
print(json.dumps([due.idempotency_key for due in claimed]), flush=True)
"""


def _on_a_replica_off_by(script: str, postgres_url: str, tmp_path: Path, seconds: float, *arguments: str) -> str:
    """Run `script` as a replica whose clock is off by `seconds`; its last line of output."""
    result = subprocess.run([sys.executable, "-c", script, postgres_url, str(tmp_path / "skewed"), str(seconds),
                             *arguments], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def _claim_and_fail_on_a_replica_off_by(postgres_url: str, tmp_path: Path, seconds: float,
                                        retry_after: float) -> list[str]:
    return list(json.loads(_on_a_replica_off_by(_SKEWED_CLAIM_AND_FAIL, postgres_url, tmp_path, seconds,
                                                str(retry_after))))


def test_retries_are_scheduled_and_found_due_by_the_database_clock_not_a_skewed_replicas(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry's backoff is counted on the database's clock: a replica an hour ahead schedules a retry one
    second out that a replica an hour behind finds due a second later (not an hour later), and the retry
    that one schedules 30 s out is not due for a replica on the right time at once (not 59 minutes ago)."""
    monkeypatch.setenv(outbox.BACKOFF_VARIABLE, "0.5")  # the backoff stays under the Retry-After asked for
    store = _store_with_one_pending_delivery(postgres_url, tmp_path)
    [delivery] = outbox.list_deliveries(store)

    def claim_and_fail_on_a_replica_off_by(seconds: float, retry_after: float) -> list[str]:
        return _claim_and_fail_on_a_replica_off_by(postgres_url, tmp_path, seconds, retry_after)

    assert claim_and_fail_on_a_replica_off_by(+3600, retry_after=1) == [delivery["idempotency_key"]]
    time.sleep(1.5)
    # due a second later by the database's clock, even for a replica an hour behind the one that scheduled it
    assert claim_and_fail_on_a_replica_off_by(-3600, retry_after=30) == [delivery["idempotency_key"]]
    assert outbox.claim_due(store, 10) == []  # the 30 s it was asked to wait are not over
    until = outbox.seconds_until_next_attempt(store)
    assert until is not None and 20 < until <= 30  # the delivery thread sleeps until then, not an hour less
    [row] = outbox.list_deliveries(store)
    assert row["state"] == outbox.PENDING and row["tries"] == 2
    store.close()


_SKEWED_RECORD = """
import sys, time
from pathlib import Path
real_time = time.time
time.time = lambda: real_time() + float(sys.argv[3])  # this replica's clock is off by that many seconds
from ci_gate.database_url import parse_database_url
from ci_gate.server import records
from ci_gate.server.store import Store
store = Store(Path(sys.argv[2]), parse_database_url(sys.argv[1]))
tag = "127.0.0.1:5000/moving:latest"
records.initialise_subscriptions(store, tag, ("tag_update",))
for digest in sys.argv[4:]:  # the second moves the tag: a tag_update enters the outbox
    store.add_image(digest, f"127.0.0.1:5000/x@{digest}", tag, {}, None, force=False)
"""


def test_the_retry_window_is_judged_by_the_database_clock_not_a_skewed_replicas(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 24-hour give-up counts from the event's recording to the attempt, both on the database's clock:
    an event recorded by a replica a day behind, and an attempt by a replica a day ahead, are not given up
    at once; a window that did run out is not stretched by a replica an hour behind."""
    monkeypatch.setenv(outbox.BACKOFF_VARIABLE, "0.5")
    day = 25 * 3600.0
    _on_a_replica_off_by(_SKEWED_RECORD, postgres_url, tmp_path, -day, DIGESTS[0], DIGESTS[1])
    store = Store(tmp_path / "outbox", parse_database_url(postgres_url))
    endpoint = Endpoint(endpoint_id="hook", kind="webhook", name="hook", settings={"url": "http://127.0.0.1:9/"},
                        notification_types=("tag_update",))
    assert outbox.fan_out(store, [endpoint]) == 1
    [due] = outbox.claim_due(store, 10)  # on this machine's (right) clock
    assert outbox.mark_failed_attempt(store, due, "busy", 503, 1.0, permanent=False) == outbox.PENDING
    time.sleep(1.5)
    assert _claim_and_fail_on_a_replica_off_by(postgres_url, tmp_path, +day, retry_after=1) == [due.idempotency_key]
    [row] = outbox.list_deliveries(store)
    assert row["state"] == outbox.PENDING and row["tries"] == 2  # a day ahead, yet within the window

    monkeypatch.setenv(outbox.WINDOW_VARIABLE, "4")  # now a window that is over once the retry is due
    time.sleep(4.5)
    assert _claim_and_fail_on_a_replica_off_by(postgres_url, tmp_path, -3600, retry_after=1) == [due.idempotency_key]
    [row] = outbox.list_deliveries(store)
    assert row["state"] == outbox.FAILED and row["tries"] == 3  # an hour behind, yet the window is over
    store.close()


_SENDER = """
import sys, time
from pathlib import Path
from ci_gate.notify import outbox
from ci_gate.notify.dispatcher import Dispatcher
from ci_gate.database_url import parse_database_url
from ci_gate.server.records import CredentialBox
from ci_gate.server.store import Store
store = Store(Path(sys.argv[2]), parse_database_url(sys.argv[1]))
box = CredentialBox("admin-password-for-test")
dispatcher = Dispatcher(lambda: {"admin": store}, box, allowed_hosts=("127.0.0.1",))
print("ready", flush=True)
sys.stdin.readline()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    dispatcher.pass_once()
    if all(d["state"] == outbox.DELIVERED for d in outbox.list_deliveries(store, limit=1000)):
        break
    time.sleep(0.01)
dispatcher.stop()
"""


def test_two_replicas_send_each_notification_once(postgres_url: str, tmp_path: Path, receivers: list[Any]) -> None:
    from tests.notify.receivers import start_receiver

    hook = start_receiver(receivers, "webhook")
    store = Store(tmp_path / "events", parse_database_url(postgres_url))
    box = records.CredentialBox("admin-password-for-test")
    save_endpoint(store, box, Endpoint(endpoint_id="hook", kind="webhook", name="hook",
                                       settings={"url": hook.url + "/hook", "format": "v1", "verify_tls": True},
                                       notification_types=("tag_update",)), "2024-01-01T00:00:00Z")
    tags = [f"127.0.0.1:5000/moving{n}:latest" for n in range(60)]  # more than one pass claims
    for tag in tags:
        records.initialise_subscriptions(store, tag, ("tag_update",))
        store.add_image(DIGESTS[0], f"127.0.0.1:5000/x@{DIGESTS[0]}", tag, {}, None, force=False)
        store.add_image(DIGESTS[1], f"127.0.0.1:5000/x@{DIGESTS[1]}", tag, {}, None, force=False)  # tag_update
    senders = _started_together([[_SENDER, postgres_url, str(tmp_path / f"sender-{n}")] for n in range(2)])
    for sender in senders:
        _, err = sender.communicate(timeout=120)
        assert sender.returncode == 0, err
    keys = [received.key for received in hook.received]
    assert len(keys) == len(tags) and len(set(keys)) == len(tags)  # every notification sent, none twice
    assert {d["state"] for d in outbox.list_deliveries(store)} == {outbox.DELIVERED}
    store.close()
