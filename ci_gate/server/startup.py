"""Start-up checks of `ci-gate serve`: the data dir holds analyses and submitted Dockerfiles, so it
must be private to the server's user."""

from __future__ import annotations

import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def permission_warnings(data_dir: Path, database: Path) -> list[str]:
    """One line per path that group or others may read, write or enter, saying how to fix it."""
    warnings = []
    for path, wanted in ((data_dir, PRIVATE_DIR_MODE), (database, PRIVATE_FILE_MODE)):
        for candidate in (path, *((Path(f"{path}-wal"), Path(f"{path}-shm")) if path == database else ())):
            try:
                mode = stat.S_IMODE(candidate.stat().st_mode)
            except OSError:
                continue
            if mode & 0o077:
                warnings.append(f"{candidate} is mode {mode:04o}, readable by other users of this machine "
                                f"(it holds analyses and submitted Dockerfiles); run chmod {wanted:o} {candidate}")
    return warnings
