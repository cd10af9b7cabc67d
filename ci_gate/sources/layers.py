"""Streaming a layer blob: detect its compression, decompress it, verify it, and enforce the limits.

Every byte read from a source passes through `LayerStream`, which hashes the stored bytes (checked
against the manifest digest) and the uncompressed bytes (checked against the config's diff_id) and
counts the uncompressed bytes against `Limits.max_image_bytes`, so a decompression bomb stops with a
clear error instead of filling memory or disk. Nothing is ever written to the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import sys
import threading
import typing
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ci_gate.errors import LimitExceededError, SourceError, quoted
from ci_gate.sources.interface import LayerBlob, Limits

_inflate: Any
try:
    # ISA-L inflates gzip about three times faster than zlib; same format, same results.
    from isal import isal_zlib

    _inflate = isal_zlib
except ImportError:  # pragma: no cover - isal has wheels for every platform we support
    _inflate = zlib

_CHUNK = 1024 * 1024
_OUT_CHUNK = 1024 * 1024
_AHEAD_BLOCK = 1024 * 1024
"""Inflated bytes per block handed over by the read-ahead thread (and stored bytes per read). Larger
blocks mean fewer GIL hand-overs but more memory in flight; with the switch interval lowered (see
`_SWITCH_INTERVAL`) 1 MiB costs no more time than 4 MiB, and 20-30 MB less peak RSS on the 1 GB image."""
_AHEAD_DEPTH = 2
"""Blocks queued ahead of the tar parser: memory in flight stays under (depth + 2) blocks."""
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass
class ByteBudget:
    """Uncompressed bytes left for the whole image (shared by every layer of one walk)."""

    limit: int
    used: int = 0

    def spend(self, amount: int, what: str) -> None:
        self.used += amount
        if self.used > self.limit:
            raise LimitExceededError(
                f"{what} expands past the limit of {self.limit:,} uncompressed bytes for the whole image "
                "(a decompression bomb?); if the image is genuinely that large, raise it with "
                "CI_GATE_MAX_IMAGE_BYTES"
            )


def compression_of(head: bytes) -> str:
    """gzip, zstd or none, from the first bytes of a blob (media types lie; magic bytes do not)."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


_HASHES: dict[str, Callable[[], Any]] = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
"""The digest algorithms of the OCI image spec that ci-gate verifies; any other is refused."""


def hasher_for(digest: str, what: str) -> Any:
    """A fresh hashlib object for the algorithm `digest` names; SourceError for any other algorithm.

    A digest whose algorithm we cannot compute must never pass as verified: an image that names its
    layers `md5:` or `sha384:` could otherwise carry any content under any name."""
    algorithm = digest.partition(":")[0]
    factory = _HASHES.get(algorithm)
    if factory is None:
        raise SourceError(f"{what}: digest algorithm {quoted(algorithm, 20)} is not supported (only sha256 and "
                          "sha512 can be verified); the image is corrupt or hostile")
    return factory()


class _StoredReader:
    """Reads the stored blob in chunks, hashing and counting every byte that passes."""

    def __init__(self, raw: IO[bytes], what: Callable[[], str], hasher: Any = None, chunk: int = _CHUNK) -> None:
        self.raw = raw
        self.chunk = chunk
        self.what = what
        self.hash = hasher if hasher is not None else hashlib.sha256()
        self.count = 0

    def read(self, size: int = 0) -> bytes:
        try:
            data = self.raw.read(min(size, self.chunk) if size > 0 else self.chunk) or b""
        except OSError as error:
            raise SourceError(f"could not read {self.what()}: {error}") from None
        except Exception as error:  # requests/urllib3 raise their own types while streaming
            raise SourceError(f"could not read {self.what()}: {type(error).__name__}: {error}") from None
        if data:
            self.hash.update(data)
            self.count += len(data)
        return data


class _Inflater:
    """Pulls inflated bytes from a stored blob, at most `_OUT_CHUNK` at a time.

    The bound matters: one megabyte of gzip can inflate to a gigabyte, and a decompression bomb
    must meet the byte budget before it meets the memory."""

    def __init__(self, stored: _StoredReader, kind: str, head: bytes, what: Callable[[], str],
                 out_chunk: int = _OUT_CHUNK) -> None:
        self.stored = stored
        self.out_chunk = out_chunk
        self.kind = kind
        self.what = what
        self._input = head
        self._raw_done = False
        self._gzip: Any = _inflate.decompressobj(16 + zlib.MAX_WBITS) if kind == "gzip" else None
        self._zstd: Any = None
        if kind == "zstd":
            import zstandard

            self._zstd = zstandard.ZstdDecompressor().stream_reader(
                typing.cast(IO[bytes], _Prefixed(head, stored)), read_size=_CHUNK, read_across_frames=True)

    def next(self) -> bytes | None:
        """The next inflated bytes, or None at the end of the blob."""
        try:
            if self.kind == "none":
                data, self._input = (self._input or self.stored.read()), b""
                return data or None
            if self._zstd is not None:
                return self._zstd.read(self.out_chunk) or None
            return self._next_gzip()
        except SourceError:
            raise
        except Exception as error:  # zlib.error, isal error, zstandard.ZstdError
            raise SourceError(f"{self.what()} is not valid {self.kind} data ({error}); "
                              "the blob is corrupt: re-export or re-pull the image") from None

    def _next_gzip(self) -> bytes | None:
        while True:
            if not self._input:
                if self._raw_done:
                    if not self._gzip.eof:
                        raise SourceError(f"{self.what()} is truncated: its gzip stream ends early; "
                                          "re-export or re-pull the image")
                    return None
                self._input = self.stored.read()
                if not self._input:
                    self._raw_done = True
                continue
            if self._gzip.eof:
                if not self._input.startswith(_GZIP_MAGIC[:len(self._input)]):
                    # Trailing bytes after the last member (padding): ignored, as `gzip -dc` does;
                    # the blob digest still covers them.
                    self._input = b""
                    while self.stored.read():
                        pass
                    self._raw_done = True
                    continue
                self._gzip = _inflate.decompressobj(16 + zlib.MAX_WBITS)
            out = self._gzip.decompress(self._input, self.out_chunk)
            self._input = self._gzip.unconsumed_tail or (self._gzip.unused_data if self._gzip.eof else b"")
            if out:
                return bytes(out)


class _Prefixed:
    """A reader that first gives back bytes already read (the magic-number probe), then the rest."""

    def __init__(self, head: bytes, rest: _StoredReader) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = _CHUNK) -> bytes:
        if self.head:
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)


_SWITCH_INTERVAL = 0.0005
"""The GIL switch interval while a helper runs. The helper needs the GIL back after every C call
(read, hash, inflate, hash), and with Python's default of 5 ms it waits up to that long each time
while the parser holds it: about 25 ms per block, longer than inflating the block takes."""
_switch_lock = threading.Lock()
_helpers_running = 0
_saved_interval = 0.0


def _helper_started() -> None:
    global _helpers_running, _saved_interval
    with _switch_lock:
        if _helpers_running == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, _SWITCH_INTERVAL))
        _helpers_running += 1


def _helper_ended() -> None:
    global _helpers_running
    with _switch_lock:
        _helpers_running -= 1
        if _helpers_running == 0:
            sys.setswitchinterval(_saved_interval)


class _ReadAhead:
    """Runs `produce` in a helper thread until it returns None, handing its blocks over in order.

    An exception in the helper reaches the reader at the block where it happened, so errors (a
    corrupt blob, a spent byte budget) surface exactly as they would without the thread."""

    def __init__(self, produce: Callable[[], bytes | None]) -> None:
        self._produce = produce
        self._running = True
        _helper_started()
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_AHEAD_DEPTH)
        self._stopping = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="ci-gate-layer-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                block = self._produce()
                if not self._put(block) or block is None:
                    return
        except BaseException as error:  # handed to the reader, who raises it
            self._put(error)

    def _put(self, item: bytes | BaseException | None) -> bool:
        """Queue `item` unless the reader has stopped listening (then the helper just ends)."""
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def take(self) -> bytes | None:
        if self._ended:
            return None
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        if item is None:
            self._ended = True
        return item

    def stop(self) -> None:
        """Tell the helper to end and wait for it (it holds the blob open until then)."""
        self._stopping.set()
        self._thread.join()
        if self._running:
            self._running = False
            _helper_ended()


class LayerStream(io.RawIOBase):
    """A readable, verified, decompressed view of one layer blob. Call `finish()` after reading.

    With `read_ahead`, a helper thread reads, hashes, inflates and hashes again while the caller
    parses the tar (all four release the GIL in C), handing over blocks of up to `_AHEAD_BLOCK`
    through a queue of `_AHEAD_DEPTH`: memory stays bounded and a decompression bomb still meets
    the byte budget (spent in the helper, before a block is queued) before it meets the memory.
    Without it, everything runs in the caller's thread."""

    def __init__(self, blob: LayerBlob, index: int, budget: ByteBudget, verify: bool = True,
                 read_ahead: bool = False) -> None:
        super().__init__()
        self.blob = blob
        self.index = index
        self.budget = budget
        self.verify = verify
        # Both algorithms are known before a byte is read: an unverifiable digest fails up front.
        stored_hash = hasher_for(blob.digest, self.what)
        self._uncompressed_hash: Any = hasher_for(blob.diff_id, self.what) if blob.diff_id else None
        self._raw: IO[bytes] = blob.open()
        self._stored = _StoredReader(self._raw, lambda: self.what, stored_hash,
                                     _AHEAD_BLOCK if read_ahead else _CHUNK)
        self._pending = memoryview(b"")
        self._done = False
        self.uncompressed_bytes = 0
        head = self._stored.read()
        self.compression = compression_of(head)
        self._inflater = _Inflater(self._stored, self.compression, head, lambda: self.what,
                                   _AHEAD_BLOCK if read_ahead else _OUT_CHUNK)
        self._ahead: _ReadAhead | None = _ReadAhead(self._next_chunk) if read_ahead else None

    @property
    def what(self) -> str:
        return f"layer {self.index + 1} ({self.blob.digest[:19]})"

    @property
    def stored_bytes(self) -> int:
        return self._stored.count

    def _take_chunk(self) -> bytes | None:
        """The next inflated block: from the helper thread when reading ahead, else inflated here."""
        return self._ahead.take() if self._ahead is not None else self._next_chunk()

    def _next_chunk(self) -> bytes | None:
        out = self._inflater.next()
        if out:
            self.budget.spend(len(out), self.what)
            self.uncompressed_bytes += len(out)
            if self._uncompressed_hash is not None:
                self._uncompressed_hash.update(out)
        return out


    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if self._done:
                return 0
            chunk = self._take_chunk()
            if chunk is None:
                self._done = True
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def finish(self) -> None:
        """Read what the tar reader left (end blocks, padding) and check both digests."""
        while not self._done:
            self._pending = memoryview(b"")
            if self._take_chunk() is None:
                self._done = True
        self.close_raw()
        if not self.verify:
            return
        # Each digest with its own algorithm: a sha512 digest is checked as strictly as a sha256 one.
        algorithm = self.blob.digest.partition(":")[0]
        stored = f"{algorithm}:{self._stored.hash.hexdigest()}"
        if stored != self.blob.digest:
            raise SourceError(f"{self.what}: the blob's content does not match its digest "
                              f"(got {stored[:19]}…); the image is corrupt or was tampered with")
        if self.blob.diff_id and self._uncompressed_hash is not None:
            uncompressed = f"{self.blob.diff_id.partition(':')[0]}:{self._uncompressed_hash.hexdigest()}"
            if uncompressed != self.blob.diff_id:
                raise SourceError(f"{self.what}: the uncompressed layer does not match the config's diff_id "
                                  f"{self.blob.diff_id[:19]}…; the image is corrupt or was tampered with")

    def close_raw(self) -> None:
        """Close the blob (safe to call more than once)."""
        if self._ahead is not None:
            self._ahead.stop()  # before the blob closes under the helper's feet
        # Closing a half-read HTTP stream may complain; there is nothing left to do about it.
        with contextlib.suppress(Exception):
            self._raw.close()


READ_AHEAD = os.environ.get("CI_GATE_READ_AHEAD", "") == "1"
"""Whether `open_layer` inflates in a helper thread by default: off unless CI_GATE_READ_AHEAD=1.

Off because it has not been measured faster yet (bench/bench_analyze.py prints both paths side by
side). On a shared two-core machine with a load of 6-9 the helper got no core of its own: 0.35 s of
CPU took it 1.3-1.8 s of wall on the Debian image, and the parser waited for its blocks."""


def open_layer(blob: LayerBlob, index: int, budget: ByteBudget | None = None,
               limits: Limits | None = None, verify: bool = True,
               read_ahead: bool | None = None) -> tuple[LayerStream, IO[bytes]]:
    """The verified stream and a buffered reader over it (tarfile reads in small pieces)."""
    budget = budget or ByteBudget((limits or Limits()).max_image_bytes)
    stream = LayerStream(blob, index, budget, verify=verify,
                         read_ahead=READ_AHEAD if read_ahead is None else read_ahead)
    return stream, io.BufferedReader(stream, buffer_size=_CHUNK)
