"""`oci-archive:PATH[:TAG]` — a tar of an OCI image layout (skopeo `oci-archive:`, buildah, podman save).

Read in place with random access (see `ci_gate.sources.archive`): nothing is extracted, layer blobs
stream from their offsets in the tar. A gzip/zstd-compressed archive is first decompressed into a
private temporary file, deleted on close().
"""

from __future__ import annotations

import os
import tarfile
from typing import Any

from ci_gate.errors import SourceError
from ci_gate.sources.archive import ClosingRawImage, TarArchive, open_tar_image
from ci_gate.sources.interface import ImageSource, LayerBlob, RawImage, SourceOptions
from ci_gate.sources.oci_layout import (
    Descriptor,
    FetchDocument,
    ResolvedImage,
    parse_index,
    resolve_layout,
    split_location_tag,
)


class OciArchiveSource(ImageSource):
    scheme = "oci-archive"

    def open(self, location: str, options: SourceOptions) -> RawImage:
        path, tag = split_location_tag(location, os.path.isfile)
        where = f"oci-archive:{path}"

        def open_tar(tar_path: str) -> ClosingRawImage:
            archive = TarArchive(tar_path, where)
            if archive.find("oci-layout") is None:
                hint = " (it has manifest.json: use docker-archive:)" if archive.find("manifest.json") else ""
                raise SourceError(f"{where}: not an OCI archive, no oci-layout member{hint}")
            resolved, layers = open_layout_in_archive(archive, tag, options)
            return resolved.opened(f"oci-archive:{location}", self.scheme, layers)

        return open_tar_image(path, where, options.limits.max_image_bytes, open_tar)


def open_layout_in_archive(archive: TarArchive, tag: str | None,
                           options: SourceOptions) -> tuple[ResolvedImage, list[LayerBlob]]:
    """Resolve the OCI layout inside a tar (oci-archive, or the newer docker save format)."""
    index = read_archive_index(archive, options.limits.max_metadata_bytes)
    fetch = archive_fetcher(archive, options.limits.max_metadata_bytes)
    resolved = resolve_layout(fetch, index, tag, options, archive.where)
    return resolved, archive_layers(archive, resolved)


def read_archive_index(archive: TarArchive, limit: int) -> dict[str, Any]:
    """The layout's index.json inside the archive, size-limited and parsed."""
    index_member = archive.require("index.json", "the layout's")
    return parse_index(archive.read(index_member, limit), limit, archive.where)


def _blob_member(archive: TarArchive, digest: str, what: str) -> tarfile.TarInfo:
    algorithm, hex_digest = digest.split(":", 1)
    member = archive.find(f"blobs/{algorithm}/{hex_digest}")
    if member is None:
        raise SourceError(f"{archive.where}: the {what} names blob {digest} which is missing from the "
                          "archive; the archive is incomplete, re-export it")
    return member


def archive_fetcher(archive: TarArchive, limit: int) -> FetchDocument:
    """Read metadata blobs from blobs/<algorithm>/<hex> members (the resolver verifies them)."""

    def fetch(descriptor: Descriptor, what: str) -> bytes:
        return archive.read(_blob_member(archive, descriptor.digest, what), limit)

    return fetch


def archive_layers(archive: TarArchive, resolved: ResolvedImage) -> list[LayerBlob]:
    """The resolved image's layers as byte ranges of the archive, each checked to exist with its size."""
    layers: list[LayerBlob] = []
    for position, layer in enumerate(resolved.layers):
        member = _blob_member(archive, layer.digest, f"manifest (layer {position})")
        if member.size != layer.size:
            raise SourceError(f"{archive.where}: layer blob {layer.digest} is {member.size} bytes but the "
                              f"manifest says {layer.size}; the archive is corrupt, re-export it")
        layers.append(archive.blob(member, layer.digest, layer.media_type, layer.diff_id))
    return layers
