"""The read-only image filesystem: layers streamed once, squashed into one view, never extracted.

`walk_image` reads every layer exactly once as a stream (decompressed and verified by
`ci_gate.sources.layers`), applies whiteouts and opaque directories the way the OCI image spec says,
and builds an `ImageFilesystem` holding metadata for every path and the layer that last wrote it.
While a layer streams by, `LayerVisitor`s are shown the contents of the files they ask for — that
is how catalogers, the secret scanner and content searches see every version of every file in
every layer (a secret deleted in a later layer is still shipped: DISA guide 2.9).

Paths in the view are absolute, normalised and can never leave the image root: `..` stops at `/`,
absolute symlink targets point into the image, and symlink loops are detected.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ci_gate.errors import LimitExceededError, SourceError, quoted
from ci_gate.sources.interface import LayerBlob, Limits, RawImage
from ci_gate.sources.layers import ByteBudget, LayerStream, open_layer
from ci_gate.sources.tarstream import MetadataBudget, TarFormatError, TarMetadataLimitError, TarReader

MAX_SYMLINK_HOPS = 40
"""As Linux's ELOOP limit: more hops than this is a loop."""

_WHITEOUT_PREFIX = ".wh."
_OPAQUE_MARKER = ".wh..wh..opq"


@dataclass(slots=True)
class Entry:
    """One path as written by one layer."""

    path: str
    kind: str
    """file, dir, symlink, hardlink, char, block, fifo."""
    mode: int
    """Permission bits with setuid/setgid/sticky."""
    size: int
    uid: int
    gid: int
    link_target: str
    """Symlink target as written, or the normalised absolute path a hard link points to."""
    layer_index: int
    data_offset: int = -1
    """Offset of the file's data in the layer's uncompressed tar (-1 when not from a tar)."""


class LayerVisitor(Protocol):
    """Something that looks at file contents while the layers stream by."""

    def wants(self, entry: Entry) -> int:
        """How many bytes of this regular file's content to read for `visit` (0: none)."""
        ...

    def visit(self, entry: Entry, content: bytes) -> None:
        """Look at one version of a file; `content` holds at most the bytes asked for."""
        ...


def normalize_path(name: str) -> tuple[str, bool]:
    """The absolute in-image path for a tar member name, and whether the name tried to leave the root."""
    # Most names (`usr/lib/x`, `./usr/lib/x`, `usr/lib/`) have nothing to resolve: no empty, `.` or `..`
    # part, which the test below rules out (a part starting with a dot takes the long way).
    body = name[2:] if name.startswith("./") else name
    if body.endswith("/"):
        body = body[:-1]
    if body and body[0] not in "/." and body[-1] != "/" and "//" not in body and "/." not in body:
        return "/" + body, False
    escaped = name.startswith("/")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            else:
                escaped = True
            continue
        parts.append(part)
    return "/" + "/".join(parts), escaped


_KINDS = {
    b"0": "file",
    b"\0": "file",
    b"7": "file",
    b"5": "dir",
    b"2": "symlink",
    b"1": "hardlink",
    b"3": "char",
    b"4": "block",
    b"6": "fifo",
}


class ImageFilesystem:
    """The squashed, read-only view of an image's layers."""

    def __init__(self, layers: Sequence[LayerBlob], limits: Limits) -> None:
        self.layers = list(layers)
        self.limits = limits
        self.entries: dict[str, Entry] = {}
        self._children: dict[str, list[str]] = {}
        self.captured: dict[tuple[int, str], bytes] = {}
        """Contents kept during the walk, by (layer index, path)."""
        self.warnings: list[str] = []
        self.entries_seen = 0
        self.uncompressed_bytes = 0

    # --- queries ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, path: str, follow_symlinks: bool = True) -> Entry | None:
        resolved = self.resolve(path, follow_last=follow_symlinks)
        return None if resolved is None else self.entries.get(resolved)

    def exists(self, path: str) -> bool:
        return self.entry(path) is not None

    def layer_of(self, path: str) -> int | None:
        """The layer that last wrote `path` itself (a symlink is not followed)."""
        found = self.entries.get(normalize_path(path)[0])
        return None if found is None else found.layer_index

    def resolve(self, path: str, follow_last: bool = True) -> str | None:
        """The path with every symlink followed inside the image root; None on a loop."""
        pending = [part for part in reversed(path.split("/")) if part]
        current: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if current:
                    current.pop()
                continue
            candidate = "/" + "/".join([*current, part])
            found = self.entries.get(candidate)
            if found is not None and found.kind == "symlink" and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = found.link_target
                if target.startswith("/"):
                    current = []
                pending.extend(p for p in reversed(target.split("/")) if p)
                continue
            current.append(part)
        return "/" + "/".join(current)

    def iter_entries(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a glob where `*` also crosses `/` (fnmatch semantics), sorted."""
        matcher = re.compile(fnmatch.translate(pattern)).match
        return sorted(path for path in self.entries if matcher(path))

    def listdir(self, path: str) -> list[str]:
        resolved = self.resolve(path)
        if resolved is None:
            return []
        prefix = resolved.rstrip("/")
        children = self._children.get(prefix or "/", ())
        return sorted({child.rsplit("/", 1)[1] for child in children if child in self.entries})

    def read(self, path: str, max_bytes: int | None = None) -> bytes | None:
        """The content of a regular file (symlinks and hard links followed), or None if there is none.

        Reads what the walk captured; otherwise reads the one file back from its layer (a seek for
        uncompressed archives, else a verified re-stream of that layer)."""
        limit = self.limits.max_file_read_bytes
        if max_bytes is not None:
            limit = min(max_bytes, limit)
        found = self.entry(path)
        hops = 0
        while found is not None and found.kind == "hardlink" and hops < MAX_SYMLINK_HOPS:
            found = self.entries.get(found.link_target)
            hops += 1
        if found is None or found.kind != "file":
            return None
        kept = self.captured.get((found.layer_index, found.path))
        if kept is not None and (len(kept) >= min(limit, found.size)):
            return kept[:limit]
        return self._read_from_layer(found, limit)

    def _read_from_layer(self, found: Entry, limit: int) -> bytes | None:
        blob = self.layers[found.layer_index]
        if blob.directory_root is not None:
            return _read_host_file(blob.directory_root, found.path, limit)
        seekable = blob.seekable_path()
        if seekable is not None and found.data_offset >= 0:
            host_file, offset = seekable
            with open(host_file, "rb") as handle:
                handle.seek(offset + found.data_offset)
                return handle.read(min(limit, found.size))
        stream, reader = open_layer(blob, found.layer_index, ByteBudget(self.limits.max_image_bytes))
        content: bytes | None = None
        try:
            archive = TarReader(reader, MetadataBudget(self.limits.max_tar_metadata_bytes))
            for member in archive:
                same_member = member.offset_data == found.data_offset
                if same_member and normalize_path(member.name)[0] == found.path:
                    content = archive.read(min(limit, found.size))
                    break
            stream.finish()
        except TarFormatError as error:
            raise SourceError(f"layer {found.layer_index + 1} could not be re-read: {error}") from None
        finally:
            stream.close_raw()
        return content

    # --- building --------------------------------------------------------------------------------

    def _remove_tree(self, path: str) -> None:
        # A loop, not recursion: a layer may nest directories 10,000 deep.
        pending = [path]
        while pending:
            current = pending.pop()
            self.entries.pop(current, None)
            pending.extend(self._children.pop(current, ()))

    def _remove_children(self, directory: str) -> None:
        for child in self._children.pop(directory, ()):
            self._remove_tree(child)

    def _add(self, entry: Entry) -> None:
        previous = self.entries.get(entry.path)
        if previous is not None and previous.kind == "dir" and entry.kind != "dir":
            self._remove_children(entry.path)
        if previous is None and entry.path != "/":
            self._link(entry.path)
        self.entries[entry.path] = entry

    def _link(self, path: str) -> None:
        """Record `path` under its parent, and parents a tar left implicit under theirs."""
        # A loop, not recursion: a layer may nest directories 10,000 deep.
        while True:
            parent = path.rpartition("/")[0] or "/"  # posixpath.dirname of a normalised absolute path
            siblings = self._children.get(parent)
            if siblings is not None:
                siblings.append(path)
                return
            self._children[parent] = [path]
            if parent == "/" or parent in self.entries:
                return
            path = parent

    def apply_layer(self, index: int, layer_entries: dict[str, Entry], whiteouts: list[str],
                    opaque_dirs: list[str]) -> None:
        """Squash one layer onto the view: its whiteouts hide lower layers, then its entries land."""
        for directory in opaque_dirs:
            self._remove_children(directory)
        for path in whiteouts:
            if path in self.entries:
                self._remove_tree(path)
                parent = posixpath.dirname(path)
                siblings = self._children.get(parent)
                if siblings is not None:
                    self._children[parent] = [s for s in siblings if s != path]
        for entry in layer_entries.values():
            self._add(entry)
        for entry in layer_entries.values():
            if entry.kind == "hardlink" and entry.link_target not in self.entries:
                self.warnings.append(f"layer {index + 1}: hard link {quoted(entry.path)} points to "
                                     f"{quoted(entry.link_target)}, which is not in the image; it reads as empty")


def _read_host_file(root: str, path: str, limit: int) -> bytes | None:
    """Read one file of a `dir:` root without following a link anywhere (O_NOFOLLOW on every step)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    directory_flags = flags | getattr(os, "O_DIRECTORY", 0)
    parts = [p for p in path.split("/") if p]
    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, directory_flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], flags, dir_fd=fd)
    except OSError:
        os.close(fd)
        return None
    os.close(fd)
    with os.fdopen(file_fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit)


def _directory_members(root: str, index: int) -> Iterator[tuple[Entry, Callable[[int], bytes | None]]]:
    """Entries of a `dir:` root filesystem, walked without following links out of it."""
    stack = [("", root)]
    while stack:
        relative, host = stack.pop()
        try:
            with os.scandir(host) as scan:
                items = sorted(scan, key=lambda item: item.name)
        except OSError:
            continue
        for item in items:
            path = f"{relative}/{item.name}"
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = info.st_mode
            if stat.S_ISDIR(mode):
                kind = "dir"
                stack.append((path, item.path))
            elif stat.S_ISREG(mode):
                kind = "file"
            elif stat.S_ISLNK(mode):
                kind = "symlink"
            elif stat.S_ISCHR(mode):
                kind = "char"
            elif stat.S_ISBLK(mode):
                kind = "block"
            elif stat.S_ISFIFO(mode):
                kind = "fifo"
            else:
                continue
            target = os.readlink(item.path) if kind == "symlink" else ""
            entry = Entry(path, kind, stat.S_IMODE(mode), info.st_size if kind == "file" else 0,
                          info.st_uid, info.st_gid, target, index)

            def read(limit: int, _path: str = path) -> bytes | None:
                return _read_host_file(root, _path, limit)

            yield entry, read


def _tar_members(archive: TarReader, index: int, filesystem: ImageFilesystem
                 ) -> Iterator[tuple[Entry, Callable[[int], bytes | None]] | tuple[str, str]]:
    """Entries of one layer tar; whiteouts come out as ("whiteout"|"opaque", path)."""
    read = archive.read
    for member in archive:
        path, escaped = normalize_path(member.name)
        if escaped:
            filesystem.warnings.append(f"layer {index + 1}: entry {quoted(member.name)} points outside the "
                                       f"image root; kept inside it as {quoted(path)}")
        if path == "/":
            continue
        base = path.rsplit("/", 1)[1] if "/" + _WHITEOUT_PREFIX in path else ""
        if base.startswith(_WHITEOUT_PREFIX):
            parent = posixpath.dirname(path)
            if base == _OPAQUE_MARKER:
                yield ("opaque", parent)
            else:
                yield ("whiteout", posixpath.join(parent, base[len(_WHITEOUT_PREFIX):]))
            continue
        kind = _KINDS.get(member.type, "")
        if not kind:
            filesystem.warnings.append(f"layer {index + 1}: entry {quoted(path)} has an unknown tar type "
                                       f"{member.type!r}; skipped")
            continue
        if kind == "hardlink":
            target, target_escaped = normalize_path(member.linkname)
            if target_escaped:
                filesystem.warnings.append(f"layer {index + 1}: hard link {quoted(path)} points outside the "
                                           f"image root ({quoted(member.linkname)}); kept inside it as "
                                           f"{quoted(target)}")
        else:
            target = member.linkname if kind == "symlink" else ""
        entry = Entry(path, kind, member.mode & 0o7777, member.size if kind == "file" else 0,
                      member.uid, member.gid, target, index, member.offset_data)

        yield entry, read


LayerCallback = Callable[[int, int, "LayerStream | None"], None]
"""Called with (layer index, layer count, stream) before each layer, for progress display."""

FileSink = Callable[[Entry, Callable[[int], bytes | None]], None]
"""Given each regular file of a tar layer as it streams by, with a reader of the file's whole data
(call it until it returns nothing), in place of the visitors' capped head: `ci_gate.stig` writes the
files out for OpenSCAP in the same pass, so no layer is inflated twice."""


def walk_image(raw: RawImage, visitors: Sequence[LayerVisitor] = (), limits: Limits | None = None,
               capture_paths: Iterable[str] = (), on_layer: LayerCallback | None = None,
               on_progress: Callable[[int], None] | None = None, file_sink: FileSink | None = None
               ) -> ImageFilesystem:
    """Stream every layer once, show file contents to the visitors, and squash the layers into a view.

    Every version of each path in `capture_paths` is kept in memory (up to 1 MiB each) so that small
    system files (/etc/passwd, os-release, ...) can be read after the walk without another pass.
    A `file_sink` reads whole files, so it replaces the visitors (a `dir:` layer's files are not
    given to it: they stay readable on the host)."""
    if file_sink is not None and (visitors or capture_paths):
        raise ValueError("walk_image: a file_sink reads each file to its end; it takes no visitors")
    limits = limits or Limits()
    filesystem = ImageFilesystem(raw.layers, limits)
    capture = frozenset(capture_paths)
    if capture:
        visitors = [*visitors, CaptureVisitor(filesystem.captured, capture)]
    budget = ByteBudget(limits.max_image_bytes)
    metadata_budget = MetadataBudget(limits.max_tar_metadata_bytes)
    for index, blob in enumerate(raw.layers):
        stream: LayerStream | None = None
        if blob.directory_root is not None:
            if on_layer:
                on_layer(index, len(raw.layers), None)
            members: Iterable[tuple[Entry, Callable[[int], bytes | None]] | tuple[str, str]] = (
                _directory_members(blob.directory_root, index))
            _apply_members(filesystem, index, members, visitors, limits, on_progress)
            continue
        stream, reader = open_layer(blob, index, budget)
        if on_layer:
            on_layer(index, len(raw.layers), stream)
        try:
            archive = TarReader(reader, metadata_budget)
            _apply_members(filesystem, index, _tar_members(archive, index, filesystem), visitors, limits,
                           on_progress, file_sink)
            stream.finish()
        except TarMetadataLimitError as error:
            raise LimitExceededError(f"layer {index + 1} ({blob.digest[:19]}): {error}") from None
        except TarFormatError as error:
            raise SourceError(f"layer {index + 1} ({blob.digest[:19]}) is not a valid tar: {error}; "
                              "re-export or re-pull the image") from None
        finally:
            stream.close_raw()
        filesystem.uncompressed_bytes += stream.uncompressed_bytes
    return filesystem


def _apply_members(filesystem: ImageFilesystem, index: int,
                   members: Iterable[tuple[Entry, Callable[[int], bytes | None]] | tuple[str, str]],
                   visitors: Sequence[LayerVisitor], limits: Limits,
                   on_progress: Callable[[int], None] | None, file_sink: FileSink | None = None) -> None:
    layer_entries: dict[str, Entry] = {}
    whiteouts: list[str] = []
    opaque_dirs: list[str] = []
    # Once per member of every layer: kept to a few calls for a file nobody wants.
    max_files, max_read = limits.max_files, limits.max_file_read_bytes
    visitors = list(visitors)
    for item in members:
        if isinstance(item[0], str):
            marker, path = item
            (opaque_dirs if marker == "opaque" else whiteouts).append(str(path))
            continue
        entry, read = item
        filesystem.entries_seen += 1
        if filesystem.entries_seen > max_files:
            raise LimitExceededError(f"the image has more than {max_files:,} entries (a hostile "
                                     "image?); raise the limit with CI_GATE_MAX_FILES if it is genuine")
        layer_entries[entry.path] = entry
        size = entry.size
        if file_sink is not None and entry.kind == "file":
            file_sink(entry, read)
        elif visitors and entry.kind == "file" and size >= 0:
            amounts = [visitor.wants(entry) for visitor in visitors]
            most = max(amounts)
            if most > 0:
                content = read(min(most, size, max_read)) or b""
                for visitor, amount in zip(visitors, amounts, strict=True):
                    if amount > 0:
                        visitor.visit(entry, content if amount >= len(content) else content[:amount])
        if on_progress is not None and size:
            on_progress(size)
    filesystem.apply_layer(index, layer_entries, whiteouts, opaque_dirs)


class CaptureVisitor:
    """Keeps the content of chosen paths (every version) in the filesystem's `captured` map."""

    def __init__(self, filesystem_captured: dict[tuple[int, str], bytes], paths: Iterable[str],
                 max_bytes: int = 1024 * 1024) -> None:
        self.captured = filesystem_captured
        self.paths = frozenset(paths)
        self.max_bytes = max_bytes

    def wants(self, entry: Entry) -> int:
        return self.max_bytes if entry.path in self.paths else 0

    def visit(self, entry: Entry, content: bytes) -> None:
        self.captured[(entry.layer_index, entry.path)] = content
