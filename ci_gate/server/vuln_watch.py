"""vuln_update events: re-match subscribed tags incrementally when the vulnerability store changes.

anchore-engine re-scans the image of every tag with an active `vuln_update` subscription after a feed
sync and records `user.checks.tag.vulnerabilities.update` with the difference (`diff_vulnerability_result`:
added, removed, updated). Here the "feed sync" is an import into the offline store (`ci-gate db
import|update`): a thread polls the store's last-import time and, when it changed (or the set of
subscribed images did), runs the incremental engine of `ci-gate watch` (`ci_gate.rematch`) over the
current image of every subscribed tag of every account. Only packages the import can have changed are
matched again, from the stored analyses (no image is analysed again). The engine's state (package
index and last matches) is one SQLite file in the data dir, shared by all accounts: an image is keyed
by its account and tag, so the same digest in two accounts is two images with their own events. The
file is kept in the admin account's database after every pass and taken from there before one
(`ci_gate.server.watch_state`), so a replica that takes the watcher's lease over continues where the
last holder stopped: it neither records its events again nor takes a new baseline over the changes.

The first look at a tag (or at the new digest of a moved tag) records a baseline and no event; it also
evaluates the tag under the account's active policy when it never was, so a later flip has a verdict
to flip from. For each image whose vulnerabilities changed, the tag is evaluated again and the result
recorded with the tag watcher's evaluation history (`records.record_evaluation`): `policy_eval` when
the final action flips. Events and evaluations are recorded before the engine's state is committed,
so a crash in between finds the same differences again (at-least-once, as `ci-gate watch`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_gate.database import DatabaseUnavailable
from ci_gate.server import records, tag_watch, watch_state
from ci_gate.server.background import BackgroundLoop
from ci_gate.server.service import Service
from ci_gate.server.store import ACCOUNT, ANALYZED, Store, add_event

LOG = logging.getLogger("ci_gate.server")

POLL_VARIABLE = "CI_GATE_SERVE_VULN_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 60.0
STATE_FILE = "vuln-watch.sqlite"
"""The incremental re-match state, in the serve data dir."""


@dataclass(frozen=True)
class WatchedImage:
    """The current analysed image of a tag with an active vuln_update subscription."""

    account: str
    tag: str
    digest: str
    fingerprint: str
    """Digest and analysis time: a re-analysis (or a moved tag) indexes the image again, as a new baseline."""

    @property
    def key(self) -> str:
        return json.dumps([self.account, self.tag])


def subscribed_images(stores: Mapping[str, Store]) -> dict[str, WatchedImage]:
    """Every account's vuln_update-subscribed tags whose current image is analysed, by `WatchedImage.key`."""
    found: dict[str, WatchedImage] = {}
    for account, store in stores.items():
        rows = store._query("SELECT DISTINCT subscription_key FROM subscriptions WHERE "
                            "subscription_type = 'vuln_update' AND active = 1 ORDER BY subscription_key")
        for row in rows:
            tag = str(row["subscription_key"])
            images = store.images_for_tag(tag)
            if not images or images[0].analysis_status != ANALYZED:
                continue
            image = WatchedImage(account, tag, images[0].digest, f"{images[0].digest}@{images[0].analyzed_at}")
            found[image.key] = image
    return found


def store_stamp(vuln_db: Path | None) -> str | None:
    """The vulnerability store's last import time; None when there is no readable store."""
    from ci_gate.errors import CiGateError
    from ci_gate.vulns.store import open_store

    try:
        with open_store(vuln_db) as vulns:
            return vulns.status(full=False).updated_at or None
    except (CiGateError, OSError):
        return None


Reevaluate = Callable[[str, str, str, bool], bool]
"""(account, tag, digest, only_when_unevaluated) -> True when a policy_eval was recorded."""


class VulnWatcher(BackgroundLoop):
    """Polls the vulnerability store; on a change, records vuln_update (and policy_eval) events."""

    thread_name = "ci-gate-vuln-watch"
    pass_seconds = property(lambda self: self.interval)

    def __init__(self, stores: Callable[[], Mapping[str, Store]], state_path: Path, vuln_db: Path | None,
                 reevaluate: Reevaluate, interval: float | None = None) -> None:
        self._stores = stores
        self._state_path = state_path
        self._vuln_db = vuln_db
        self._reevaluate = reevaluate
        self.interval = interval if interval is not None else float(os.environ.get(POLL_VARIABLE)
                                                                     or DEFAULT_POLL_SECONDS)
        super().__init__()
        self._last_seen: tuple[str, frozenset[tuple[str, str]]] | None = None
        """The store stamp and subscribed images of the last complete pass: the same again needs no pass."""
        self._shared = watch_state.SharedState("vuln-watch", state_path)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            if not self.leading():
                continue
            try:
                self.check_once()
            except DatabaseUnavailable:  # PostgreSQL restarting: the next pass tries again
                LOG.warning("%s waits for the database", self.thread_name)
            except Exception:  # a broken store must not end the watcher; the next poll tries again
                LOG.exception("cannot check subscribed tags for vulnerability updates")

    def check_once(self) -> int:
        """One pass; returns how many vuln_update events it recorded."""
        from ci_gate.rematch import RematchState
        from ci_gate.vulns.store import open_store

        stamp = store_stamp(self._vuln_db)
        if stamp is None:
            return 0
        stores = self._stores()
        if self._shared.pull(stores[ACCOUNT]):  # another replica made passes since this one's last
            self._last_seen = None
        wanted = subscribed_images(stores)
        seen = (stamp, frozenset((key, image.fingerprint) for key, image in wanted.items()))
        if seen == self._last_seen:
            return 0
        recorded = 0
        if not self._state_path.exists():  # the account's tags and packages: only the serve user reads them
            os.close(os.open(self._state_path, os.O_CREAT | os.O_WRONLY, 0o600))
        with open_store(self._vuln_db) as vulns, RematchState(self._state_path) as state:
            available = vulns.ecosystems()
            indexed = state.indexed_images()
            for key in indexed.keys() - wanted.keys():
                state.forget_image(key)
            baselines = []
            for key, image in sorted(wanted.items()):
                if indexed.get(key) == image.fingerprint:
                    continue
                document = stores[image.account].analysis_document(image.digest)
                if document is None:  # deleted since it was listed: the next pass sees it gone
                    continue
                distro = document.get("distro") if isinstance(document.get("distro"), dict) else None
                packages = [p for p in document.get("packages") or [] if isinstance(p, dict)]
                state.add_image(image.digest, image.tag, key, image.fingerprint, distro, packages, available, [])
                baselines.append(image)
            result = state.rematch(vulns)
            changed = [(wanted[d.key], d) for d in result.diffs if d.key in wanted]
            for image, image_diff in changed:
                with stores[image.account]._transaction() as connection:
                    add_event(connection, ACCOUNT, "vuln_update", image.tag, {
                        "diff_vulnerability_result": image_diff.result(), "imageDigest": image.digest,
                        "subscription_type": "vuln_update"})
                recorded += 1
            for image in baselines:
                self._evaluate(image, only_when_unevaluated=True)
            for image, _ in changed:
                self._evaluate(image, only_when_unevaluated=False)
            state.commit()
        if not self._shared.push(stores[ACCOUNT]):
            LOG.info("another replica took the vulnerability watcher over during this pass: its state is kept")
            self._last_seen = None
            return recorded
        if recorded or result.new_images or baselines:
            LOG.info("vulnerability re-match: %d record(s) changed, %d variant(s) re-matched, %d vuln_update "
                     "event(s), %d new baseline(s)", result.changed_records, result.rematched_variants, recorded,
                     len(baselines))
        self._last_seen = seen
        return recorded

    def _evaluate(self, image: WatchedImage, only_when_unevaluated: bool) -> None:
        try:
            self._reevaluate(image.account, image.tag, image.digest, only_when_unevaluated)
        except Exception as error:  # one image that cannot be evaluated must not hide the others' events
            LOG.info("cannot evaluate %s after a vulnerability update: %s", image.tag[:200],
                     getattr(error, "message", error))


def reevaluate(service: Service, account: str, tag: str, digest: str, only_when_unevaluated: bool) -> bool:
    """Evaluate the tag's image under the account's active policy and record it in the evaluation history
    (`policy_eval` when the final action flips); with `only_when_unevaluated`, only when the tag has no
    evaluation of this digest under that policy yet (a baseline). True when a policy_eval was recorded."""
    store = service.store_for(account)
    policy = store.active_policy()
    if policy is None:
        return False
    if only_when_unevaluated and records.evaluated_digest(store, tag, policy.policy_id) == digest:
        return False
    status = tag_watch.evaluate_status(service, account, digest, tag)
    return records.record_evaluation(store, tag, policy.policy_id, digest, status)


def watcher_for(service: Service) -> VulnWatcher:
    """The vulnerability watcher of a service, over all its accounts."""
    return VulnWatcher(service.stores, service.config.data_dir / STATE_FILE, service.config.vuln_db,
                       functools.partial(reevaluate, service))
