"""The tag watcher's evaluation passes on a real serve database: a baseline without an event, policy_eval
only when the final action flips, and an evaluation that fails is not retried by every follow-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_gate.server.records import initialise_subscriptions
from ci_gate.server.store import Store
from ci_gate.server.tag_watch import TagWatcher, watched_tags

TAG = "registry.example.test/team/app:stable"
DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "data")
    opened.add_policy("p1", "p1", "", {"id": "p1", "name": "p1", "version": "2"}, active=True)
    opened.add_image(DIGEST, f"registry.example.test/team/app@{DIGEST}", TAG, {}, None, False)
    assert opened.claim_next() is not None
    opened.finish(DIGEST, {"packages": []})
    yield opened
    opened.close()


def policy_events(store: Store) -> list[str]:
    return [row["details"] for row in store._query("SELECT details FROM events WHERE notification_type = "
                                                   "'policy_eval' ORDER BY timestamp")]


def test_policy_eval_only_when_the_final_action_flips(store: Store) -> None:
    verdicts = ["pass"]
    calls: list[tuple[str, str, str]] = []

    def evaluate(account: str, digest: str, tag: str) -> str:
        calls.append((account, digest, tag))
        return verdicts[-1]

    watcher = TagWatcher(lambda: {"admin": store}, lambda account, tag: None, evaluate, interval=3600)
    assert watched_tags(store) == [] and watcher.evaluate_all(only_new=True) == 0  # nothing subscribed
    initialise_subscriptions(store, TAG, ("tag_update",))
    assert watched_tags(store) == [TAG]
    assert watcher.evaluate_all(only_new=True) == 1 and calls == [("admin", DIGEST, TAG)]
    assert watcher.evaluate_all(only_new=True) == 0  # evaluated at this digest already
    assert watcher.evaluate_all(only_new=False) == 1 and policy_events(store) == []  # the same verdict
    verdicts.append("fail")
    assert watcher.evaluate_all(only_new=False) == 1
    assert len(policy_events(store)) == 1 and '"status": "fail"' in policy_events(store)[0]
    history = store._query("SELECT status FROM evaluation_history WHERE tag = ? ORDER BY seq", (TAG,))
    assert [row["status"] for row in history] == ["pass", "pass", "fail"]


def test_a_failing_evaluation_is_retried_by_full_passes_only(store: Store) -> None:
    attempts: list[str] = []

    def evaluate(account: str, digest: str, tag: str) -> str:
        attempts.append(digest)
        raise RuntimeError("the vulnerability store is unreadable")

    initialise_subscriptions(store, TAG, ("tag_update",))
    watcher = TagWatcher(lambda: {"admin": store}, lambda account, tag: None, evaluate, interval=3600)
    assert watcher.evaluate_all(only_new=True) == 0
    assert watcher.evaluate_all(only_new=True) == 0
    assert len(attempts) == 1
    watcher.evaluate_all(only_new=False)
    assert len(attempts) == 2
