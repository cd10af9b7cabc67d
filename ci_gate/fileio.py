"""Writing output files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from ci_gate.errors import ReportError


def write_atomic(path: Path | str, data: bytes | str, mode: int = 0o644) -> Path:
    """Write `data` to `path` via a temporary file in the same folder and an atomic rename.

    A failure leaves any previous file untouched and no temporary file behind."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_binary_writer(path, mode) as out:
        out.write(payload)
    return Path(path)


@contextlib.contextmanager
def atomic_text_writer(path: Path | str, mode: int = 0o644) -> Iterator[TextIO]:
    """A text handle whose content replaces `path` only when the block ends without an error."""
    with atomic_binary_writer(path, mode) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # the binary writer closes the file itself


@contextlib.contextmanager
def atomic_binary_writer(path: Path | str, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` only when the block ends without an error."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise ReportError(f"cannot write {target}: {error.strerror} (does the folder {directory} exist "
                          "and is it writable?)") from None
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ReportError(f"cannot write {target}: {error.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
