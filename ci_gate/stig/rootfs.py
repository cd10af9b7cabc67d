"""Materialise an image's squashed root filesystem into a private temporary directory for OpenSCAP.

OpenSCAP's probes read real files under `OSCAP_PROBE_ROOT`, so the image is written out once:
directories, regular files, hard links and symbolic links, with the image's modes and owners.
Device nodes and FIFOs are never created. Each layer is inflated once: while `walk_image` streams
it, every regular file is written into a private spool (a later version of a path replaces the
earlier one at once); when the walk has squashed the layers, the tree is built and each final file
is hard-linked from the spool into its place, so no byte is copied twice and the temporary space is
the final tree plus what later layers delete (whiteouts) until the walk ends.

Safety rules (a hostile image must not touch anything outside the directory):
- every entry is created relative to a directory file descriptor that was opened component by
  component with O_NOFOLLOW, so a symlink in the image can never redirect a write;
- files are created with O_CREAT|O_EXCL|O_NOFOLLOW (spool files under names of our own), hard-linked
  into the tree with link(2), which never replaces nor follows what is there, links are created,
  never followed;
- file data is what the layer's tar holds (bounded by the image byte budget); runs of zero bytes
  become holes, so a large sparse file costs no disk;
- the directory is removed when the context ends, also on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType

from ci_gate.sources.filesystem import MAX_SYMLINK_HOPS, Entry, ImageFilesystem, _read_host_file, walk_image
from ci_gate.sources.interface import Limits, RawImage
from ci_gate.sources.layers import ByteBudget

_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_ZEROS = bytes(_CHUNK)
CONTAINER_MARKER = ".dockerenv"
"""SSG's container platform check looks for /.dockerenv or /run/.containerenv."""


@dataclass(slots=True)
class MaterializedRoot:
    """A written-out root filesystem and what was left out of it."""

    path: str
    files: int = 0
    directories: int = 0
    links: int = 0
    bytes_written: int = 0
    skipped: list[str] = field(default_factory=list)
    """One line per entry not materialised (device nodes, FIFOs, entries under a symlink...)."""
    owners_kept: bool = True
    captured: dict[str, bytes] = field(default_factory=dict)
    """The contents of the `capture_paths` the image has as regular files (links followed)."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` (the temp dir removal) runs."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    # Only where nobody handles SIGTERM: the CLI raises its own interrupt (one line, exit 143, every
    # `finally` runs), and replacing it would turn SIGTERM into a silent Ctrl-C exit 130.
    previous = signal.getsignal(signal.SIGTERM)
    installed = previous is signal.SIG_DFL
    if installed:
        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: nothing to install
            installed = False
    if not installed:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def materialized_image(raw: RawImage, limits: Limits, parent_dir: str | None = None,
                       capture_paths: Iterable[str] = ()) -> Iterator[MaterializedRoot]:
    """Walk `raw` once and write its squashed root filesystem into a fresh private directory (under
    `parent_dir`), with the content of `capture_paths` read on the way; removed when the block ends."""
    with _sigterm_as_interrupt():
        temporary = tempfile.mkdtemp(prefix="ci-gate-stig-", dir=parent_dir)
        try:
            root = os.path.join(temporary, "rootfs")
            os.mkdir(root, 0o755)
            result = MaterializedRoot(root)
            spool = _Spool(os.path.join(temporary, "spool"), result)
            try:
                filesystem = walk_image(raw, limits=limits, file_sink=spool.add)
                spool.add_host_files(filesystem, limits)
                result.captured = {path: content for path in capture_paths
                                   if (content := spool.read(filesystem, path, limits.max_file_read_bytes))
                                   is not None}
                _Writer(filesystem, limits, result, spool).write_all()
            finally:
                spool.close()  # what is left there (versions no layer kept) is not needed any more
            yield result
        finally:
            remove_tree(temporary)


def remove_tree(path: str) -> None:
    """Remove a materialised tree; directories an image made unwritable are opened up first."""
    if os.geteuid() != 0:
        for directory, subdirectories, _ in os.walk(path, followlinks=False):
            for name in subdirectories:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(directory, name), 0o700, follow_symlinks=False)
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class _Spooled:
    layer_index: int
    data_offset: int
    name: str
    """The file's name in the spool directory."""
    size: int
    """The bytes it spans (holes included)."""


class _Spool:
    """Every regular file of the image, written once as its layer streams by (runs of zeros become
    holes), with the image's owner, under a name of our own in a private directory; a later version
    of a path replaces the earlier one at once. The image's mode is set when the file is placed in
    the tree: until then it stays readable to us (os-release, the dpkg database) even unprivileged."""

    def __init__(self, directory: str, result: MaterializedRoot) -> None:
        os.mkdir(directory, 0o700)
        self.directory = directory
        self.fd = os.open(directory, _DIR_FLAGS)
        self.result = result
        self.is_root = os.geteuid() == 0
        self.kept: dict[str, _Spooled] = {}
        self.count = 0

    def add(self, entry: Entry, read: Callable[[int], bytes | None]) -> None:
        """`walk_image`'s file sink: write `entry`'s data, read to its end."""
        earlier = self.kept.pop(entry.path, None)
        if earlier is not None:
            os.unlink(earlier.name, dir_fd=self.fd)
        name = str(self.count)
        self.count += 1
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self.fd)
        try:
            written = _copy(read, fd)
            os.ftruncate(fd, written)  # a trailing hole is only allocated by the size
            if self.is_root:
                os.fchown(fd, entry.uid, entry.gid)
            else:
                self.result.owners_kept = False
        finally:
            os.close(fd)
        self.kept[entry.path] = _Spooled(entry.layer_index, entry.data_offset, name, written)

    def add_host_files(self, filesystem: ImageFilesystem, limits: Limits) -> None:
        """The final files of `dir:` layers (the walk reads no tar for them): read from the host without
        following a link, whole (not capped at the analysis read limit), within the image budget."""
        budget = ByteBudget(limits.max_image_bytes)
        for entry in filesystem.iter_entries():
            root = filesystem.layers[entry.layer_index].directory_root if entry.kind == "file" else None
            if root is not None:
                budget.spend(entry.size, f"layer {entry.layer_index + 1}")
                self.add(entry, io.BytesIO(_read_host_file(root, entry.path, entry.size) or b"").read)

    def final_version(self, entry: Entry) -> _Spooled | None:
        """The spooled file holding the final version `entry`, or None."""
        spooled = self.kept.get(entry.path)
        if spooled is None or (spooled.layer_index, spooled.data_offset) != (entry.layer_index, entry.data_offset):
            return None
        return spooled

    def read(self, filesystem: ImageFilesystem, path: str, limit: int) -> bytes | None:
        """Up to `limit` bytes of the regular file at `path` (links followed inside the image), as
        `ImageFilesystem.read` answers, from the spool instead of its layer."""
        found = filesystem.entry(path)
        hops = 0
        while found is not None and found.kind == "hardlink" and hops < MAX_SYMLINK_HOPS:
            found = filesystem.entries.get(found.link_target)
            hops += 1
        spooled = self.final_version(found) if found is not None and found.kind == "file" else None
        if spooled is None:
            return None
        fd = os.open(spooled.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.fd)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(limit)

    def close(self) -> None:
        os.close(self.fd)
        shutil.rmtree(self.directory, ignore_errors=True)


def _copy(read: Callable[[int], bytes | None], fd: int) -> int:
    """Copy what `read` gives into `fd`, leaving holes for runs of zeros; the bytes it spans."""
    position = 0
    while chunk := read(_CHUNK):
        if chunk == _ZEROS[:len(chunk)]:
            os.lseek(fd, len(chunk), os.SEEK_CUR)
        else:
            os.write(fd, chunk)
        position += len(chunk)
    return position


class _Writer:
    def __init__(self, filesystem: ImageFilesystem, limits: Limits, result: MaterializedRoot, spool: _Spool) -> None:
        self.filesystem = filesystem
        self.limits = limits
        self.result = result
        self.spool = spool
        self.is_root = os.geteuid() == 0
        self.root_fd = os.open(result.path, _DIR_FLAGS)
        self._cached_dir: tuple[str, int] | None = None

    # --- directory descriptors, never following a link ----------------------------------------

    def _parent_fd(self, path: str) -> int | None:
        """An fd for the parent directory of `path` (created as needed), or None if a link is in the way."""
        parent = path.rsplit("/", 1)[0] or "/"
        if self._cached_dir is not None and self._cached_dir[0] == parent:
            return self._cached_dir[1]
        fd = os.dup(self.root_fd)
        prefix = ""
        for part in (p for p in parent.split("/") if p):
            prefix += "/" + part
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                known = self.filesystem.entries.get(prefix)
                if known is not None and known.kind != "dir":
                    # The image has a link or file here: an entry "under" it is never written through it
                    # and never turns it into a directory.
                    os.close(fd)
                    return None
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    os.close(fd)
                    return None
            except OSError:  # ELOOP / ENOTDIR: a symlink or a file where a directory should be
                os.close(fd)
                return None
            os.close(fd)
            fd = next_fd
        if self._cached_dir is not None:
            os.close(self._cached_dir[1])
        self._cached_dir = (parent, fd)
        return fd

    def _skip(self, entry: Entry, why: str) -> None:
        self.result.skipped.append(f"{entry.path}: {why}")

    def _parent_or_skip(self, entry: Entry) -> int | None:
        """An fd for the directory `entry` goes into, or None with the entry recorded as skipped."""
        parent = self._parent_fd(entry.path)
        if parent is None:
            self._skip(entry, "a parent is a link or a file")
        return parent

    def _chown(self, uid: int, gid: int, fd: int | None = None, name: str = "", dir_fd: int | None = None) -> None:
        if not self.is_root:
            self.result.owners_kept = False
            return
        if fd is not None:
            os.fchown(fd, uid, gid)
        else:
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    # --- the passes ------------------------------------------------------------------------------

    def write_all(self) -> None:
        try:
            entries = sorted(self.filesystem.entries.values(), key=lambda e: e.path)
            directories = [e for e in entries if e.kind == "dir" and e.path != "/"]
            for entry in directories:
                self._make_directory(entry)
            self._write_files([e for e in entries if e.kind == "file"])
            for entry in entries:
                if entry.kind == "hardlink":
                    self._make_hardlink(entry)
                elif entry.kind == "symlink":
                    self._make_symlink(entry)
                elif entry.kind in ("char", "block", "fifo"):
                    self._skip(entry, f"{entry.kind} device/FIFO not materialised")
            self._add_container_marker()
            # Modes last, deepest first: a read-only directory must not stop its children being written.
            for entry in sorted(directories, key=lambda e: e.path.count("/"), reverse=True):
                self._finish_directory(entry)
            root_entry = self.filesystem.entries.get("/")
            if root_entry is not None:
                self._chown(root_entry.uid, root_entry.gid, fd=self.root_fd)
                os.fchmod(self.root_fd, root_entry.mode & 0o7777)
        finally:
            if self._cached_dir is not None:
                os.close(self._cached_dir[1])
                self._cached_dir = None
            os.close(self.root_fd)

    def _make_directory(self, entry: Entry) -> None:
        parent = self._parent_or_skip(entry)
        if parent is None:
            return
        name = entry.path.rsplit("/", 1)[1]
        with contextlib.suppress(FileExistsError):  # created earlier as an implicit parent
            os.mkdir(name, 0o755, dir_fd=parent)
        self.result.directories += 1

    def _finish_directory(self, entry: Entry) -> None:
        parent = self._parent_fd(entry.path)
        if parent is None:
            return
        try:
            fd = os.open(entry.path.rsplit("/", 1)[1], _DIR_FLAGS, dir_fd=parent)
        except OSError:
            return
        try:
            self._chown(entry.uid, entry.gid, fd=fd)
            os.fchmod(fd, entry.mode & 0o7777)
        finally:
            os.close(fd)

    def _write_files(self, files: list[Entry]) -> None:
        """Hard-link each final file from the spool into its place (link(2) never replaces a name)."""
        for entry in files:
            spooled = self.spool.final_version(entry)
            if spooled is None:
                self._skip(entry, "its content was not kept by the walk")
                continue
            parent = self._parent_or_skip(entry)
            if parent is None:
                continue
            try:
                # After chown (at spooling): chown clears setuid/setgid. The spool holds only our files.
                os.chmod(spooled.name, entry.mode & 0o7777, dir_fd=self.spool.fd)
                os.link(spooled.name, entry.path.rsplit("/", 1)[1], src_dir_fd=self.spool.fd, dst_dir_fd=parent,
                        follow_symlinks=False)
            except OSError as error:
                self._skip(entry, f"cannot create ({error.strerror})")
                continue
            os.unlink(spooled.name, dir_fd=self.spool.fd)
            self.result.files += 1
            self.result.bytes_written += spooled.size

    def _make_hardlink(self, entry: Entry) -> None:
        target = self.filesystem.entries.get(entry.link_target)
        if target is None or target.kind != "file":
            self._skip(entry, "hard link to something that is not a regular file in the image")
            return
        target_parent = self._parent_fd(target.path)
        if target_parent is None:
            self._skip(entry, "hard link target is under a link")
            return
        target_fd = os.dup(target_parent)
        try:
            parent = self._parent_or_skip(entry)
            if parent is None:
                return
            os.link(target.path.rsplit("/", 1)[1], entry.path.rsplit("/", 1)[1],
                    src_dir_fd=target_fd, dst_dir_fd=parent, follow_symlinks=False)
            self.result.links += 1
        except OSError as error:
            self._skip(entry, f"cannot link ({error.strerror})")
        finally:
            os.close(target_fd)

    def _make_symlink(self, entry: Entry) -> None:
        parent = self._parent_or_skip(entry)
        if parent is None:
            return
        name = entry.path.rsplit("/", 1)[1]
        try:
            # The target is stored as written: oscap resolves it under OSCAP_PROBE_ROOT, and nothing
            # in ci-gate writes through it.
            os.symlink(entry.link_target, name, dir_fd=parent)
            self._chown(entry.uid, entry.gid, name=name, dir_fd=parent)
            self.result.links += 1
        except OSError as error:
            self._skip(entry, f"cannot create the link ({error.strerror})")

    def _add_container_marker(self) -> None:
        try:
            fd = os.open(CONTAINER_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                         dir_fd=self.root_fd)
            os.close(fd)
        except FileExistsError:
            pass

