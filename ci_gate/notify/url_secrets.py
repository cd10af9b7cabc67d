"""Credentials inside a notification endpoint's URL, and the URL as it may be shown.

Receivers often take their credential in the URL itself: `https://hooks.example/in?token=...`, an Azure
Logic App's `sig=`, a Google Chat `key=`, the last path segments of a Slack, Teams or Discord incoming
webhook, a Mattermost `/hooks/<key>`. `masked` replaces each with MASK so the API, the dashboard and
the log can show where an endpoint points without handing the credential to whoever reads them; the
full URL stays sealed in the store for delivery (ci_gate.notify.endpoints).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"

SECRET_PARAMETER = re.compile(r"token|secret|passw|pwd|key|sig|auth|credential|code|session|ticket", re.IGNORECASE)
"""Query parameter names whose values are credentials (`api_key`, `access_token`, `sig`, `code`...)."""

_SECRET_PATHS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    # (host, path prefix kept): every path segment after the prefix is the credential
    (re.compile(r"hooks\.slack\.com"), re.compile(r"/(services|workflows|triggers)/")),
    (re.compile(r"(.+\.)?webhook\.office\.com|outlook\.office(365)?\.com"), re.compile(r"/webhook(b2)?/")),
    (re.compile(r"((ptb|canary)\.)?discord(app)?\.com"), re.compile(r"/api/(v\d+/)?webhooks/")),
)
_HOOKS_SEGMENT = re.compile(r"/(hooks|webhooks)/")
"""Mattermost, Rocket.Chat and many self-hosted receivers: `/hooks/<key>[/<token>]`."""
_TOKEN_SEGMENT = re.compile(r"(?=[^/]*[a-z])(?=[^/]*[A-Z])(?=[^/]*[0-9])[A-Za-z0-9_\-.~=+]{20,}|[0-9a-fA-F]{32,}")
"""A path segment that looks generated (long, mixed case and digits, or long hex): a credential,
whatever the receiver is."""


def _mask_path(host: str, path: str) -> str:
    for host_pattern, prefix_pattern in _SECRET_PATHS:
        if host_pattern.fullmatch(host):
            prefix = prefix_pattern.match(path)
            if prefix:
                return prefix.group(0) + "/".join(MASK if segment else "" for segment in
                                                  path[prefix.end():].split("/"))
    hooks = _HOOKS_SEGMENT.search(path)
    if hooks:
        kept, rest = path[:hooks.end()], path[hooks.end():]
        return kept + "/".join(MASK if segment else "" for segment in rest.split("/"))
    return "/".join(MASK if _TOKEN_SEGMENT.fullmatch(segment) else segment for segment in path.split("/"))


def masked(url: str) -> str:
    """`url` with its credentials replaced by MASK: the user information, the values of secret-named query
    parameters, the secret path segments of known webhook services and any generated-looking segment.
    A URL it cannot read is masked whole."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_PARAMETER.search(name) for name, _ in pairs):
            query = urlencode([(name, MASK if SECRET_PARAMETER.search(name) else value) for name, value in pairs],
                              safe="*<>", quote_via=quote)
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, _mask_path(host, parts.path), query, fragment))


def holds_credentials(url: str) -> bool:
    return masked(url) != url
