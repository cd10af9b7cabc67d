"""Events: one row per notification (anchore-engine's event and notification types), recorded inside the
transaction of the change that caused it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

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


def add_event(connection: sqlite3.Connection, account: str, notification_type: str, full_tag: str,
              details: Mapping[str, Any]) -> None:
    """Record one event for a tag (inside the caller's transaction); the notifications sender delivers them."""
    import uuid

    failed = notification_type == "analysis_update" and details.get("analysis_status") == ANALYSIS_FAILED
    key = "analysis_failed" if failed else notification_type
    event_type, level, message = EVENT_TYPES[key]
    connection.execute(
        "INSERT INTO events (generated_uuid, account, type, notification_type, level, message, resource_type, "
        "resource_id, details, timestamp) VALUES (?, ?, ?, ?, ?, ?, 'image_tag', ?, ?, ?)",
        (uuid.uuid4().hex, account, event_type, notification_type, level, message, full_tag,
         json.dumps(dict(details)), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")))


