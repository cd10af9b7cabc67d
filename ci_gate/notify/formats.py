"""What each endpoint kind receives for one event.

- webhook v1: anchore-engine's notification body (`anchore_engine/subsys/notifications.py`), so
  receivers written for the engine keep working;
- webhook v2: Anchore Enterprise's event body `{id, type, level, message, details, timestamp,
  resource, source}`;
- Slack: an incoming-webhook message (`text` plus Block Kit `header` and `section` blocks);
- Microsoft Teams: a workflow-webhook message carrying one Adaptive Card (1.4);
- Jira and GitHub: an issue title and body; email: a subject and a plain-text body.

The event is the outbox's copy: `{id, type, level, message, notification_type, subscription_key,
details, timestamp}`.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

SERVICE_NAME = "ci-gate-serve"
MAX_LISTED = 10
"""Vulnerabilities named in a chat message or issue; the rest are counted."""


def _short(digest: Any) -> str:
    return str(digest)[:19] if isinstance(digest, str) else str(digest)


def _epoch(timestamp: str) -> int:
    try:
        return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return int(time.time())


def image_digest(event: Mapping[str, Any]) -> str:
    """The digest the event is about (the new one for a moved tag)."""
    details = event["details"]
    kind = event["notification_type"]
    if kind == "tag_update":
        current = details.get("curr_eval") or [""]
        return str(current[-1])
    if kind == "policy_eval":
        return str((details.get("curr_eval") or {}).get("image_digest", ""))
    if kind == "vuln_update":
        return str(details.get("imageDigest", ""))
    return str(details.get("image_digest", ""))


def title(event: Mapping[str, Any]) -> str:
    tag, details, kind = event["subscription_key"], event["details"], event["notification_type"]
    if kind == "tag_update":
        return f"ci-gate: {tag} now points to another image"
    if kind == "policy_eval":
        last, current = details.get("last_eval") or {}, details.get("curr_eval") or {}
        return f"ci-gate: policy check of {tag} changed: {last.get('status')} -> {current.get('status')}"
    if kind == "vuln_update":
        changes = details.get("diff_vulnerability_result") or {}
        return (f"ci-gate: vulnerabilities of {tag} changed: {len(changes.get('added', []))} added, "
                f"{len(changes.get('updated', []))} updated, {len(changes.get('removed', []))} removed")
    return f"ci-gate: analysis of {tag}: {details.get('analysis_status')}"


def text(event: Mapping[str, Any]) -> str:
    """Plain lines saying what happened, for chat messages, issues and email."""
    tag, details, kind = event["subscription_key"], event["details"], event["notification_type"]
    lines = [title(event), f"Tag: {tag}"]
    if kind == "tag_update":
        lines += [f"Previous digest: {', '.join(map(str, details.get('last_eval') or []))}",
                  f"Current digest: {', '.join(map(str, details.get('curr_eval') or []))}"]
    elif kind == "policy_eval":
        last, current = details.get("last_eval") or {}, details.get("curr_eval") or {}
        lines += [f"Policy: {current.get('policy_id')}",
                  f"Was: {last.get('status')} ({last.get('image_digest')})",
                  f"Now: {current.get('status')} ({current.get('image_digest')})"]
    elif kind == "vuln_update":
        lines.append(f"Image digest: {details.get('imageDigest')}")
        changes = details.get("diff_vulnerability_result") or {}
        for change in ("added", "updated", "removed"):
            items = changes.get(change) or []
            for item in items[:MAX_LISTED]:
                fix = item.get("Fix_Available") or "none"
                lines.append(f"{change}: {item.get('CVE_ID')} {item.get('Severity')} in "
                             f"{item.get('Vulnerable_Package')} (fix: {fix})")
            if len(items) > MAX_LISTED:
                lines.append(f"... and {len(items) - MAX_LISTED} more {change}")
    else:
        lines += [f"Image digest: {details.get('image_digest')}", f"Status: {details.get('analysis_status')}"]
        if details.get("error"):
            lines.append(f"Error: {details['error']}")
    lines.append(f"Event: {event['type']} at {event['timestamp']} (id {event['id']})")
    return "\n".join(lines)


def engine_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's notification_payload fields for the event's type."""
    details = dict(event["details"])
    if event["notification_type"] == "analysis_update":
        digest = details.get("image_digest")
        return {"last_eval": {"analysis_status": "analyzing", "image_digest": digest, "annotations": {}},
                "curr_eval": {"analysis_status": details.get("analysis_status"), "image_digest": digest,
                              "annotations": {}}}
    return details


def webhook_v1(event: Mapping[str, Any], account: str, email: str, tries: int, max_tries: int) -> dict[str, Any]:
    """anchore-engine's body: a queue record whose `data` is the notification."""
    created = _epoch(event["timestamp"])
    payload = {"userId": account, "subscription_key": event["subscription_key"],
               "subscription_type": event["notification_type"], "notificationId": event["id"],
               **engine_payload(event)}
    return {"queueId": "notifications", "userId": account, "dataId": event["id"], "created_at": created,
            "last_updated": int(time.time()), "record_state_key": "active", "record_state_val": None,
            "tries": tries, "max_tries": max_tries,
            "data": {"notification_user": account, "notification_user_email": email,
                     "notification_type": event["notification_type"], "notification_payload": payload}}


def webhook_v2(event: Mapping[str, Any], account: str) -> dict[str, Any]:
    """Anchore Enterprise's event body."""
    return {"id": event["id"], "type": event["type"], "level": event["level"], "message": event["message"],
            "details": dict(event["details"]), "timestamp": event["timestamp"],
            "resource": {"account_name": account, "type": "image_tag", "id": event["subscription_key"]},
            "source": {"servicename": SERVICE_NAME, "hostid": SERVICE_NAME, "base_url": None, "request_id": None}}


def slack(event: Mapping[str, Any]) -> dict[str, Any]:
    """Block Kit limits: header text 150 characters, section text 3000."""
    body = text(event)
    return {"text": title(event)[:3000],
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": title(event)[:150]}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": "```" + body[:2990] + "```"}}]}


def teams(event: Mapping[str, Any]) -> dict[str, Any]:
    facts = [{"title": "Tag", "value": event["subscription_key"]},
             {"title": "Event", "value": event["notification_type"]},
             {"title": "Image", "value": image_digest(event) or "-"}]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4",
            "body": [{"type": "TextBlock", "text": title(event), "weight": "Bolder", "size": "Medium", "wrap": True},
                     {"type": "FactSet", "facts": facts},
                     {"type": "TextBlock", "text": text(event), "wrap": True, "fontType": "Monospace"}]}
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                 "contentUrl": None, "content": card}]}


def issue_key(event: Mapping[str, Any]) -> str:
    """One issue per image and event type: retries, restarts and repeats find the same issue."""
    seed = json.dumps([event["notification_type"], event["subscription_key"], image_digest(event)])
    return hashlib.sha256(seed.encode()).hexdigest()[:16]
