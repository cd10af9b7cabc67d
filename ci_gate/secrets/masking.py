"""Secret-looking text by shape, and how a secret is masked: the text logic below the scanner.

Kinds 2 to 4 of secret-looking text in `ci_gate.redaction` are decided here by shape alone
(`secret_spans`: a value under a secret-looking name, the password of a URL, an authorization
header); kind 1, the secret rules, is `ci_gate.secrets.rules`, applied by
`ci_gate.secrets.scanner`, which masks what it finds with `mask_spans` and makes a finding's
preview with `secret_preview`. `ci_gate.redaction` puts both together for every stage that writes
text. It imports only `ci_gate.secrets.names`: the scanner, the redaction and the error base all
stand on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ci_gate.secrets.names import is_secret_name

MASK = "****"


# --- masking -------------------------------------------------------------------------------------


def mask(secret: str, keep: int = 4) -> str:
    """At most the first `keep` characters of a secret (fewer for a short one), then `****`."""
    keep = min(keep, len(secret) // 4)
    return secret[:keep] + MASK


def mask_spans(text: str, spans: Iterable[tuple[int, int]], keep: int = 4) -> str:
    """`text` with each span masked; overlapping spans are merged first so no tail escapes."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return text
    result, cursor = [], 0
    for start, end in merged:
        result.append(text[cursor:start])
        result.append(mask(text[start:end], keep))
        cursor = end
    result.append(text[cursor:])
    return "".join(result)


# --- the preview of a secret finding ---------------------------------------------------------------

_PREVIEW_PREFIX_LIMIT = 48
"""How many characters before the secret a preview keeps (the variable name and the `=`)."""

_PREVIEW_PRINTABLE = re.compile(r"[^\x20-\x7e]")

_IDENTIFIER = re.compile(r"[A-Za-z_.\-]+")
"""A word-like token (a key name, `-----BEGIN`): context, not a value."""
_TOKEN = re.compile(r"[^\s\"'=:,;()\[\]{}<>`]+")
_ASSIGNED = re.compile(r"(?<=[=:])\s*[\"']?([^\s\"',;{}\[\]]+)")


def _redact_context(text: str) -> str:
    """Mask each value-like token before a secret: assigned values, long or digit-bearing tokens."""
    spans: list[tuple[int, int]] = [match.span(1) for match in _ASSIGNED.finditer(text)]
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if (
            len(token) >= 8
            and (any(char.isdigit() for char in token) or len(token) >= 24)
            and not _IDENTIFIER.fullmatch(token)
        ):
            spans.append(match.span())
    return mask_spans(text, spans, keep=0)


def secret_preview(line: str, secret: re.Pattern[str] | None, start: int) -> tuple[str, int | None]:
    """A short, redacted excerpt of a matching line, and where on the line the secret starts.

    The context before the secret is kept (with anything value-like in it masked), the secret is
    masked, and nothing after it is kept. Without a way to locate the secret, only the first few
    characters of the line are kept and the position is None.
    """
    line = _PREVIEW_PRINTABLE.sub("?", line)
    match = secret.search(line, start) if secret is not None else None
    if match is None:
        stripped = line.strip()
        return (MASK if stripped else ""), None
    begin, end = match.span("secret") if "secret" in match.re.groupindex else match.span()
    # Redact before cutting to length, so a cut can never leave part of another secret unmasked.
    context = line[:begin].lstrip()
    cut = len(context) > 4 * _PREVIEW_PREFIX_LIMIT
    if cut:
        # Keep redaction cheap on huge lines; drop the cut token whole so no fragment survives.
        context = context[-4 * _PREVIEW_PREFIX_LIMIT :]
        blank = min((context.find(char) for char in " \t" if char in context), default=len(context))
        context = context[blank:].lstrip()
    shown = _redact_context(context)
    if cut or len(shown) > _PREVIEW_PREFIX_LIMIT:
        shown = "…" + shown[-_PREVIEW_PREFIX_LIMIT:]
    value = line[begin:end]
    return (shown + MASK if value else shown.rstrip()), begin


# --- what is secret-looking besides the rules ------------------------------------------------------

ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_$\-{.])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s;&|)]+)"
)
"""`NAME=value`: ENV and ARG steps, `|N NAME=value` build-arg prefixes, `export`, `-X pkg.Name=v`,
query strings."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
"""Where a camelCase name splits into parts (`apiToken` → `api_Token`), for `-X main.apiToken=…`."""
_URL_USERINFO = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://(?P<userinfo>[^/\s?#<>`]+)@")
_PLAIN_USER = re.compile(r"[A-Za-z][A-Za-z0-9._\-]{0,15}")
"""A user name alone (`git@`, `oauth2@`) is not a secret; a long one is (a token as user name)."""

_HEADER_VALUE = re.compile(
    r"(?i)\b(?:proxy-)?(?:authorization|private-token|job-token|x-api-key|x-auth-token|x-registry-auth)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|negotiate)\s+)?(?P<value>[^\s\"',;}]+)"
)
_BEARER = re.compile(r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9._~+/\-]{12,}=*)")
_HEADER_HINT = re.compile("authorization|private-token|job-token|x-api-key|x-auth-token|x-registry-auth|bearer")


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def is_reference(value: str) -> bool:
    """True for a value taken from elsewhere (`$TOKEN`, `${TOKEN}`, `$(cat file)`), not written in."""
    return value.strip().startswith("$")


def secret_spans(text: str, lowered: str | None = None) -> list[tuple[int, int]]:
    """Spans of `text` that are secret by shape alone (kinds 2 to 4 of the module docstring)."""
    spans: list[tuple[int, int]] = []
    if "=" in text:
        for match in ASSIGNMENT.finditer(text):
            raw = match.group("value")
            value = unquote(raw)
            name = match.group("name")
            if value.strip() and (is_secret_name(name) or is_secret_name(_CAMEL.sub("_", name))) \
                    and not is_reference(value) and MASK not in value:
                start, end = match.span("value")
                spans.append((start + 1, end - 1) if raw != value else (start, end))
    if "@" in text and "://" in text:
        for match in _URL_USERINFO.finditer(text):
            userinfo = match.group("userinfo")
            if MASK in userinfo:
                continue  # masked already: a second pass changes nothing
            start, end = match.span("userinfo")
            user, colon, _ = userinfo.partition(":")
            if colon and _PLAIN_USER.fullmatch(user):
                spans.append((start + len(user) + 1, end))  # the user name stays, the password goes
            elif colon or not _PLAIN_USER.fullmatch(userinfo):
                spans.append((start, end))
    lowered = text.lower() if lowered is None else lowered
    if _HEADER_HINT.search(lowered):
        spans.extend(match.span("value") for match in _HEADER_VALUE.finditer(text) if MASK not in match.group("value"))
        spans.extend(match.span("value") for match in _BEARER.finditer(text) if MASK not in match.group("value"))
    return spans
