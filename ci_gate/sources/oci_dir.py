"""`oci-dir:PATH[:TAG]` — an OCI image layout directory (umoci, skopeo `oci:`, buildah, buildx type=oci).

index.json → (nested index) → manifest → config, each verified; layers are the blob files under
blobs/<algorithm>/<hex>, streamed straight from disk. Blob paths are built from validated digests
only, so a hostile descriptor cannot name a file outside the layout.
"""

from __future__ import annotations

import os

from ci_gate.errors import SourceError
from ci_gate.sources.archive import FileBlob
from ci_gate.sources.interface import ImageSource, LayerBlob, RawImage, SourceOptions
from ci_gate.sources.oci_layout import (
    Descriptor,
    parse_index,
    read_limited,
    resolve_layout,
    split_location_tag,
)


class OciDirSource(ImageSource):
    scheme = "oci-dir"

    def open(self, location: str, options: SourceOptions) -> RawImage:
        path, tag = split_location_tag(location, os.path.isdir)
        where = f"oci-dir:{path}"
        if not os.path.exists(path):
            raise SourceError(f"{where}: no such directory; check the path")
        if not os.path.isdir(path):
            raise SourceError(f"{where}: not a directory; use oci-archive: for a tar of a layout")
        if not os.path.isfile(os.path.join(path, "oci-layout")):
            raise SourceError(f"{where}: not an OCI image layout (no oci-layout file); use dir: for a root "
                              "filesystem, or export the image with skopeo copy ... oci:DIR:TAG")
        index_path = os.path.join(path, "index.json")
        limit = options.limits.max_metadata_bytes
        try:
            with open(index_path, "rb") as handle:
                index_data = read_limited(handle, limit)
        except FileNotFoundError:
            raise SourceError(f"{where}: index.json is missing; the layout is incomplete, re-export "
                              "it") from None
        except OSError as error:
            raise SourceError(f"{where}: cannot read index.json ({error.strerror})") from None
        index = parse_index(index_data, limit, where)

        layout_root = os.path.realpath(path)

        def blob_path(digest: str, what: str) -> str:
            algorithm, hex_digest = digest.split(":", 1)
            candidate = os.path.join(path, "blobs", algorithm, hex_digest)
            if not os.path.isfile(candidate):
                raise SourceError(f"{where}: the {what} names blob {digest} which is missing from the "
                                  "layout; the layout is incomplete, re-export it")
            # A blob symlinked out of the layout would make us read an arbitrary host file.
            if os.path.commonpath([os.path.realpath(candidate), layout_root]) != layout_root:
                raise SourceError(f"{where}: blob {digest} is a link that leads outside the layout; refusing "
                                  "to read it, re-export the image")
            return candidate

        def fetch(descriptor: Descriptor, what: str) -> bytes:
            try:
                with open(blob_path(descriptor.digest, what), "rb") as handle:
                    return read_limited(handle, limit)
            except OSError as error:
                raise SourceError(f"{where}: cannot read {what} blob {descriptor.digest} "
                                  f"({error.strerror})") from None

        resolved = resolve_layout(fetch, index, tag, options, where)
        layers: list[LayerBlob] = []
        for position, layer in enumerate(resolved.layers):
            file_path = blob_path(layer.digest, f"manifest (layer {position})")
            actual_size = os.path.getsize(file_path)
            if actual_size != layer.size:
                raise SourceError(f"{where}: layer blob {layer.digest} is {actual_size} bytes but the "
                                  f"manifest says {layer.size}; the layout is corrupt, re-export it")
            layers.append(FileBlob(file_path, 0, actual_size, layer.digest, layer.media_type, layer.diff_id,
                                   where))
        return resolved.opened(f"oci-dir:{location}", self.scheme, layers)
