"""A cache for slow test artefacts (Debian rootfs, app layer, images), safe across sessions.

Entries live in `$CI_GATE_TEST_CACHE` (default ~/.cache/ci-gate-tests). Each entry is built
into a temporary name next to its final name and renamed into place atomically, under an
exclusive `fcntl` lock, so two pytest sessions (or xdist workers) never build it twice nor see
a half-written entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["cache_dir", "cached", "file_lock", "key_of"]


def cache_dir() -> Path:
    """The cache root, created on demand."""
    root = Path(os.environ.get("CI_GATE_TEST_CACHE") or Path.home() / ".cache" / "ci-gate-tests")
    root.mkdir(parents=True, exist_ok=True)
    return root


def key_of(*parts: object) -> str:
    """A short stable hash of the inputs an entry is built from."""
    return hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def cached(name: str, build: Callable[[Path], None], *, stale_prefix: str | None = None,
           root: Path | None = None) -> Path:
    """Return the cache entry `name`, building it first if absent.

    `build(temporary)` must create `temporary` (a file or a directory); it is then renamed to
    the final name. With `stale_prefix`, older entries starting with it (earlier keys of the same
    artefact) are removed after a build, so the cache does not grow without bound. `root`
    defaults to `cache_dir()`.
    """
    root = root or cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if final.exists():
        return final
    with file_lock(root / f".{name}.lock"):
        if final.exists():  # another session built it while we waited
            return final
        temporary = root / f".{name}.building-{os.getpid()}"
        _remove(temporary)
        try:
            build(temporary)
            if not temporary.exists():
                raise RuntimeError(f"building cache entry {name} produced nothing at {temporary}")
            os.rename(temporary, final)
        finally:
            _remove(temporary)
        if stale_prefix:
            for old in root.glob(f"{stale_prefix}*"):
                if old != final and not old.name.startswith("."):
                    _remove(old)
    return final
