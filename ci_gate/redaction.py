"""The one definition of secret-looking text and how it is masked, for every stage that writes text.

Secret-looking is:

1. what the secret rules recognise: Anchore's five defaults and ci-gate's token formats (GitHub,
   GitLab, Slack, AWS, npm, Stripe, JWT, private keys ...). The rule catalogue is
   `ci_gate.analyze.secret_rules`, applied by the scanner (`ci_gate.analyze.secrets`); `redact_text`
   uses the same rules, so whatever is reported as a secret finding is masked everywhere else too;
2. a value assigned to a secret-looking name: `DB_PASSWORD=...`, `-X main.apiToken=...`,
   `?access_token=...` (`ci_gate.analyze.secret_names` decides the name), and in a mapping the
   value under such a key (a label `api.token`, a metadata `password`);
3. the user info of a URL that carries a password, or a token as user name:
   `postgres://u:p@h/db`, `https://x-access-token:ghs_…@github.com`; always;
4. the value of an authorization header written out: `Authorization: Bearer …`, `PRIVATE-TOKEN: …`.

Masking keeps at most the first four characters (fewer of a short secret) and appends `****`, so
no eight characters of a secret survive. A secret finding's preview (`secret_preview`) keeps none:
the secret is `****` whole, and anything value-like before it on the line is masked whole too.

Also here, because it is the same promise (text from an image or a server never does harm where
it is printed): `escape_control` / `terminal_line` make a value safe for one terminal or CI-log
line, and `safe_message` is what an error message goes through before anyone sees it.

`redact_model` is the final pass: it applies a redaction to every string of a model object (an
`Analysis` before it leaves the analyzer, so `analyze -o json`, the SBOMs, the analysis cache and
serve's content endpoints all hold the masked text).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ci_gate.analyze.secret_names import is_secret_name

__all__ = [
    "ASSIGNMENT",
    "MASK",
    "escape_control",
    "is_reference",
    "mask",
    "mask_spans",
    "redact_message",
    "redact_model",
    "redact_text",
    "safe_message",
    "secret_spans",
    "terminal_line",
    "unquote",
]

T = TypeVar("T")

MASK = "****"

MESSAGE_LIMIT = 2000
"""Longest error message shown; attacker-chosen text (a 10 MB media type) is cut, not echoed."""


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


_DEFAULT_REDACT: Callable[[str], str] | None = None


def redact_text(text: str) -> str:
    """`text` with everything secret-looking masked, by the default secret rules and by shape."""
    global _DEFAULT_REDACT
    if _DEFAULT_REDACT is None:
        # Lazily: the rule catalogue compiles once per process, and only when text is redacted.
        from ci_gate.analyze.secrets import SecretScanner

        _DEFAULT_REDACT = SecretScanner().redact
    return _DEFAULT_REDACT(text)


_KEYWORD_VALUE = re.compile(
    r"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"private[_-]?key|credential|auth(?!or))[A-Z0-9_.-]*\s*[=:]\s*[\"']?)([^\s\"',;]{3,})"
)
"""`password: VALUE`, `token=VALUE`: broader than the name heuristic, for free-text messages only
(a server's error text, a policy message) where a false positive costs nothing."""
_PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(-----END[A-Z ]*PRIVATE KEY-----|$)", re.S)
_AWS_KEY_IDS = re.compile(r"\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{4})[A-Z0-9]{12}\b")


def redact_message(text: str) -> str:
    """`redact_text` plus the broader `keyword: value` masking, for messages people read."""
    text = redact_text(text)
    text = _PRIVATE_KEY_BLOCK.sub("-----BEGIN PRIVATE KEY----- " + MASK, text)
    text = _AWS_KEY_IDS.sub(r"\1" + MASK, text)
    return _KEYWORD_VALUE.sub(r"\1" + MASK, text)


def redact_base64_text(encoded: str | None) -> str | None:
    """A base64 text document (the Dockerfile submitted to ci-gate serve) with its secrets masked,
    base64 again; None when it does not decode to text (it cannot be checked, so it is not echoed)."""
    if not encoded:
        return encoded
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    masked = redact_text(text)
    return encoded if masked == text else base64.b64encode(masked.encode("utf-8")).decode("ascii")


# --- text safe to print ------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def escape_control(text: str) -> str:
    """Control characters (all but tab), line and paragraph separators and bidi overrides shown as
    `\\n`, `\\r`, `\\x1b`, `\\u202e`: a value can neither start a line of its own nor drive the
    terminal."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda match: _NAMED.get(match.group(0)) or _escape_one(match.group(0)), text)


def _escape_one(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_line(text: str) -> str:
    """One line for a terminal or CI log: control characters escaped, and never a line that a CI
    runner reads as a command (GitHub's `::error::…` workflow commands start a line, after blanks)."""
    text = escape_control(text)
    stripped = text.lstrip()
    if stripped.startswith("::"):
        text = text[: len(text) - len(stripped)] + "\\" + stripped
    return text


def terminal_text(text: str) -> str:
    """Several lines for a terminal: each one made safe by `terminal_line`."""
    return "\n".join(terminal_line(line) for line in text.split("\n"))


def safe_message(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """An error message as it may be shown: secrets masked, one line, cut to `limit`.

    Masked before the cut, so a cut can never leave the head of a secret too short to recognise
    (the first 32 x `limit` characters are masked: what lies beyond is never shown anyway)."""
    cut = len(text) > limit
    text = escape_control(redact_message(text[: limit * 32]))
    return text[:limit] + " … (cut)" if cut or len(text) > limit else text


# --- the final pass over a model object --------------------------------------------------------------

_KEPT_FIELDS = frozenset({("SecretFinding", "rule"), ("SecretFinding", "regex"), ("SecretFinding", "preview")})
"""Fields written by the redaction itself: the rule's `NAME=REGEX` text (Anchore's trigger messages
carry it; it names, it is no secret) and the preview, masked when it was made."""
_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NUMERIC_HINTS: tuple[Any, ...] = (int, bool, float, int | None, bool | None, float | None)


def redact_model(obj: T, redact: Callable[[str], str]) -> T:
    """`obj` (a frozen dataclass, tuple, mapping or scalar) with `redact` applied to every string in
    it, mapping keys included; a mapping value under a secret-looking key is masked whole. Objects
    with nothing to mask are returned as they are (no copy of a 100,000-file list)."""
    memo: dict[str, str] = {}
    plans: dict[type, tuple[str, ...]] = {}
    scalars = (bool, int, float, bytes, type(None))

    def text(value: str) -> str:
        found = memo.get(value)
        if found is None:
            found = redact(value)
            if len(value) <= 64:  # short strings repeat (kinds, types, licenses, owners): ask once
                memo[value] = found
        return value if found == value else found

    def plan(cls: type) -> tuple[str, ...]:
        """The fields of a dataclass that can hold text (numbers and flags are skipped unvisited)."""
        names = plans.get(cls)
        if names is None:
            try:
                hints = typing.get_type_hints(cls)
            except (NameError, TypeError):
                hints = {}
            names = plans[cls] = tuple(item.name for item in dataclasses.fields(cls)
                                       if (cls.__name__, item.name) not in _KEPT_FIELDS
                                       and hints.get(item.name) not in _NUMERIC_HINTS)
        return names

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return text(value)
        if kind in scalars:
            return value
        if kind in plans or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            changes = {}
            for name in plan(kind):
                old = getattr(value, name)
                new = walk(old)
                if new is not old:
                    changes[name] = new
            return dataclasses.replace(value, **changes) if changes else value
        if kind is tuple or kind is list:
            items = [walk(item) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return tuple(items) if kind is tuple else items
        if isinstance(value, str):
            return text(str(value))
        if isinstance(value, Mapping):
            result = {}
            changed = False
            for key, item in value.items():
                new_key = walk(key)
                if (type(item) is str and type(key) is str and item.strip() and _NAME_LIKE.fullmatch(key)
                        and is_secret_name(key) and not is_reference(item) and MASK not in item):
                    new_item: Any = mask(item)
                else:
                    new_item = walk(item)
                changed = changed or new_key is not key or new_item is not item
                result[new_key] = new_item
            return result if changed else value
        if isinstance(value, (tuple, list)):
            return walk(list(value) if isinstance(value, list) else tuple(value))
        return value

    result: T = walk(obj)
    return result
