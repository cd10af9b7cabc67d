"""Special files for the output tests: a character device that behaves like /dev/null."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

NULL_DEVICE = os.makedev(1, 3)
"""Linux's memory device 1:3, /dev/null's numbers: writes succeed and vanish."""


def make_null_device(path: Path) -> Path:
    """A /dev/null twin at `path` (mknod needs root; the suite runs as root under .ci/run)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, NULL_DEVICE)
    except PermissionError:
        pytest.skip("making a character device needs root: run the suite as root (bash .ci/run does)")
    return path
