"""/etc/passwd and /etc/group parsing: tolerant, and never keeping a password hash."""

from __future__ import annotations

from ci_gate.analyze.passwd import HASH_MARKER, parse_group, parse_passwd
from ci_gate.model import to_dict

DEBIAN_PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
"""


def test_debian_passwd() -> None:
    users, warnings = parse_passwd(DEBIAN_PASSWD)
    assert warnings == []
    assert [(u.name, u.uid, u.gid, u.home, u.shell) for u in users] == [
        ("root", 0, 0, "/root", "/bin/bash"),
        ("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"),
        ("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
        ("_apt", 42, 65534, "/nonexistent", "/usr/sbin/nologin"),
    ]
    assert users[0].line == "root:x:0:0:root:/root:/bin/bash"  # what blacklist_full_entry compares
    assert users[0].gecos == "root" and users[0].password == "x"


def test_hash_is_never_kept() -> None:
    hashed = "$6$Zq8Xw2Lk$Vb9Nm3Rt7Yp1Hs4Dg6Fj0Ac2Ee5UuQw3rTy7uIo9pAs1dFg5hJ"
    text = f"admin:{hashed}:1000:1000:Admin:/home/admin:/bin/sh\nold:abJnggxhB/yWI:1001:1001::/home/old:/bin/sh\n"
    users, warnings = parse_passwd(text)
    assert warnings == []
    assert [u.password for u in users] == [HASH_MARKER, HASH_MARKER]
    assert users[0].line == f"admin:{HASH_MARKER}:1000:1000:Admin:/home/admin:/bin/sh"
    rendered = repr(users) + str(to_dict(users))
    assert "$6$" not in rendered and "Zq8Xw2Lk" not in rendered and "abJnggxhB" not in rendered


def test_markers_are_kept() -> None:
    text = "a:*:1:1::/:/bin/false\nb:!:2:2::/:/bin/false\nc::3:3::/:/bin/sh\nd:!!:4:4::/:/bin/false\n"
    users, _ = parse_passwd(text)
    assert [u.password for u in users] == ["*", "!", "", "!!"]


def test_comments_blank_lines_nis_and_malformed_lines() -> None:
    text = (
        "# comment\n\nroot:x:0:0:root:/root:/bin/sh\n+@netgroup::::::\n-baduser\n+\n"
        "broken line without colons\nshort:x:1\n:x:5:5::/:/bin/sh\nweird:x:abc:0::/:/bin/sh\r\n"
    )
    users, warnings = parse_passwd(text)
    assert [u.name for u in users] == ["root", "weird"]
    assert users[1].uid is None and users[1].gid == 0
    assert warnings == [
        "/etc/passwd line 7: expected 7 fields separated by ':', found 1",
        "/etc/passwd line 8: expected 7 fields separated by ':', found 3",
        "/etc/passwd line 9: empty user name",
        "/etc/passwd line 10: user 'weird' has a non-numeric UID or GID",
    ]


def test_group() -> None:
    text = "# groups\nroot:x:0:\nsudo:x:27:alice,bob\ndocker:x:999: carol \n+nis\nbad:x\nodd:x:z:\n"
    groups, warnings = parse_group(text)
    assert [(g.name, g.gid, g.members) for g in groups] == [
        ("root", 0, ()),
        ("sudo", 27, ("alice", "bob")),
        ("docker", 999, ("carol",)),
        ("odd", None, ()),
    ]
    assert warnings == [
        "/etc/group line 6: expected 4 fields separated by ':', found 2",
        "/etc/group line 7: group 'odd' has a non-numeric GID",
    ]


def test_empty_input() -> None:
    assert parse_passwd("") == ([], [])
    assert parse_group("\n\n") == ([], [])
