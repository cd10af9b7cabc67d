"""`dir:PATH` — a root filesystem on disk (a debootstrap tree, an unpacked bundle's rootfs).

There is no manifest or config: the image is one synthetic layer whose `directory_root` is the
directory, which the filesystem walker reads with os.scandir/lstat (never following links out of it).
The config is synthetic too (host os/arch, empty runtime config).

The layer's digest identifies the tree's shape, not its contents: it is "sha256:" + the sha256 of
the sorted list of relative paths (POSIX separators, directories included, one per line, each line
ending in a newline). Hashing contents would read the whole tree twice; the listing is enough to tell
two trees apart in caches and reports, and it is stable across runs.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO

from ci_gate.errors import SourceError
from ci_gate.sources.interface import ImageSource, LayerBlob, RawImage, SourceOptions
from ci_gate.sources.oci_layout import Platform

DIRECTORY_MEDIA_TYPE = "application/vnd.ci-gate.directory"


class DirectoryLayer(LayerBlob):
    """The whole root filesystem as one layer, read from the host directory, not from a tar stream
    (so it has no diff_id: the base's None)."""

    media_type = DIRECTORY_MEDIA_TYPE

    def __init__(self, root: str, digest: str, size: int):
        self.directory_root = root
        self.digest = digest
        self.size = size

    def open(self) -> IO[bytes]:
        raise SourceError(f"dir:{self.directory_root} has no layer stream; read it through directory_root")

    def __repr__(self) -> str:
        return f"<DirectoryLayer {self.directory_root} {self.digest}>"


def listing_digest(root: str) -> tuple[str, int, list[str]]:
    """(digest of the sorted relative path listing, total bytes of regular files, unreadable dirs)."""
    paths: list[str] = []
    total = 0
    unreadable: list[str] = []

    def on_error(error: OSError) -> None:
        unreadable.append(os.path.relpath(error.filename or root, root))

    for current, directories, files in os.walk(root, onerror=on_error, followlinks=False):
        relative = os.path.relpath(current, root)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in directories:
            paths.append(prefix + name)
        for name in files:
            paths.append(prefix + name)
            try:
                status = os.lstat(os.path.join(current, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(current, name)):
                total += status.st_size
    hasher = hashlib.sha256()
    for path in sorted(paths):
        hasher.update(path.encode("utf-8", "surrogateescape") + b"\n")
    return "sha256:" + hasher.hexdigest(), total, unreadable


class DirectorySource(ImageSource):
    scheme = "dir"

    def open(self, location: str, options: SourceOptions) -> RawImage:
        where = f"dir:{location}"
        if not os.path.exists(location):
            raise SourceError(f"{where}: no such directory; check the path")
        if not os.path.isdir(location):
            raise SourceError(f"{where}: not a directory; for an image archive use docker-archive: or "
                              "oci-archive:")
        root = os.path.realpath(location)
        digest, total, unreadable = listing_digest(root)
        platform = Platform.host()
        config = {
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }
        warnings = [f"{where}: cannot read {path} (permission denied?); it is left out"
                    for path in unreadable]
        return RawImage(reference=where, scheme=self.scheme, config=config,
                        layers=[DirectoryLayer(root, digest, total)], warnings=warnings)
