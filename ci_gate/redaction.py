"""The one definition of secret-looking text and how it is masked, for every stage that writes text.

Secret-looking is:

1. what the secret rules recognise: Anchore's five defaults and ci-gate's token formats (GitHub,
   GitLab, Slack, AWS, npm, Stripe, JWT, private keys ...). The rule catalogue is
   `ci_gate.secrets.rules`, applied by the scanner (`ci_gate.secrets.scanner`); `redact_text`
   uses the same rules, so whatever is reported as a secret finding is masked everywhere else too;
2. a value assigned to a secret-looking name: `DB_PASSWORD=...`, `-X main.apiToken=...`,
   `?access_token=...` (`ci_gate.secrets.names` decides the name), and in a mapping the
   value under such a key (a label `api.token`, a metadata `password`);
3. the user info of a URL that carries a password, or a token as user name:
   `postgres://u:p@h/db`, `https://x-access-token:ghs_…@github.com`; always;
4. the value of an authorization header written out: `Authorization: Bearer …`, `PRIVATE-TOKEN: …`.

Kinds 2 to 4, masking and a finding's preview are text logic the scanner needs too, so they are
defined below it, in `ci_gate.secrets.masking`; this module puts the rules and the shapes together.
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
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ci_gate.secrets.masking import MASK, is_reference, mask
from ci_gate.secrets.names import is_secret_name

__all__ = [
    "escape_control",
    "redact_base64_text",
    "redact_message",
    "redact_model",
    "redact_text",
    "safe_message",
    "terminal_line",
    "terminal_text",
]

T = TypeVar("T")

MESSAGE_LIMIT = 2000
"""Longest error message shown; attacker-chosen text (a 10 MB media type) is cut, not echoed."""


_DEFAULT_REDACT: Callable[[str], str] | None = None


def redact_text(text: str) -> str:
    """`text` with everything secret-looking masked, by the default secret rules and by shape."""
    global _DEFAULT_REDACT
    if _DEFAULT_REDACT is None:
        # Lazily: the rule catalogue compiles once per process, and only when text is redacted.
        from ci_gate.secrets.scanner import SecretScanner

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
