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
import typing
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ci_gate.errors import LimitExceededError, SourceError, quoted
from ci_gate.sources.inflate_worker import InflateWorker, worker_wanted
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


class LayerStream(io.RawIOBase):
    """A readable, verified, decompressed view of one layer blob. Call `finish()` after reading.

    With `worker`, a forked process reads, hashes, inflates and hashes again while the caller parses
    the tar, and the caller reads the inflated bytes from a pipe (`ci_gate.sources.inflate_worker`):
    memory stays bounded by the pipe, and a decompression bomb still meets the byte budget (spent in
    the worker, before a byte is written) before it meets the memory. Without it, everything runs in
    the caller's thread."""

    def __init__(self, blob: LayerBlob, index: int, budget: ByteBudget, verify: bool = True,
                 worker: bool = False) -> None:
        super().__init__()
        self.blob = blob
        self.index = index
        self.budget = budget
        self.verify = verify
        # Both algorithms are known before a byte is read: an unverifiable digest fails up front.
        stored_hash = hasher_for(blob.digest, self.what)
        self._uncompressed_hash: Any = hasher_for(blob.diff_id, self.what) if blob.diff_id else None
        self._raw: IO[bytes] = blob.open()
        self._stored = _StoredReader(self._raw, lambda: self.what, stored_hash)
        self._pending = memoryview(b"")
        self._done = False
        self._delivered = 0
        """Uncompressed bytes handed out or skipped: the stream's position."""
        self._scratch: memoryview | None = None
        self.uncompressed_bytes = 0
        head = self._stored.read()
        self.compression = compression_of(head)
        self._inflater = _Inflater(self._stored, self.compression, head, lambda: self.what)
        # Forked after the first read: the worker goes on from here, and the parent never reads the blob.
        self._worker = (InflateWorker(self._next_chunk, self._worker_summary, lambda: self._stored.count)
                        if worker and self.compression != "none" else None)

    @property
    def what(self) -> str:
        return f"layer {self.index + 1} ({self.blob.digest[:19]})"

    @property
    def stored_bytes(self) -> int:
        if self._worker is not None and not self._done:
            return max(self._stored.count, self._worker.progress)
        return self._stored.count

    def _next_chunk(self) -> bytes | None:
        out = self._inflater.next()
        if out:
            self.budget.spend(len(out), self.what)
            self.uncompressed_bytes += len(out)
            if self._uncompressed_hash is not None:
                self._uncompressed_hash.update(out)
        return out

    def _worker_summary(self) -> dict[str, Any]:
        """In the worker process, at the end of the layer: what the parent needs to verify and count it."""
        return {"stored": self._stored.hash.hexdigest(), "stored_bytes": self._stored.count,
                "uncompressed": self._uncompressed_hash.hexdigest() if self._uncompressed_hash is not None else None,
                "uncompressed_bytes": self.uncompressed_bytes, "budget_used": self.budget.used}

    def _hexdigests(self) -> tuple[str, str | None]:
        """The stored and uncompressed digests of the whole stream (hex), however it was inflated."""
        if self._worker is not None:
            summary = self._worker.summary or {}
            return str(summary.get("stored")), summary.get("uncompressed")
        uncompressed = self._uncompressed_hash.hexdigest() if self._uncompressed_hash is not None else None
        return self._stored.hash.hexdigest(), uncompressed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        """Forward only: the tar reader skips the data of a file nobody reads without copying it
        (`io.BufferedReader` moves its pointer for a skip inside its buffer and calls `seek` beyond)."""
        return True

    def tell(self) -> int:
        return self._delivered

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Skip forward to `offset` (from the start, or from here with SEEK_CUR); the position reached,
        short of it at the end of the layer. A layer is a stream: going back is not possible."""
        if whence == io.SEEK_CUR:
            offset += self._delivered
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a layer stream only seeks forward")
        if offset < self._delivered:
            raise io.UnsupportedOperation("a layer stream only seeks forward")
        left = offset - self._delivered
        while left > 0:
            if self._worker is None:
                # Dropped from the inflated chunk in hand: no copy.
                if not self._pending and not self._fill():
                    break
                step = min(left, len(self._pending))
                self._pending = self._pending[step:]
                self._delivered += step
            else:
                # The worker's pipe must be drained: read into one buffer kept for that.
                if self._scratch is None:
                    self._scratch = memoryview(bytearray(_CHUNK))
                step = self.readinto(self._scratch[:min(left, _CHUNK)])
                if not step:
                    break
            left -= step
        return self._delivered

    def _fill(self) -> bool:
        """The next inflated chunk into `_pending`; False at the end of the layer."""
        while not self._pending:
            if self._done:
                return False
            chunk = self._next_chunk()
            if chunk is None:
                self._done = True
                return False
            self._pending = memoryview(chunk)
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._worker is not None:
            if self._done:
                return 0
            count = self._worker.readinto(buffer)
            self._delivered += count
            if not count:
                self._done = True
                summary = self._worker.summary or {}
                self.uncompressed_bytes = int(summary.get("uncompressed_bytes", 0))
                self._stored.count = int(summary.get("stored_bytes", 0))
                self.budget.used = int(summary.get("budget_used", self.budget.used))
            return count
        if not self._pending and not self._fill():
            return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self._delivered += size
        return size

    def finish(self) -> None:
        """Read what the tar reader left (end blocks, padding) and check both digests."""
        if self._worker is not None:
            scratch = bytearray(_CHUNK)
            while self.readinto(scratch):
                pass
        while not self._done:
            self._pending = memoryview(b"")
            if self._next_chunk() is None:
                self._done = True
        self.close_raw()
        if not self.verify:
            return
        stored_hex, uncompressed_hex = self._hexdigests()
        # Each digest with its own algorithm: a sha512 digest is checked as strictly as a sha256 one.
        algorithm = self.blob.digest.partition(":")[0]
        stored = f"{algorithm}:{stored_hex}"
        if stored != self.blob.digest:
            raise SourceError(f"{self.what}: the blob's content does not match its digest "
                              f"(got {stored[:19]}…); the image is corrupt or was tampered with")
        if self.blob.diff_id and uncompressed_hex is not None:
            uncompressed = f"{self.blob.diff_id.partition(':')[0]}:{uncompressed_hex}"
            if uncompressed != self.blob.diff_id:
                raise SourceError(f"{self.what}: the uncompressed layer does not match the config's diff_id "
                                  f"{self.blob.diff_id[:19]}…; the image is corrupt or was tampered with")

    def close_raw(self) -> None:
        """Close the blob (safe to call more than once)."""
        if self._worker is not None:
            self._worker.stop()
        # Closing a half-read HTTP stream may complain; there is nothing left to do about it.
        with contextlib.suppress(Exception):
            self._raw.close()


def open_layer(blob: LayerBlob, index: int, budget: ByteBudget | None = None,
               limits: Limits | None = None, verify: bool = True,
               worker: bool | None = None) -> tuple[LayerStream, IO[bytes]]:
    """The verified stream and a buffered reader over it (tarfile reads in small pieces). `worker`:
    inflate in a worker process (None: as `inflate_worker.WORKER_ENV` says)."""
    budget = budget or ByteBudget((limits or Limits()).max_image_bytes)
    if worker is None:
        worker = worker_wanted(blob.own_file_handle)
    stream = LayerStream(blob, index, budget, verify=verify, worker=worker)
    return stream, io.BufferedReader(stream, buffer_size=_CHUNK)
