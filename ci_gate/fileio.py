"""The one output writer: every file ci-gate writes (reports, SBOMs, analyses, CI runner files).

What happens depends on what the path names, so that a path given by a user is never damaged:

- `-`: standard output.
- a regular file, or nothing yet: a temporary file in the same folder, renamed over the path when
  the content is complete. A reader never sees half a file, a failed run leaves the old file (and
  no temporary) behind, and a replaced file keeps its permission bits and owner.
- a character device, FIFO or socket (`/dev/null`, `/dev/stdout`, a pipe a job reads from):
  written through. Replacing one by a rename would turn `/dev/null` into a regular file holding
  the report, which breaks every other program on the machine.
- a symbolic link: followed; its target is written by the rules above (atomically when the target
  is a regular file or missing) and the link itself is kept.
- a directory: an error.

Missing parent folders of an output are created. Every failure is a `ReportError` with one line.
`append_output` appends (GitHub's `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`, `CI_GATE_OUTPUT`)
with the same rules for what the path names.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from ci_gate.errors import ReportError

STDOUT = "-"
"""The output path that means standard output."""

DEFAULT_MODE = 0o644


def write_output(path: Path | str, data: bytes | str, mode: int = DEFAULT_MODE) -> Path:
    """Write `data` to the output `path` (see the module docstring for what each kind of path gets)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with binary_output(path, mode) as out:
        out.write(payload)
    return Path(path)


def append_output(path: Path | str, data: bytes | str) -> None:
    """Append `data` to `path`: a file is created if missing; a link is followed; a device written through."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if str(path) == STDOUT:
        _write_stdout(payload)
        return
    target = Path(path)
    kind = _output_kind(target)
    if kind == "socket":
        with _socket_writer(target) as out:
            out.write(payload)
        return
    if kind == "missing":
        _make_parents(Path(os.path.realpath(target)), target)
    try:
        with open(target, "ab") as out:
            out.write(payload)
    except OSError as error:
        raise ReportError(f"cannot write {target}: {error.strerror or error}") from None


@contextlib.contextmanager
def text_output(path: Path | str, mode: int = DEFAULT_MODE) -> Iterator[TextIO]:
    """A UTF-8 text handle on the output `path`; a regular file is replaced only when the block succeeds."""
    with binary_output(path, mode) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        try:
            yield text
            text.flush()
        finally:
            text.detach()  # the binary handle is closed (or, for stdout, kept open) by binary_output


@contextlib.contextmanager
def binary_output(path: Path | str, mode: int = DEFAULT_MODE) -> Iterator[BinaryIO]:
    """A binary handle on the output `path`; a regular file is replaced only when the block succeeds."""
    if str(path) == STDOUT:
        sys.stdout.flush()
        stdout_bytes = getattr(sys.stdout, "buffer", None)
        if stdout_bytes is not None:  # streamed: a large analysis never exists as one string
            yield stdout_bytes
            stdout_bytes.flush()
        else:
            collected = io.BytesIO()
            yield collected
            _write_stdout(collected.getvalue())
        return
    target = Path(path)
    kind = _output_kind(target)
    if kind == "socket":
        with _socket_writer(target) as out:
            yield out
        return
    if kind == "special":
        # A device or FIFO: opened for writing as it is (no O_CREAT surprise, no truncation of a file).
        try:
            out = open(target, "wb")  # noqa: SIM115 (closed below, errors mapped to one line)
        except OSError as error:
            raise ReportError(f"cannot write {target}: {error.strerror or error}") from None
        with out:
            yield out
        return
    # A regular file, nothing yet, or a link to either: replace the link's final target, keep the link.
    real = Path(os.path.realpath(target))
    with _atomic_writer(real, target, mode) as out:
        yield out


def _output_kind(path: Path) -> str:
    """What the path names once links are followed: missing, file, socket or special (a directory is refused)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        raise ReportError(f"cannot write {path}: a parent of it is not a folder") from None
    except OSError as error:
        raise ReportError(f"cannot write {path}: {error.strerror or error}") from None
    if stat.S_ISREG(status.st_mode):
        return "file"
    if stat.S_ISDIR(status.st_mode):
        raise ReportError(f"cannot write {path}: it is a directory; give a file path")
    if stat.S_ISSOCK(status.st_mode):
        return "socket"
    return "special"


def _make_parents(real: Path, given: Path) -> Path:
    directory = real.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"cannot write {given}: cannot create the folder {directory} "
                          f"({error.strerror or error}); choose a writable path") from None
    return directory


@contextlib.contextmanager
def _atomic_writer(real: Path, given: Path, mode: int) -> Iterator[BinaryIO]:
    directory = _make_parents(real, given)
    previous: os.stat_result | None
    try:
        previous = os.stat(real)
    except OSError:
        previous = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise ReportError(f"cannot write {given}: {error.strerror or error} (is the folder {directory} "
                          "writable?)") from None
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
        os.chmod(temporary, stat.S_IMODE(previous.st_mode) if previous else mode)
        if previous is not None and hasattr(os, "chown"):
            with contextlib.suppress(OSError):  # keep a file's owner when root replaces it
                os.chown(temporary, previous.st_uid, previous.st_gid)
        os.replace(temporary, real)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ReportError(f"cannot write {given}: {error.strerror or error}") from None
    except BaseException:
        # An error in the caller, Ctrl-C or SIGTERM: the old file stays and no temporary is left.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _socket_writer(path: Path) -> Iterator[BinaryIO]:
    """A Unix stream socket (a log collector listening on a path): connect and send."""
    import socket  # here: every command writes through this module, few of them to a socket (~3 ms)

    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError as error:
        connection.close()
        raise ReportError(f"cannot write {path}: it is a socket and connecting failed "
                          f"({error.strerror or error})") from None
    try:
        with connection.makefile("wb") as out:
            yield out
    finally:
        connection.close()


def _write_stdout(payload: bytes) -> None:
    """Standard output; a stand-in without a byte buffer (a test harness's) gets the decoded text."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(payload.decode("utf-8"))
        sys.stdout.flush()
        return
    buffer.write(payload)
    buffer.flush()


# The names the analyzer and the cache used before there was one writer for every output.
write_atomic = write_output
atomic_text_writer = text_output
atomic_binary_writer = binary_output
