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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from ci_gate.errors import LimitExceededError, SourceError, quoted
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

    own_file_handle = True

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


SPOOL_DIRECTORY_FALLBACK = "/proc/self/fd"
"""Where an open descriptor can be reopened by name (Linux): how an unlinked spool file stays readable."""


def _anonymous_file() -> tuple[int, str | None]:
    """A private (0600) temporary file that has no name in $TMPDIR, and a name to delete if it has one.

    O_TMPFILE makes a file that never had a name; where the filesystem cannot (or outside Linux) a
    named file is unlinked at once. Either way nothing is left behind when the process is killed
    (a CI cancel sends SIGTERM, a timeout SIGKILL): the kernel frees the space with the last descriptor.
    Without /proc the file must keep its name for other handles to open it; the caller deletes it."""
    directory = tempfile.gettempdir()
    reopenable = os.path.isdir(SPOOL_DIRECTORY_FALLBACK)
    if reopenable and hasattr(os, "O_TMPFILE"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600), None
        except OSError:
            pass  # the filesystem of $TMPDIR does not support O_TMPFILE
    descriptor, path = tempfile.mkstemp(prefix="ci-gate-", suffix=".tar")
    if reopenable:
        os.unlink(path)
        return descriptor, None
    return descriptor, path


@dataclass
class SpooledFile:
    """A private temporary copy of a stream, open for reading by `path` until `close()`."""

    descriptor: int
    path: str
    """A name that opens the copy: /proc/self/fd/N for an unlinked file, else the file's own name."""
    named_path: str | None
    """The file's name in $TMPDIR when it has one (no /proc): deleted by `close()`."""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.descriptor)
        if self.named_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.named_path)
            self.named_path = None


def spool_to_temp(stream: IO[bytes], limit: int, what: str) -> SpooledFile:
    """Copy a stream into a private temporary file that has no name (see `_anonymous_file`).

    The ceiling is the image budget (the spooled tar is the image, byte for byte, plus headers), or
    the free space of $TMPDIR when that is less: a bomb in the outer compression stops at the first
    of them with an error that says which, not with a full disk."""
    descriptor, named_path = _anonymous_file()
    spooled = SpooledFile(descriptor, f"{SPOOL_DIRECTORY_FALLBACK}/{descriptor}" if named_path is None
                          else named_path, named_path)
    try:
        free = os.fstatvfs(descriptor)
        room = free.f_bavail * free.f_frsize
    except OSError:
        room = limit
    ceiling = min(limit, room)
    written = 0
    try:
        while chunk := stream.read(1024 * 1024):
            written += len(chunk)
            if written > ceiling:
                if ceiling < limit:
                    raise SourceError(f"{what}: the decompressed archive does not fit in the {room:,} bytes free "
                                      "in $TMPDIR; free space there or point TMPDIR elsewhere")
                raise LimitExceededError(f"{what} is larger than the image size limit ({limit:,} bytes "
                                         "uncompressed); raise CI_GATE_MAX_IMAGE_BYTES if the image is genuine")
            view = memoryview(chunk)
            while view:
                try:
                    view = view[os.write(descriptor, view):]
                except OSError as error:
                    raise SourceError(f"{what}: cannot write the temporary copy ({error.strerror or error}); "
                                      "free space in $TMPDIR or point TMPDIR elsewhere") from None
    except BaseException:
        spooled.close()
        raise
    return spooled


def decompress_to_temp(path: str, head: bytes, limit: int, where: str) -> SpooledFile:
    """A gzip or zstd compressed archive (`docker save | gzip`) decompressed into a private temp file."""
    try:
        with open(path, "rb") as raw:
            if head.startswith(GZIP_MAGIC):
                with gzip.GzipFile(fileobj=raw) as stream:
                    return spool_to_temp(stream, limit, where)  # type: ignore[arg-type]
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw) as zstream:
                return spool_to_temp(zstream, limit, where)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise SourceError(f"{where}: the compressed archive is truncated or corrupt ({type(error).__name__}); "
                          "re-export the image") from None
    except OSError as error:
        raise SourceError(f"{where}: the compressed archive cannot be read ({error.strerror or error}); "
                          "re-export the image") from None
    except Exception as error:
        if type(error).__name__ == "ZstdError":
            raise SourceError(f"{where}: the zstd archive is corrupt; re-export the image") from None
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
                    raise SourceError(f"{self.where}: member {quoted(current)} runs past the end of the archive; "
                                      "the archive is truncated, re-export it")
                if member.issparse():
                    raise SourceError(f"{self.where}: member {quoted(current)} is a sparse file, which image "
                                      "archives never contain; the archive is corrupt")
                return member
            if member.issym():
                current = normalise_member(posixpath.join(posixpath.dirname(current), member.linkname))
            elif member.islnk():
                current = normalise_member(member.linkname)
            else:
                return None
        raise SourceError(f"{self.where}: member {quoted(name)} is a chain of more than {self.MAX_LINK_HOPS} "
                          "links; the archive is corrupt or hostile")

    def require(self, name: str, what: str) -> tarfile.TarInfo:
        member = self.find(name)
        if member is None:
            raise SourceError(f"{self.where}: {what} {quoted(name)} is missing from the archive; the archive is "
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
        return spooled.path, [spooled.close]
    return path, []


def open_tar_image(path: str, where: str, limit: int,
                   open_tar: Callable[[str], ClosingRawImage]) -> ClosingRawImage:
    """The image in the archive at `path`, which `open_tar` reads from a plain tar (a gzip or zstd
    archive is spooled to one first, `limit` bytes at most); the spool file is deleted when the
    image is closed, or at once when opening fails."""
    tar_path, cleanups = open_archive_file(path, where, limit)
    with cleaned_up_on_failure(cleanups):
        image = open_tar(tar_path)
    image.cleanups.extend(cleanups)
    return image


@contextlib.contextmanager
def cleaned_up_on_failure(cleanups: list[Callable[[], None]]) -> Iterator[None]:
    """Run `cleanups` (last first) if the block fails; on success they stay with the image that owns them."""
    try:
        yield
    except BaseException:
        for action in reversed(cleanups):
            action()
        raise
