"""API keys: what a valid key request is (name, RFC 3339 expiry within the maximum lifetime).

Keys follow Anchore Enterprise's `UserApiKey` (`GET/POST /v2/user/api-keys`, `GET/PATCH/DELETE
/v2/user/api-keys/{key_name}`): the value is shown once, at creation; the store keeps its SHA-256.
Only a password login may create, change or delete keys, so a leaked key cannot mint itself a
successor or revoke the owner's other keys.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

MAX_LIFETIME = timedelta(days=365)
"""The longest a key may live; a key asked for longer is refused, not shortened."""
DEFAULT_LIFETIME = timedelta(days=30)
"""The lifetime of a key created without `expires_at`."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RFC3339_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class KeyRequestError(ValueError):
    """A key request that cannot be honoured; the message says what to send instead."""


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 date-time with an offset, as UTC; None when `text` is not one."""
    if not RFC3339_PATTERN.match(text):
        return None
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:  # Python parses microseconds at most
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:  # 2026-02-30, 25:00 and the like
        return None
    return moment.astimezone(timezone.utc)


def key_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise KeyRequestError("an API key needs a name of 1-128 letters, digits, '.', '_' or '-' "
                              "(e.g. {\"name\": \"ci-runner\", \"expires_at\": \"2027-01-01T00:00:00Z\"})")
    return value


def expiry(value: Any, now: datetime) -> str:
    """The normalised expiry for a key created at `now`: RFC 3339, in the future, within MAX_LIFETIME."""
    if value is None or value == "":
        return format_time(now + DEFAULT_LIFETIME)
    latest = now + MAX_LIFETIME
    if not isinstance(value, str):
        raise KeyRequestError("expires_at must be an RFC 3339 date-time string such as "
                              f"{format_time(now + DEFAULT_LIFETIME)}")
    moment = parse_time(value)
    if moment is None:
        raise KeyRequestError(f"expires_at {value[:40]!r} is not an RFC 3339 date-time; send e.g. "
                              f"{format_time(now + DEFAULT_LIFETIME)}")
    if moment <= now:
        raise KeyRequestError("expires_at is in the past; choose a time after now")
    if moment > latest:
        raise KeyRequestError(f"expires_at is more than {MAX_LIFETIME.days} days away; the latest allowed now "
                              f"is {format_time(latest)}")
    return format_time(moment)


def effective_status(status: str, expires_at: str, created_at: str, now: datetime) -> str:
    """active, expired or revoked. An expiry that does not parse, or lies beyond the maximum lifetime
    from creation (a row written before expiries were checked), counts as expired: fail closed."""
    if status != "active":
        return status
    moment = parse_time(expires_at)
    created = parse_time(created_at)
    if moment is None or created is None or moment <= now or moment > created + MAX_LIFETIME:
        return "expired"
    return "active"
