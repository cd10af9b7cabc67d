"""Writing output files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ci_gate.errors import ReportError


def write_atomic(path: Path | str, data: bytes | str, mode: int = 0o644) -> Path:
    """Write `data` to `path` via a temporary file in the same folder and an atomic rename.

    A failure leaves any previous file untouched and no temporary file behind."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = target.parent if str(target.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise ReportError(f"cannot write {target}: {error.strerror} (does the folder {directory} exist "
                          "and is it writable?)") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ReportError(f"cannot write {target}: {error.strerror}") from None
    return target
