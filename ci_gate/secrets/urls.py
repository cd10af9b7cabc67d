"""Credentials inside a notification endpoint's URL, and the URL as it may be shown.

Receivers often take their credential in the URL itself: `https://hooks.example/in?token=...`, an Azure
Logic App's `sig=`, a Google Chat `key=`, the last path segments of a Slack, Teams or Discord incoming
webhook, a Mattermost `/hooks/<key>`. `masked` replaces each with MASK so the API, the dashboard and
the log can show where an endpoint points without handing the credential to whoever reads them; the
full URL stays sealed in the store for delivery (ci_gate.notify.endpoints).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"

SECRET_PARAMETER = re.compile(r"token|secret|pass|pwd|key|sig|auth|credential|code|session|ticket|jwt|bearer|hmac"
                              r"|private", re.IGNORECASE)
"""Query parameter names whose values are credentials (`api_key`, `access_token`, `sig`, `code`...)."""

_SECRET_PATHS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    # (host, path prefix kept): every path segment after the prefix is the credential
    (re.compile(r"hooks\.slack\.com"), re.compile(r"/(services|workflows|triggers)/")),
    (re.compile(r"(.+\.)?webhook\.office\.com|outlook\.office(365)?\.com"), re.compile(r"/webhook(b2)?/")),
    (re.compile(r"((ptb|canary)\.)?discord(app)?\.com"), re.compile(r"/api/(v\d+/)?webhooks/")),
)
_HOOKS_SEGMENT = re.compile(r"/(hooks?|webhooks?)/")
"""Mattermost, Rocket.Chat, n8n and many self-hosted receivers: `/hooks/<key>[/<token>]`, `/webhook/<id>`."""
_TOKEN_SEGMENT = re.compile(r"(?=[^/]*[a-z])(?=[^/]*[A-Z])(?=[^/]*[0-9])[A-Za-z0-9_\-.~=+%]{20,}|[0-9a-fA-F]{32,}"
                            r"|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
"""A run that looks generated (long, mixed case and digits, long hex, a UUID): a segment holding one is
a credential, whatever the receiver is (a Telegram `bot<id>:<token>` segment holds one)."""
_SECRET_PATH_NAME = re.compile(r"(api[_-]?)?(key|token|secret|password|sig|signature)", re.IGNORECASE)
"""A path segment that names the next one a credential (IFTTT's `/with/key/<key>`)."""
_PAIR_SEPARATOR = re.compile(r"([&;])")
"""Receivers split a query on `;` as well as `&`: a `?a=1;token=...` pair is masked too."""


def _mask_pairs(text: str) -> str:
    """`name=value` pairs (a query, a path segment's parameters) with the values of secret-named ones, and
    any generated-looking bare piece, masked; everything else kept byte for byte."""
    pieces = _PAIR_SEPARATOR.split(text)
    for index in range(0, len(pieces), 2):
        name, equals, _ = pieces[index].partition("=")
        if equals and SECRET_PARAMETER.search(unquote_plus(name)):
            pieces[index] = name + "=" + MASK
        elif not equals and _TOKEN_SEGMENT.search(pieces[index]):
            pieces[index] = MASK
    return "".join(pieces)


def _mask_segment(segment: str) -> str:
    head, semicolon, parameters = segment.partition(";")
    if _TOKEN_SEGMENT.search(head):
        head = MASK
    return head + semicolon + (_mask_pairs(parameters) if semicolon else "")


def _mask_path(host: str, path: str) -> str:
    service = _known_service_path(host, path)
    if service is not None:
        return service
    hooks = _HOOKS_SEGMENT.search(path)
    if hooks:
        kept, rest = path[:hooks.end()], path[hooks.end():]
        return _mask_segments(kept) + _masked_segments(rest)
    return _mask_segments(path)


def _known_service_path(host: str, path: str) -> str | None:
    for host_pattern, prefix_pattern in _SECRET_PATHS:
        if host_pattern.fullmatch(host):
            prefix = prefix_pattern.match(path)
            if prefix:
                return prefix.group(0) + _masked_segments(path[prefix.end():])
    return None


def _masked_segments(rest: str) -> str:
    return "/".join(MASK if segment else "" for segment in rest.split("/"))


def masked_webhook_path(host: str, path: str) -> str | None:
    """The path of a known webhook service's URL (Slack, Teams, Discord, or any `/hooks/` path) with its
    secret segments masked; None for any other path. The narrow rule for URLs that are not endpoints
    (downloads, registries, `watch --notify`), whose long hex segments are digests to keep."""
    service = _known_service_path(host, path)
    if service is not None:
        return service
    hooks = _HOOKS_SEGMENT.search(path)
    return None if hooks is None else path[:hooks.end()] + _masked_segments(path[hooks.end():])


def _mask_segments(path: str) -> str:
    segments = path.split("/")
    return "/".join(MASK if index and segment and _SECRET_PATH_NAME.fullmatch(segments[index - 1])
                    else _mask_segment(segment) for index, segment in enumerate(segments))


def masked(url: str) -> str:
    """`url` with its credentials replaced by MASK: the user information, the values of secret-named query
    (and path segment) parameters, the secret path segments of known webhook services, any
    generated-looking segment and the fragment. What is not a credential is kept as written. A URL it
    cannot read is masked whole."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, _mask_path(host, parts.path), _mask_pairs(parts.query), fragment))


def holds_credentials(url: str) -> bool:
    return masked(url) != url
