"""Events: one row per notification (anchore-engine's event and notification types), recorded inside the
transaction of the change that caused it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ci_gate.database import Connection, clock_of
from ci_gate.server.rows import ANALYSIS_FAILED

EVENT_TYPES = {
    "analysis_update": ("user.image.analysis.completed", "info", "Image analysis available"),
    "analysis_failed": ("user.image.analysis.failed", "error", "Failed to analyze image"),
    "tag_update": ("user.image.tag.update", "info", "Tag update detected: the tag now points to another digest"),
    "policy_eval": ("user.checks.tag.policy_evaluation.update", "info",
                    "Policy evaluation update detected for a tagged image"),
    "vuln_update": ("user.checks.tag.vulnerabilities.update", "info", "Vulnerability update detected for tagged image"),
}
"""Notification type -> (anchore-engine event type, level, message). The engine has no event class for
tag_update (only a notification), so that one is named after the engine's scheme."""


def add_event(connection: Connection, account: str, notification_type: str, full_tag: str,
              details: Mapping[str, Any]) -> str:
    """Record one event for a tag (inside the caller's transaction). When the tag has an active subscription
    of this type, the event also enters the notification outbox in the same transaction, so an event is
    never recorded without its notification, nor the other way round (ci_gate/notify/ delivers them).
    Returns the event's id."""
    import uuid

    failed = notification_type == "analysis_update" and details.get("analysis_status") == ANALYSIS_FAILED
    key = "analysis_failed" if failed else notification_type
    event_type, level, message = EVENT_TYPES[key]
    identifier = uuid.uuid4().hex
    timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    connection.execute(
        "INSERT INTO events (generated_uuid, account, type, notification_type, level, message, resource_type, "
        "resource_id, details, timestamp) VALUES (?, ?, ?, ?, ?, ?, 'image_tag', ?, ?, ?)",
        (identifier, account, event_type, notification_type, level, message, full_tag,
         json.dumps(dict(details)), timestamp))
    subscribed = connection.execute(
        "SELECT 1 FROM subscriptions WHERE subscription_key = ? AND subscription_type = ? AND active = 1",
        (full_tag, notification_type)).fetchone()
    if subscribed:
        event = {"id": identifier, "type": event_type, "level": level, "message": message,
                 "notification_type": notification_type, "subscription_key": full_tag,
                 "details": dict(details), "timestamp": timestamp}
        # created by the database's clock: the retry window of its deliveries is judged by that clock
        connection.execute("INSERT INTO outbox (event_uuid, notification_type, subscription_key, event, created) "
                           f"VALUES (?, ?, ?, ?, {clock_of(connection)})",
                           (identifier, notification_type, full_tag, json.dumps(event)))
        from ci_gate.database import after_commit
        from ci_gate.notify import listener, wakeup

        after_commit(wakeup.queued)  # the delivery thread looks at once, when the row is there to see
        listener.announce(connection)  # and other replicas' threads (PostgreSQL)
    return identifier


