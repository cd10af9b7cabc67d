"""Alpine package versions: `digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}`.

Follows apk-tools' src/version.c token by token: numbers compare numerically (string order when a
later number has a leading zero, as Gentoo does), pre-release suffixes (`_alpha _beta _pre _rc`)
sort before the bare version and post suffixes (`_cvs _svn _git _hg _p`) after it, then the
`~hash` and the `-rN` package revision.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_DIGIT, DIGIT, LETTER, SUFFIX, SUFFIX_NUMBER, COMMIT_HASH, REVISION, END, INVALID = range(9)

_SUFFIXES = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_NO_SUFFIX = 4
"""The weight of "no suffix": pre-release suffixes weigh less, post-release ones more."""
_HEX = frozenset("0123456789abcdef")


@dataclass(slots=True)
class _Token:
    kind: int = INITIAL_DIGIT
    text: str = ""
    number: int = 0
    suffix: int = 0


class _Reader:
    """Reads one version string token by token, like apk's token_first/token_next."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.token = _Token()
        self._digits()

    def _digits(self) -> None:
        start = self.position
        while self.position < len(self.text) and self.text[self.position].isdigit():
            self.position += 1
        self.token.text = self.text[start:self.position]
        if not self.token.text:
            self.token.kind = INVALID
        else:
            self.token.number = int(self.token.text)

    def _span(self, allowed: frozenset[str] | None) -> str:
        start = self.position
        while self.position < len(self.text) and (
            (allowed is None and "a" <= self.text[self.position] <= "z")
            or (allowed is not None and self.text[self.position] in allowed)
        ):
            self.position += 1
        return self.text[start:self.position]

    def next(self) -> None:
        token, text = self.token, self.text
        if self.position >= len(text):
            token.kind = END
            return
        character = text[self.position]
        if "a" <= character <= "z":
            if token.kind > DIGIT:
                token.kind = INVALID
                return
            token.text, token.kind = character, LETTER
            self.position += 1
        elif character == "." or character.isdigit():
            if character == ".":
                if token.kind > DIGIT:
                    token.kind = INVALID
                    return
                self.position += 1
            if token.kind in (INITIAL_DIGIT, DIGIT):
                token.kind = DIGIT
            elif token.kind == SUFFIX:
                token.kind = SUFFIX_NUMBER
            else:
                token.kind = INVALID
                return
            self._digits()
        elif character == "_":
            if token.kind > SUFFIX_NUMBER:
                token.kind = INVALID
                return
            self.position += 1
            token.text = self._span(None)
            if token.text not in _SUFFIXES:
                token.kind = INVALID
                return
            token.suffix, token.kind = _SUFFIXES[token.text], SUFFIX
        elif character == "~":
            if token.kind >= COMMIT_HASH:
                token.kind = INVALID
                return
            self.position += 1
            token.text = self._span(_HEX)
            token.kind = COMMIT_HASH if token.text else INVALID
        elif character == "-":
            if token.kind >= REVISION or not text.startswith("-r", self.position):
                token.kind = INVALID
                return
            self.position += 2
            token.kind = REVISION
            self._digits()
        else:
            token.kind = INVALID


def _string_order(left: str, right: str) -> int:
    if left == right:
        return 0
    return -1 if left < right else 1


def _token_compare(a: _Token, b: _Token) -> int:
    if a.kind == DIGIT and (a.text.startswith("0") or b.text.startswith("0")):
        return _string_order(a.text, b.text)
    if a.kind in (INITIAL_DIGIT, DIGIT, SUFFIX_NUMBER, REVISION):
        return (a.number > b.number) - (a.number < b.number)
    if a.kind == LETTER:
        return _string_order(a.text, b.text)
    if a.kind == SUFFIX:
        return (a.suffix > b.suffix) - (a.suffix < b.suffix)
    return _string_order(a.text, b.text)


def is_valid(text: str) -> bool:
    """True when apk would accept `text` as a version."""
    reader = _Reader(text)
    while reader.token.kind < END:
        reader.next()
    return reader.token.kind == END


def compare(left: str, right: str, fuzzy: bool = False) -> int:
    """-1, 0 or 1 as `left` is older than, the same as, or newer than `right`.

    `fuzzy` makes a version equal to any longer version it is a prefix of (apk's `~` operator).
    """
    a, b = _Reader(left), _Reader(right)
    while a.token.kind == b.token.kind and a.token.kind < END:
        result = _token_compare(a.token, b.token)
        if result:
            return result
        a.next()
        b.next()
    ta, tb = a.token, b.token
    if ta.kind == tb.kind:
        return 0
    if tb.kind == END and fuzzy:
        return 0
    if ta.kind == SUFFIX and ta.suffix < _NO_SUFFIX:
        return -1
    if tb.kind == SUFFIX and tb.suffix < _NO_SUFFIX:
        return 1
    return -1 if ta.kind > tb.kind else 1
