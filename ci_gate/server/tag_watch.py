"""Watched tags: re-resolved on a schedule, the new digest analysed and evaluated.

A tag is watched when it has an active `tag_update` subscription (anchore-engine's autosubscribe on
add) or an active `policy_eval` one. Every `serve --watch-interval` seconds (default 1 h) each
watched tag is resolved again with registry manifest HEAD/GET requests only (the same resolution an
add does); when it names another digest, the add records `tag_update` and queues the new digest's
analysis. A shorter follow-up pass evaluates every watched tag whose current digest is analysed but
not yet evaluated under the active policy, recording the result per policy; `policy_eval` is
recorded when the final action flips (`records.record_evaluation`). Each full pass also evaluates
every watched tag again, so a policy change that flips a verdict is noticed too.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping

from ci_gate.database import DatabaseUnavailable
from ci_gate.server import records
from ci_gate.server.background import BackgroundLoop
from ci_gate.server.service import CURRENT_ACCOUNT, Service
from ci_gate.server.store import ANALYZED, Store

LOG = logging.getLogger("ci_gate.server")

FOLLOW_UP_VARIABLE = "CI_GATE_SERVE_FOLLOW_UP_SECONDS"
DEFAULT_FOLLOW_UP_SECONDS = 5.0


def watched_tags(store: Store) -> list[str]:
    rows = store._query("SELECT DISTINCT subscription_key FROM subscriptions WHERE active = 1 AND "
                        "subscription_type IN ('tag_update', 'policy_eval') ORDER BY subscription_key")
    return [str(row["subscription_key"]) for row in rows]


class TagWatcher(BackgroundLoop):
    """Runs the re-resolve pass every `interval` seconds and the evaluation follow-up more often."""

    thread_name = "ci-gate-tag-watch"
    pass_seconds = property(lambda self: self.follow_up)

    def __init__(self, stores: Callable[[], Mapping[str, Store]], resolve: Callable[[str, str], None],
                 evaluate: Callable[[str, str, str], str], interval: float) -> None:
        self._stores = stores
        self._resolve = resolve
        """(account, tag): add the tag again (resolves it; a moved tag records tag_update, queues analysis)."""
        self._evaluate = evaluate
        """(account, digest, tag) -> pass|fail under the active policy."""
        self.interval = interval
        self.follow_up = min(interval, float(os.environ.get(FOLLOW_UP_VARIABLE) or DEFAULT_FOLLOW_UP_SECONDS))
        super().__init__()
        self._unevaluable: set[tuple[str, str, str]] = set()
        """(account, tag, digest) whose evaluation failed: follow-ups skip them, full passes try again."""

    def _run(self) -> None:
        next_full = time.monotonic() + self.interval
        while not self._stopping.wait(self.follow_up):
            if not self.leading():
                continue
            full = time.monotonic() >= next_full
            try:
                if full:
                    next_full = time.monotonic() + self.interval
                    self.resolve_all()
                self.evaluate_all(only_new=not full)
            except DatabaseUnavailable:  # PostgreSQL restarting: the next pass tries again
                LOG.warning("%s waits for the database", self.thread_name)
            except Exception:  # a broken store must not end the watcher; the next pass tries again
                LOG.exception("cannot check watched tags")

    def resolve_all(self) -> int:
        """Resolve every watched tag of every account; returns how many were looked at."""
        count = 0
        for account, store in list(self._stores().items()):
            for tag in watched_tags(store):
                if self._stopping.is_set():
                    return count
                try:
                    self._resolve(account, tag)
                except Exception as error:  # one unreachable registry must not stop the others
                    LOG.info("cannot re-resolve watched tag %s: %s", tag[:200], getattr(error, "message", error))
                count += 1
        return count

    def evaluate_all(self, only_new: bool) -> int:
        """Evaluate watched tags whose current digest is analysed (with `only_new`, only those not yet
        evaluated at that digest under the active policy); returns how many were evaluated."""
        count = 0
        for account, store in list(self._stores().items()):
            policy = store.active_policy()
            if policy is None:
                continue
            for tag in watched_tags(store):
                images = store.images_for_tag(tag)
                if not images or images[0].analysis_status != ANALYZED:
                    continue
                digest = images[0].digest
                if only_new and (records.evaluated_digest(store, tag, policy.policy_id) == digest
                                 or (account, tag, digest) in self._unevaluable):
                    continue
                try:
                    status = self._evaluate(account, digest, tag)
                except Exception as error:
                    self._unevaluable.add((account, tag, digest))
                    LOG.info("cannot evaluate watched tag %s: %s", tag[:200], getattr(error, "message", error))
                    continue
                self._unevaluable.discard((account, tag, digest))
                records.record_evaluation(store, tag, policy.policy_id, digest, status)
                count += 1
        return count


def rewatch_tag(service: Service, account: str, full_tag: str) -> None:
    """Resolve a watched tag again: a manifest HEAD first; when the digest moved (or the registry does not
    say), as an add does (a moved tag records tag_update and queues the new digest's analysis)."""
    from ci_gate.server.registry_work import head_digest
    from ci_gate.sources.registry import parse_reference
    from ci_gate.sources.registry_auth import check_registry_allowed

    token = CURRENT_ACCOUNT.set(account)
    try:
        reference = parse_reference(full_tag)
        check_registry_allowed(reference.host, service.config.source)
        known = service.store.images_for_tag(full_tag)
        if known and head_digest(service.registry, reference, service.source_for(full_tag)) == known[0].digest:
            return
        service.add_image({"source": {"tag": {"pull_string": full_tag}}}, force=False)
    finally:
        CURRENT_ACCOUNT.reset(token)


def evaluate_status(service: Service, account: str, digest: str, full_tag: str) -> str:
    """pass or fail: the tag's image under the account's active policy (a STOP fails)."""
    token = CURRENT_ACCOUNT.set(account)
    try:
        evaluation = service.evaluate(digest, full_tag, None)[0]
    finally:
        CURRENT_ACCOUNT.reset(token)
    return "fail" if evaluation.final_action.lower() == "stop" else "pass"


def watcher_for(service: Service) -> TagWatcher:
    """The tag watcher of a service, over all its accounts."""
    return TagWatcher(service.stores, functools.partial(rewatch_tag, service),
                      functools.partial(evaluate_status, service), service.config.watch_interval)
