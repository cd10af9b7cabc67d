"""What every image source gives the rest of ci-gate: a manifest, a config and layer blobs to stream.

A source only opens and fetches; it never interprets layer contents. `ci_gate.sources.layers`
decompresses and verifies blobs, `ci_gate.sources.filesystem` squashes them into a read-only view.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ci_gate.errors import SourceError

__all__ = [
    "DEFAULT_LIMITS",
    "DirectoryMember",
    "ImageSource",
    "LayerBlob",
    "Limits",
    "RawImage",
    "SourceError",
    "SourceOptions",
]


@dataclass(frozen=True)
class Limits:
    """Safety limits that stop a decompression bomb or a hostile image with a clear error."""

    max_image_bytes: int = 16 * 1024**3
    """Total uncompressed bytes over all layers."""
    max_file_read_bytes: int = 256 * 1024**2
    """Bytes read from one file for analysis; larger files are read up to this size only."""
    max_files: int = 2_000_000
    """Entries over all layers."""
    max_metadata_bytes: int = 16 * 1024**2
    """Manifest, index and config documents."""
    max_tar_metadata_bytes: int = 128 * 1024**2
    """File names, link targets and PAX/GNU records over all layers (each name at most PATH_MAX)."""
    max_evidence_bytes: int = 256 * 1024**2
    """Evidence file contents the catalogers hold over the whole image until the walk ends."""
    max_archive_inflation_bytes: int = 4 * 1024**3
    """Bytes inflated from nested archives (jars in jars) over the whole image."""

    @classmethod
    def from_env(cls) -> Limits:
        """Limits from CI_GATE_MAX_IMAGE_BYTES, CI_GATE_MAX_FILE_READ_BYTES, CI_GATE_MAX_FILES,
        CI_GATE_MAX_TAR_METADATA_BYTES, CI_GATE_MAX_EVIDENCE_BYTES, CI_GATE_MAX_ARCHIVE_INFLATION_BYTES."""
        values: dict[str, int] = {}
        for name, env in (
            ("max_image_bytes", "CI_GATE_MAX_IMAGE_BYTES"),
            ("max_file_read_bytes", "CI_GATE_MAX_FILE_READ_BYTES"),
            ("max_files", "CI_GATE_MAX_FILES"),
            ("max_tar_metadata_bytes", "CI_GATE_MAX_TAR_METADATA_BYTES"),
            ("max_evidence_bytes", "CI_GATE_MAX_EVIDENCE_BYTES"),
            ("max_archive_inflation_bytes", "CI_GATE_MAX_ARCHIVE_INFLATION_BYTES"),
        ):
            raw = os.environ.get(env)
            if raw:
                try:
                    values[name] = parse_size(raw)
                except ValueError:
                    raise SourceError(f"{env}={raw!r} is not a size; use a number with an optional "
                                      "K, M or G suffix, e.g. 2G") from None
        return cls(**values)


def parse_size(text: str) -> int:
    """`1024`, `64K`, `512M`, `2G`, `1T` (binary units) → bytes."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class SourceOptions:
    """How to reach an image: credentials, TLS, platform and limits."""

    platform: str | None = None
    """os/arch[/variant] to pick from a manifest list; None = linux/amd64 or the host's."""
    insecure_registries: tuple[str, ...] = ()
    """HOST[:PORT] that may be spoken to over plain HTTP (loopback always may)."""
    ca_bundle: str | None = None
    registry_username: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    registry_host: str | None = None
    """The registry HOST[:PORT] that registry_username/password are for; they go nowhere else (and,
    without a host, nowhere at all)."""
    allowed_registries: tuple[str, ...] | None = None
    """When set (ci-gate serve), the only registries that may be contacted, with their token services
    and redirect targets; HOST matches any port, HOST:PORT that port, `*` anything. None: any."""
    docker_config: str | None = None
    """Path of a Docker config.json; default $DOCKER_CONFIG/config.json or ~/.docker/config.json."""
    docker_host: str | None = None
    """Docker daemon socket (unix:///var/run/docker.sock by default, or $DOCKER_HOST)."""
    timeout: float = 60.0
    limits: Limits = DEFAULT_LIMITS


@dataclass(frozen=True)
class DirectoryMember:
    """An entry of a `dir:` root filesystem, as a layer member (see LayerBlob.directory_root)."""

    path: str
    host_path: str


class LayerBlob(abc.ABC):
    """One layer as the manifest lists it, with a way to stream its stored bytes."""

    digest: str
    """Digest of the stored blob; every byte streamed is checked against it."""
    size: int
    media_type: str
    diff_id: str | None = None
    """From the config's rootfs.diff_ids, checked against the uncompressed stream when known."""

    @abc.abstractmethod
    def open(self) -> IO[bytes]:
        """A fresh stream of the stored (possibly compressed) bytes, from the start."""

    def seekable_path(self) -> tuple[str, int] | None:
        """(host file, offset) when the stored bytes lie uncompressed in a file we may seek in."""
        return None

    directory_root: str | None = None
    """For `dir:` sources only: the host directory that is the root filesystem (no tar stream)."""

    own_file_handle: bool = False
    """`open()` reads a host file through a handle of the stream's own, which a forked worker process may
    go on reading (`ci_gate.sources.inflate_worker`); never a shared connection."""


@dataclass
class RawImage:
    """An opened image: its documents and its layers, bottom first."""

    reference: str
    scheme: str
    config: dict[str, Any]
    layers: list[LayerBlob]
    manifest: dict[str, Any] | None = None
    manifest_digest: str | None = None
    config_digest: str | None = None
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Release anything the source holds open (temporary blobs, sockets)."""


class ImageSource(abc.ABC):
    """One scheme (docker-archive, oci-archive, oci-dir, dir, registry, docker)."""

    scheme: str

    @abc.abstractmethod
    def open(self, location: str, options: SourceOptions) -> RawImage:
        """Open the image at `location` (the reference without its scheme) or raise SourceError."""


def iter_chunks(stream: IO[bytes], size: int = 1024 * 1024) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
