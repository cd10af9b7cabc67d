"""Parse /etc/passwd and /etc/group into the model, tolerating what real images contain.

Malformed lines become warnings, never errors: an image is analysed as it is. A password hash (an
old-style passwd with hashes in field two) is never kept: `<hash>` replaces it in `password` and in
`line`, the whole-line text Anchore's `passwd_file/blacklist_full_entry` trigger compares.
"""

from __future__ import annotations

import re

from ci_gate.model import GroupEntry, UserEntry

HASH_MARKER = "<hash>"
"""What replaces a password hash."""

_NOT_A_HASH = re.compile(r"[x*!]*|\*LK\*|NP")
"""Field-two values that are markers, not hashes: x (shadowed), *, !, *LK*, NP (locked), or empty."""


def parse_passwd(text: str) -> tuple[list[UserEntry], list[str]]:
    """The entries of an /etc/passwd, and one warning per line that could not be read."""
    users: list[UserEntry] = []
    warnings: list[str] = []
    for number, line in _lines(text):
        if line.startswith(("+", "-")):
            continue  # NIS compat entries (+user, +@netgroup, -user) name no local account
        fields = line.split(":")
        if len(fields) != 7:
            warnings.append(f"/etc/passwd line {number}: expected 7 fields separated by ':', found {len(fields)}")
            continue
        name, password, uid, gid, gecos, home, shell = fields
        if not name:
            warnings.append(f"/etc/passwd line {number}: empty user name")
            continue
        kept = password if _NOT_A_HASH.fullmatch(password) else HASH_MARKER
        user_id, group_id = _number(uid), _number(gid)
        if user_id is None or group_id is None:
            warnings.append(f"/etc/passwd line {number}: user {name[:64]!r} has a non-numeric UID or GID")
        users.append(
            UserEntry(
                name=name,
                uid=user_id,
                gid=group_id,
                gecos=gecos,
                home=home,
                shell=shell,
                password=kept,
                line=":".join([name, kept, uid, gid, gecos, home, shell]),
            )
        )
    return users, warnings


def parse_group(text: str) -> tuple[list[GroupEntry], list[str]]:
    """The entries of an /etc/group, and one warning per line that could not be read."""
    groups: list[GroupEntry] = []
    warnings: list[str] = []
    for number, line in _lines(text):
        if line.startswith(("+", "-")):
            continue
        fields = line.split(":")
        if len(fields) != 4:
            warnings.append(f"/etc/group line {number}: expected 4 fields separated by ':', found {len(fields)}")
            continue
        name, _password, gid, members = fields
        if not name:
            warnings.append(f"/etc/group line {number}: empty group name")
            continue
        group_id = _number(gid)
        if group_id is None:
            warnings.append(f"/etc/group line {number}: group {name[:64]!r} has a non-numeric GID")
        groups.append(
            GroupEntry(
                name=name,
                gid=group_id,
                members=tuple(member.strip() for member in members.split(",") if member.strip()),
            )
        )
    return groups, warnings


def _lines(text: str) -> list[tuple[int, str]]:
    """(1-based number, line) for each line that is not blank and not a `#` comment."""
    result = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        result.append((number, line))
    return result


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None
