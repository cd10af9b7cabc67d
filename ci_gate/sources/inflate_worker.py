"""Inflating a layer in a second process, beside the tar parser: the analysis's use of the second core.

Reading a compressed layer costs four C calls per block (read, hash, inflate, hash again), all of
which release the GIL; parsing the tar and cataloging what is in it is pure Python, which never does.
A helper *thread* for the first part was measured slower than none: it needs the GIL back after
every one of its C calls and waits for the parser to give it up (up to the 5 ms switch interval
each time, or a forced switch every 0.5 ms with a shorter interval), so beside a busy parser it
inflated at a third to a half of its speed alone, and the parser paid for the switches.

A forked process shares no GIL. It carries on the layer stream it was forked from (the blob already
opened, its first bytes read and hashed), writes the inflated bytes into a pipe that the parser
reads as its layer stream, and at the end writes one status line on a second pipe: the stored and
uncompressed digests and byte counts, or the error that stopped it (its class and message), which
the parser raises where the serial path would have, once the bytes before it are read. The pipe
bounds the memory in flight; the byte budget is spent in the worker before a byte is written.

The worker only reads blobs that `LayerBlob.own_file_handle` says it may (a host file opened for
this stream alone: a registry's HTTP connection stays in the parent). It never runs Python's
garbage collector or exit handlers (a collection could finalize the parent's temporary files), dies
with the default action on SIGINT/SIGTERM/SIGPIPE, and is killed and reaped by `stop()`, which the
walk calls on every way out; should the parent die first, the worker's next write fails and it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import mmap
import os
import signal
import struct
from collections.abc import Callable
from typing import Any

from ci_gate.errors import CiGateError, LimitExceededError, SourceError, UsageError

WORKER_ENV = "CI_GATE_INFLATE_WORKER"
"""`1`: inflate each local compressed layer in a worker; `0`, unset or `auto`: in the analysing process.
Measured on an idle 2-core machine (bench/bench_analyze.py), one process is now as fast or faster on
both bench images: the pipe's copies cost the worker about as much CPU as the inflation it moves."""
_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")
_PIPE_BYTES = 1024 * 1024
"""Pipe capacity asked for (Linux's default maximum for an unprivileged process): fewer, larger reads."""
_F_SETPIPE_SZ = 1031
_PROGRESS = struct.Struct("=q")
_ERRORS: dict[str, type[CiGateError]] = {"SourceError": SourceError, "LimitExceededError": LimitExceededError}
"""The errors the worker can meet while reading a layer, raised again by name in the parent."""


def worker_wanted(own_file_handle: bool) -> bool:
    """Whether to inflate a layer in a worker process (see `WORKER_ENV`)."""
    setting = os.environ.get(WORKER_ENV, "auto").strip().lower()
    if setting not in _OFF + _ON + ("auto", ""):
        # A typo must not silently pick a path: say which values there are (exit 2).
        raise UsageError(f"{WORKER_ENV}={setting[:20]!r} is not a setting; use 0 or auto (one process, the "
                         "default) or 1 (a worker for every local compressed layer)")
    return setting in _ON and own_file_handle and hasattr(os, "fork")


class InflateWorker:
    """A forked process that calls `produce` until it returns None and streams the results to us.

    `produce` is the layer stream's own "next inflated block" (it reads, hashes, inflates, spends the
    byte budget and hashes again); `summary` is called in the worker at the end and gives what the
    parent needs back (digests, counts), as JSON."""

    def __init__(self, produce: Callable[[], bytes | None], summary: Callable[[], dict[str, Any]],
                 progress: Callable[[], int] = lambda: 0) -> None:
        # One shared word: how far the worker has read (`progress()` after each block), for a progress bar.
        self._progress = mmap.mmap(-1, _PROGRESS.size)
        data_read, data_write = os.pipe()
        status_read, status_write = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(data_write, _F_SETPIPE_SZ, _PIPE_BYTES)
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            os.close(data_read)
            os.close(status_read)
            _run_worker(produce, summary, lambda: _PROGRESS.pack_into(self._progress, 0, progress()),
                        data_write, status_write)
        os.close(data_write)
        os.close(status_write)
        self.pid: int | None = pid
        self._data = os.fdopen(data_read, "rb", buffering=0)
        self._status_fd: int | None = status_read
        self.summary: dict[str, Any] | None = None
        """What `summary` gave in the worker, once the stream has ended without an error."""

    @property
    def progress(self) -> int:
        """The last `progress()` the worker reported."""
        return int(_PROGRESS.unpack_from(self._progress, 0)[0]) if not self._progress.closed else 0

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Inflated bytes into `buffer`; 0 at the end of the layer (after which `summary` is set), or
        the worker's error raised here, after every byte it wrote before it."""
        count = self._data.readinto(buffer)
        if count:
            return count
        if self.summary is None:
            self._finish()
        return 0

    def _finish(self) -> None:
        status = self._read_status()
        self.stop()
        if status.get("error") is not None:
            kind = _ERRORS.get(str(status.get("kind")))
            if kind is None:
                raise RuntimeError(f"the layer worker failed: {status.get('kind')}")
            raise kind(str(status["error"]))
        self.summary = status

    def _read_status(self) -> dict[str, Any]:
        assert self._status_fd is not None
        parts = []
        while True:
            part = os.read(self._status_fd, 65536)
            if not part:
                break
            parts.append(part)
        try:
            status = json.loads(b"".join(parts))
        except ValueError:
            status = None
        if not isinstance(status, dict):
            # Killed (out of memory, a signal) before it could say why: no digest was checked.
            raise SourceError("the layer worker process ended without a result (killed?); the layer was not "
                              f"verified. Rerun, or set {WORKER_ENV}=0 to inflate in one process")
        return status

    def stop(self) -> None:
        """End the worker if it still runs, reap it, and close the pipes (safe to call more than once)."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None
        self._data.close()
        self._progress.close()
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None


def _run_worker(produce: Callable[[], bytes | None], summary: Callable[[], dict[str, Any]],
                report_progress: Callable[[], None], data_fd: int, status_fd: int) -> None:
    """The worker's whole life: stream, report, and leave without running any of the parent's clean-ups."""
    try:
        gc.disable()
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        status: dict[str, Any]
        try:
            while (block := produce()) is not None:
                report_progress()
                view = memoryview(block)
                while view:
                    view = view[os.write(data_fd, view):]
            status = summary()
        except CiGateError as error:
            status = {"kind": type(error).__name__, "error": str(error)}
        except BaseException as error:  # by class only: its text may quote image content
            status = {"kind": type(error).__name__, "error": ""}
        os.close(data_fd)
        os.write(status_fd, json.dumps(status).encode())
    finally:
        os._exit(0)
