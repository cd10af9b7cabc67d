"""Properties of the redaction over generated text (hypothesis): a secret the rules or the shapes know
never keeps 8 characters in a row, wherever it sits; escaped text has no control character left."""

from __future__ import annotations

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ci_gate.redaction import escape_control, redact_message, redact_text, terminal_line

SURROUNDING = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
"""Any text around the secret (newlines, quotes, URLs, control characters included)."""


def _survives(secret: str, text: str) -> bool:
    return any(secret[start:start + 8] in text for start in range(len(secret) - 7))


@settings(max_examples=300, deadline=None)
@given(before=SURROUNDING, after=SURROUNDING,
       token=st.sampled_from(["ghp_", "glpat-", "npm_", "sk_live_", "AKIA"]).flatmap(
           lambda prefix: st.text(alphabet=string.ascii_uppercase + string.digits, min_size=36, max_size=36)
           .map(lambda body: prefix + (body[:16] if prefix == "AKIA" else body))))
def test_a_token_is_masked_wherever_it_sits(before: str, after: str, token: str) -> None:
    assume(not _survives(token, before + after))
    for redact in (redact_text, redact_message):
        assert not _survives(token, redact(f"{before} {token} {after}"))


@settings(max_examples=300, deadline=None)
@given(before=SURROUNDING, after=SURROUNDING,
       scheme=st.sampled_from(["https", "postgres", "git+ssh", "redis", "amqp"]),
       user=st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True),
       password=st.text(alphabet=string.ascii_letters + string.digits + "!$&'()*+,;=._~-%", min_size=8,
                        max_size=40))
def test_a_url_password_is_masked(before: str, after: str, scheme: str, user: str, password: str) -> None:
    assume(not _survives(password, before + after + scheme + user))
    text = f"{before} {scheme}://{user}:{password}@db.example.com/x {after}"
    assert not _survives(password, redact_text(text))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["DB_PASSWORD", "api_token", "main.apiToken", "SECRET_KEY", "client-secret"]),
       value=st.text(alphabet=string.ascii_letters + string.digits + "/+=_-", min_size=8, max_size=40),
       before=SURROUNDING)
def test_a_secret_named_value_is_masked(name: str, value: str, before: str) -> None:
    assume(not _survives(value, before + name) and not value.startswith("$"))
    assert not _survives(value, redact_text(f"{before} {name}={value}"))


@settings(deadline=None)  # hypothesis's default 200 ms per example fails a test when a busy machine stalls it
@given(st.text())
def test_escaped_text_holds_no_control_character(text: str) -> None:
    for escaped in (escape_control(text), terminal_line(text)):
        assert not any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029"
                       for c in escaped)
    assert not terminal_line(text).lstrip().startswith("::")
