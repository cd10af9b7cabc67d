"""Random access to the members of an outer image archive (docker save, oci-archive), never extracting.

The archive's member names are only used as dictionary keys: nothing is ever written to or read from
the host by a member's name, so `../../etc/passwd` or `/etc/shadow` in an archive is harmless. A
member is read by seeking to its data offset in the archive file, through a private file handle per
stream. Symbolic and hard links between members (old `docker save` links duplicate layers) are
followed inside the archive only, with a bound on the chain length.

Also here: the blob types backed by a byte range of a host file, the spooling of a non-seekable or
compressed archive into a private temporary file, and a RawImage that cleans up after itself.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from ci_gate.errors import LimitExceededError, SourceError
from ci_gate.sources.interface import LayerBlob, RawImage

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def is_compressed(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC)


class FileRange(io.RawIOBase):
    """A read-only, seekable view of `length` bytes at `offset` in a host file, on its own handle."""

    def __init__(self, path: str, offset: int, length: int):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._length = length
        self._position = 0
        self._file.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        remaining = self._length - self._position
        if remaining <= 0:
            return 0
        view = memoryview(buffer)[:remaining]
        count = self._file.readinto(view)
        if not count:
            return 0
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, min(base + offset, self._length))
        self._file.seek(self._offset + self._position)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def open_range(path: str, offset: int, length: int) -> IO[bytes]:
    return io.BufferedReader(FileRange(path, offset, length), buffer_size=1024 * 1024)


class FileBlob(LayerBlob):
    """A layer whose stored bytes are a byte range of a host file (an OCI blob file or a tar member)."""

    def __init__(self, path: str, offset: int, length: int, digest: str, media_type: str,
                 diff_id: str | None, where: str):
        self.path = path
        self.offset = offset
        self.length = length
        self.digest = digest
        self.size = length
        self.media_type = media_type
        self.diff_id = diff_id
        self._where = where
        self._uncompressed: bool | None = None

    def open(self) -> IO[bytes]:
        try:
            return open_range(self.path, self.offset, self.length)
        except OSError as error:
            raise SourceError(f"{self._where}: cannot read layer {self.digest[:19]}… ({error.strerror}); "
                              "check the file is still there and readable") from None

    def head(self, count: int = 4) -> bytes:
        with self.open() as stream:
            return stream.read(count)

    def seekable_path(self) -> tuple[str, int] | None:
        if self._uncompressed is None:
            self._uncompressed = not is_compressed(self.head())
        return (self.path, self.offset) if self._uncompressed else None

    def __repr__(self) -> str:
        return f"<FileBlob {self.digest} {self.media_type} {self.path}@{self.offset}+{self.length}>"


@dataclass
class ClosingRawImage(RawImage):
    """A RawImage that runs clean-up actions (delete a spool file, close a session) on close()."""

    cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)
    """Run once, last added first."""

    def close(self) -> None:
        while self.cleanups:
            action = self.cleanups.pop()
            with contextlib.suppress(OSError):  # best effort: a temp file already gone is fine
                action()

    def __enter__(self) -> ClosingRawImage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def spool_to_temp(stream: IO[bytes], limit: int, what: str) -> str:
    """Copy a stream into a private (0600) temporary file in $TMPDIR; return its path to delete later."""
    descriptor, path = tempfile.mkstemp(prefix="ci-gate-", suffix=".tar")
    written = 0
    try:
        with os.fdopen(descriptor, "wb") as output:
            while chunk := stream.read(1024 * 1024):
                written += len(chunk)
                if written > limit:
                    raise LimitExceededError(f"{what} is larger than the image size limit ({limit} bytes); "
                                             "raise CI_GATE_MAX_IMAGE_BYTES if the image is genuine")
                output.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


def decompress_to_temp(path: str, head: bytes, limit: int, where: str) -> str:
    """A gzip or zstd compressed archive (`docker save | gzip`) decompressed into a private temp file."""
    try:
        with open(path, "rb") as raw:
            if head.startswith(GZIP_MAGIC):
                with gzip.GzipFile(fileobj=raw) as stream:
                    return spool_to_temp(stream, limit, where)  # type: ignore[arg-type]
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw) as zstream:
                return spool_to_temp(zstream, limit, where)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise SourceError(f"{where}: the compressed archive is truncated or corrupt ({error}); re-export the "
                          "image") from None
    except Exception as error:
        if type(error).__name__ == "ZstdError":
            raise SourceError(f"{where}: the zstd archive is corrupt ({error}); re-export the "
                              "image") from None
        raise


def normalise_member(name: str) -> str:
    """The archive-internal path of a member name: no leading './' or '/', no '.' or '..' segments."""
    cleaned = posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")
    return "" if cleaned == "." else cleaned


class TarArchive:
    """An index of a tar file's members for random access; see the module docstring for safety."""

    MAX_LINK_HOPS = 16

    def __init__(self, path: str, where: str):
        self.path = path
        self.where = where
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            self.file_size = os.stat(path).st_size
            with tarfile.open(path, mode="r:") as archive:
                for member in archive:
                    self.members[normalise_member(member.name)] = member
        except (tarfile.TarError, EOFError) as error:
            raise SourceError(f"{where}: not a readable tar archive ({error}); give an image archive made by "
                              "docker save, skopeo or buildah") from None
        except OSError as error:
            raise SourceError(f"{where}: cannot read the archive ({error.strerror or error})") from None
        if not self.members:
            raise SourceError(f"{where}: the tar archive has no members; it is not an image archive")

    def names(self) -> list[str]:
        return list(self.members)

    def find(self, name: str) -> tarfile.TarInfo | None:
        """The regular-file member at `name`, following links between members; None if absent."""
        current = normalise_member(name)
        for _ in range(self.MAX_LINK_HOPS):
            member = self.members.get(current)
            if member is None:
                return None
            if member.isreg():
                if member.offset_data + member.size > self.file_size:
                    raise SourceError(f"{self.where}: member {current!r} runs past the end of the archive; "
                                      "the archive is truncated, re-export it")
                if member.issparse():
                    raise SourceError(f"{self.where}: member {current!r} is a sparse file, which image "
                                      "archives never contain; the archive is corrupt")
                return member
            if member.issym():
                current = normalise_member(posixpath.join(posixpath.dirname(current), member.linkname))
            elif member.islnk():
                current = normalise_member(member.linkname)
            else:
                return None
        raise SourceError(f"{self.where}: member {name!r} is a chain of more than {self.MAX_LINK_HOPS} "
                          "links; the archive is corrupt or hostile")

    def require(self, name: str, what: str) -> tarfile.TarInfo:
        member = self.find(name)
        if member is None:
            raise SourceError(f"{self.where}: {what} {name!r} is missing from the archive; the archive is "
                              "incomplete or corrupt, re-export it")
        return member

    def read(self, member: tarfile.TarInfo, limit: int) -> bytes:
        """At most limit + 1 bytes of a member (so the caller can tell it is too large)."""
        with self.open(member) as stream:
            return stream.read(limit + 1)

    def open(self, member: tarfile.TarInfo) -> IO[bytes]:
        try:
            return open_range(self.path, member.offset_data, member.size)
        except OSError as error:
            raise SourceError(f"{self.where}: cannot read the archive ({error.strerror or error})") from None

    def blob(self, member: tarfile.TarInfo, digest: str, media_type: str, diff_id: str | None) -> FileBlob:
        return FileBlob(self.path, member.offset_data, member.size, digest, media_type, diff_id, self.where)


def open_archive_file(path: str, where: str, limit: int) -> tuple[str, list[Callable[[], None]]]:
    """The path of a plain tar to index for `path`, plus clean-ups; compressed archives are spooled first.

    Raises a SourceError with a fix for a missing, empty or unreadable file.
    """
    if not os.path.exists(path):
        raise SourceError(f"{where}: no such file; check the path")
    if os.path.isdir(path):
        raise SourceError(f"{where}: is a directory, not an archive; use oci-dir: or dir: for directories")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise SourceError(f"{where}: cannot read the file ({error.strerror or error})") from None
    if not head:
        raise SourceError(f"{where}: the file is empty; the image export failed, re-run docker save or "
                          "skopeo copy")
    if is_compressed(head):
        spooled = decompress_to_temp(path, head, limit, where)
        return spooled, [lambda: os.unlink(spooled)]
    return path, []
