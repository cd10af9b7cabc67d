"""Maven versions, ordered as Maven's ComparableVersion (maven-artifact) orders them.

A version becomes a list of numbers and qualifiers (`.`, `-` and a switch between digits and
letters separate items; `-` between two numbers opens a sub-list, so `1-1` differs from `1.1`).
Known qualifiers order
`alpha < beta < milestone < rc = cr < snapshot < "" = ga = final < sp`; unknown ones come
after those, alphabetically; a qualifier sorts before a number. Trailing zeros and release
qualifiers are dropped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Union

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "cr": "rc"}
_RELEASE_INDEX = str(_QUALIFIERS.index(""))
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}

Item = Union[int, str, "ListItem"]


class ListItem(list["Item"]):
    """A sub-list of items (what `-` or a digit/letter switch opens)."""


def _qualifier_key(value: str) -> str:
    value = _ALIASES.get(value, value)
    if value in _QUALIFIERS:
        return str(_QUALIFIERS.index(value))
    return f"{len(_QUALIFIERS)}-{value}"


def _string_item(value: str, followed_by_digit: bool) -> str:
    if followed_by_digit and len(value) == 1:
        value = _SHORT.get(value, value)
    return _ALIASES.get(value, value)


def _is_null(item: Item) -> bool:
    if isinstance(item, ListItem):
        return len(item) == 0
    if isinstance(item, int):
        return item == 0
    return _qualifier_key(item) == _RELEASE_INDEX


def _normalize(items: ListItem) -> None:
    while items and _is_null(items[-1]):
        items.pop()


@lru_cache(maxsize=65536)
def _parse_cached(text: str) -> ListItem:
    return parse(text)


def parse(text: str) -> ListItem:
    """The item tree of a version string (ComparableVersion.parseVersion)."""
    version = text.lower()
    current = root = ListItem()
    stack = [root]
    is_digit = False
    start = 0

    def item(digits: bool, value: str) -> Item:
        return int(value) if digits else _string_item(value, False)

    for index, character in enumerate(version):
        if character in ".-":
            current.append(0 if index == start else item(is_digit, version[start:index]))
            start = index + 1
            if character == "-" and is_digit:
                _normalize(current)  # 1.0-* = 1-*
                if index + 1 < len(version) and version[index + 1].isdigit():
                    # A sub-list only between digits: it tells 1.1 from 1-1.
                    sub = ListItem()
                    current.append(sub)
                    current = sub
                    stack.append(sub)
        elif character.isdigit():
            if not is_digit and index > start:
                current.append(_string_item(version[start:index], True))
                start = index
            is_digit = True
        else:
            if is_digit and index > start:
                current.append(int(version[start:index]))
                start = index
            is_digit = False
    if len(version) > start:
        current.append(item(is_digit, version[start:]))
    while stack:
        _normalize(stack.pop())
    return root


def _compare_items(left: Item | None, right: Item | None) -> int:
    if left is None:
        return 0 if right is None else -_compare_items(right, None)
    if isinstance(left, int):
        if right is None:
            return 0 if left == 0 else 1
        if isinstance(right, int):
            return (left > right) - (left < right)
        return 1
    if isinstance(left, ListItem):
        if right is None:
            return _compare_items(left[0], None) if left else 0
        if isinstance(right, int):
            return -1
        if isinstance(right, str):
            return 1
        for index in range(max(len(left), len(right))):
            a = left[index] if index < len(left) else None
            b = right[index] if index < len(right) else None
            result = -_compare_items(b, a) if a is None else _compare_items(a, b)
            if result:
                return result
        return 0
    key = _qualifier_key(left)
    if right is None:
        return (key > _RELEASE_INDEX) - (key < _RELEASE_INDEX)
    if isinstance(right, str):
        other = _qualifier_key(right)
        return (key > other) - (key < other)
    return -1


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is older than, the same as, or newer than `right`."""
    result = _compare_items(_parse_cached(left), _parse_cached(right))
    return (result > 0) - (result < 0)
