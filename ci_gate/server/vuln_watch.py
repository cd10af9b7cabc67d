"""vuln_update events: re-match subscribed tags when the vulnerability store changes.

anchore-engine re-scans the image of every tag with an active `vuln_update` subscription after a feed
sync and records `user.checks.tag.vulnerabilities.update` with the difference (`diff_vulnerability_result`:
added, removed, updated — keyed by vulnerability, feed group, package, version and path, as
`catalog/utils.py diff_image_vulnerabilities`). Here the "feed sync" is an import into the offline
store (`ci-gate db import|update`): a thread polls the store's last-import time and, when it changed,
re-matches the subscribed tags' images. The first look at a tag records a baseline and no event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ci_gate.server.store import ACCOUNT, ANALYZED, Store, add_event

LOG = logging.getLogger("ci_gate.server")

POLL_VARIABLE = "CI_GATE_SERVE_VULN_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 60.0
_SUMMARY_KEYS = (("CVE_ID", "vuln"), ("Severity", "severity"), ("Vulnerable_Package", "package"),
                 ("Fix_Available", "fix"), ("URL", "url"), ("Package_Name", "package_name"),
                 ("Package_Version", "package_version"), ("Package_Type", "package_type"), ("Feed", "feed"),
                 ("Feed_Group", "feed_group"))


def summary(item: dict[str, Any]) -> dict[str, Any]:
    """anchore-engine's VulnerabilitySummary of one vulnerability listing item."""
    return {engine: item.get(ours) for engine, ours in _SUMMARY_KEYS}


def identity(item: dict[str, Any]) -> str:
    return json.dumps([item.get("vuln"), item.get("feed_group"), item.get("package_name"),
                       item.get("package_version"), item.get("package_path")])


def diff(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """`{added, removed, updated}` between two identity → summary maps."""
    return {"added": [new[k] for k in sorted(new.keys() - old.keys())],
            "removed": [old[k] for k in sorted(old.keys() - new.keys())],
            "updated": [new[k] for k in sorted(new.keys() & old.keys()) if new[k] != old[k]]}


def store_stamp(vuln_db: Path | None) -> str | None:
    """The vulnerability store's last import time; None when there is no readable store."""
    from ci_gate.errors import CiGateError
    from ci_gate.vulns.store import open_store

    try:
        with open_store(vuln_db) as vulns:
            return vulns.status(full=False).updated_at or None
    except (CiGateError, OSError):
        return None


class VulnWatcher:
    """Polls the vulnerability store; on a change, records vuln_update events for subscribed tags."""

    def __init__(self, store: Callable[[], Store], matches: Callable[[str], list[dict[str, Any]]],
                 store_stamp: Callable[[], str | None], interval: float | None = None) -> None:
        self._store = store
        self._matches = matches
        self._store_stamp = store_stamp
        self.interval = interval if interval is not None else float(os.environ.get(POLL_VARIABLE)
                                                                     or DEFAULT_POLL_SECONDS)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ci-gate-vuln-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.check_once()
            except Exception:  # a broken store must not end the watcher; the next poll tries again
                LOG.exception("cannot check subscribed tags for vulnerability updates")

    def check_once(self) -> int:
        """One pass; returns how many events it recorded."""
        stamp = self._store_stamp()
        if stamp is None:
            return 0
        store = self._store()
        rows = store._query("SELECT subscription_key FROM subscriptions WHERE subscription_type = 'vuln_update' "
                            "AND active = 1 AND account = ?", (ACCOUNT,))
        recorded = 0
        for row in rows:
            tag = row["subscription_key"]
            images = store.images_for_tag(tag)
            if not images or images[0].analysis_status != ANALYZED:
                continue
            digest = images[0].digest
            previous = store._query("SELECT stamp, matches FROM vuln_status WHERE tag = ? AND digest = ?",
                                    (tag, digest))
            if previous and previous[0]["stamp"] == stamp:
                continue
            current = {identity(item): summary(item) for item in self._matches(digest)}
            with store._transaction() as connection:
                if previous:
                    changes = diff(json.loads(previous[0]["matches"]), current)
                    if any(changes.values()):
                        add_event(connection, ACCOUNT, "vuln_update", tag, {
                            "diff_vulnerability_result": changes, "imageDigest": digest,
                            "subscription_type": "vuln_update"})
                        recorded += 1
                connection.execute("DELETE FROM vuln_status WHERE tag = ?", (tag,))
                connection.execute("INSERT INTO vuln_status (tag, digest, stamp, matches) VALUES (?, ?, ?, ?)",
                                   (tag, digest, stamp, json.dumps(current)))
        return recorded
