"""Cache files trusted only when this user wrote them.

ci-gate's caches (analyses, STIG results) are keyed predictably, so anyone who could write into a
shared cache folder could otherwise plant a passing result for an image. Folders are created private
(0700); a file is read back only if it is a regular file owned by the effective user, not writable
by group or others, in a folder of the same kind; anything else is a miss.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ci_gate.fileio import write_atomic


def make_private_dir(directory: Path) -> bool:
    """Create `directory` and any missing parent as 0700; whether `directory` is private to this user
    (else nothing may be written there: a link another user planted at a predictable name would be
    followed by the write, and what is written there would not be trusted when read)."""
    missing, folder = [], directory
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=0o700, exist_ok=True)
    # A folder is judged where it points: a cache folder given as a link (a CI volume) still counts.
    info = os.stat(directory)
    return stat.S_ISDIR(info.st_mode) and owned_by_me(info)


def owned_by_me(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def open_trusted(path: Path) -> BinaryIO:
    """`path` opened for reading if this user wrote it; OSError for one it did not (another user's,
    writable by others, a link, in a folder others may write to)."""
    if not owned_by_me(os.stat(path.parent)):
        raise PermissionError(f"{path.parent} is not private to this user")
    handle = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode) or not owned_by_me(info):
        handle.close()
        raise PermissionError(f"{path} was not written by this user")
    return handle


def read_trusted(path: Path) -> str:
    """The text of a cache file this user wrote (see `open_trusted`)."""
    with open_trusted(path) as handle:
        return handle.read().decode("utf-8")


def remove_untrusted(path: Path) -> None:
    """Remove a file at `path` this user did not write: replacing it would keep its owner and mode, and
    it would never be trusted again."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode) or not owned_by_me(info):
        os.unlink(path)


def write_private(path: Path, text: str) -> None:
    """Write a cache file in a private folder (after `remove_untrusted`)."""
    remove_untrusted(path)
    write_atomic(path, text)
