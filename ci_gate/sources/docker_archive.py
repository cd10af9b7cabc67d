"""`docker-archive:PATH[:REPO:TAG]` — `docker save` / skopeo `docker-archive:` output, read in place.

Two layouts exist and both are read without extracting anything:

- legacy: `manifest.json` = [{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<id>/layer.tar" |
  "<diffid>.tar", ...]}]; layers are uncompressed tars (sometimes gzip), duplicate layers may be
  symlinks to another member;
- newer (Docker 25+): the same `manifest.json` next to an OCI layout (`oci-layout`, `index.json`,
  `blobs/sha256/...`). The OCI layout is used when it names the same config, which also gives the
  manifest digest; otherwise the archive is read as legacy.

A legacy archive has no manifest and so no stored-blob digests: an uncompressed layer's digest is
its diff id (the two are the same bytes), a gzip layer's digest is computed once on open. The
config is checked against the digest in its file name (the image id).
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from typing import Any

from ci_gate.errors import LimitExceededError, SourceError, clipped, quoted
from ci_gate.sources.archive import (
    ClosingRawImage,
    TarArchive,
    is_compressed,
    open_tar_image,
)
from ci_gate.sources.interface import ImageSource, LayerBlob, SourceOptions
from ci_gate.sources.oci_archive import archive_fetcher, archive_layers, read_archive_index
from ci_gate.sources.oci_layout import (
    CONTAINERD_NAME_ANNOTATION,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    DOCKER_LAYER_ZSTD,
    Descriptor,
    ResolvedImage,
    config_diff_ids,
    digest_of,
    new_hasher,
    parse_json_object,
    resolve_image,
    split_location_tag,
    without_lone_surrogates,
)

_DIGEST_IN_NAME = re.compile(
    r"(?:^|/)(?:blobs/(sha256|sha512)/)?([a-f0-9]{64}|[a-f0-9]{128})(?:\.json|\.tar)?$")


class DockerArchiveSource(ImageSource):
    scheme = "docker-archive"

    def open(self, location: str, options: SourceOptions) -> ClosingRawImage:
        path, selector = split_location_tag(location, os.path.isfile)
        where = f"docker-archive:{path}"
        return open_tar_image(path, where, options.limits.max_image_bytes, lambda tar_path: open_docker_tar(
            tar_path, where, selector, options, f"docker-archive:{location}", self.scheme))


def open_docker_tar(tar_path: str, where: str, selector: str | None, options: SourceOptions,
                    reference: str, scheme: str) -> ClosingRawImage:
    """Open a docker-save tar that lies in a seekable host file (also used by the `docker:` source)."""
    archive = TarArchive(tar_path, where)
    limit = options.limits.max_metadata_bytes
    manifest_member = archive.find("manifest.json")
    if manifest_member is None:
        if archive.find("oci-layout") is not None:
            raise SourceError(f"{where}: no manifest.json but an oci-layout: this is an OCI archive, use "
                              "oci-archive:")
        if archive.find("repositories") is not None:
            raise SourceError(f"{where}: a pre-2016 docker save archive (no manifest.json); re-save it with "
                              "a current Docker or skopeo")
        raise SourceError(f"{where}: not a docker archive (no manifest.json member); make one with docker "
                          "save or skopeo copy ... docker-archive:FILE")
    data = archive.read(manifest_member, limit)
    if len(data) > limit:
        raise LimitExceededError(f"{where}: manifest.json is larger than the metadata limit ({limit} bytes)")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SourceError(f"{where}: manifest.json is not valid JSON; the archive is corrupt, re-export "
                          "it") from None
    if b"\\ud" in data or b"\\uD" in data:
        document = without_lone_surrogates({"manifest": document})["manifest"]
    if not isinstance(document, list) or not document or not all(isinstance(item, dict) for item in document):
        raise SourceError(f"{where}: manifest.json is not a list of images; the archive is corrupt, "
                          "re-export it")
    entry = _choose_entry(document, selector, where)
    repo_tags = _repo_tags(entry)
    config_name = entry.get("Config")
    layer_names = entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list) \
            or not all(isinstance(name, str) for name in layer_names):
        raise SourceError(f"{where}: manifest.json entry lacks Config or Layers; the archive is corrupt")
    config_member = archive.require(config_name, "the image config")
    config_data = archive.read(config_member, limit)
    if len(config_data) > limit:
        raise LimitExceededError(f"{where}: the image config is larger than the metadata limit ({limit} "
                                 "bytes)")
    config_digest = _expected_digest(config_name)
    if config_digest is not None and digest_of(config_data, config_digest.split(":")[0]) != config_digest:
        raise SourceError(f"{where}: the config {quoted(config_name)} does not match its digest {config_digest}; "
                          "the archive is corrupt or was modified, re-export it")
    config_digest = config_digest or digest_of(config_data)

    if archive.find("oci-layout") is not None and archive.find("index.json") is not None:
        resolved = _resolve_oci_inside(archive, repo_tags, config_digest, options)
        if resolved is not None:
            return resolved.opened(reference, scheme, archive_layers(archive, resolved), repo_tags=repo_tags)

    config = parse_json_object(config_data, "config", where)
    diff_ids = config_diff_ids(config, where)
    if len(diff_ids) != len(layer_names):
        raise SourceError(f"{where}: manifest.json lists {len(layer_names)} layers but the config lists "
                          f"{len(diff_ids)} diff_ids; the archive is corrupt, re-export it")
    layers: list[LayerBlob] = []
    for name, diff_id in zip(layer_names, diff_ids, strict=True):
        layers.append(_legacy_layer(archive, archive.require(name, "layer"), diff_id))
    return ClosingRawImage(reference=reference, scheme=scheme, config=config, layers=layers,
                           config_digest=config_digest, repo_tags=repo_tags)


def _choose_entry(entries: list[dict[str, Any]], selector: str | None, where: str) -> dict[str, Any]:
    tags = _repo_tags
    if selector is None:
        if len(entries) == 1:
            return entries[0]
        listing = _listing([tag for entry in entries for tag in tags(entry)]) or "untagged images"
        raise SourceError(f"{where}: the archive holds {len(entries)} images ({listing}); choose one with "
                          "PATH:REPO:TAG")
    wanted = {selector, f"docker.io/{selector}", f"docker.io/library/{selector}"}
    for entry in entries:
        if wanted & set(tags(entry)):
            return entry
    listing = _listing([tag for entry in entries for tag in tags(entry)]) or "none"
    raise SourceError(f"{where}: no image tagged {quoted(selector)} in the archive (tags: {listing})")


def _listing(names: list[str], most: int = 10) -> str:
    """Tags for an error line, each quoted short, at most `most` of them (they come from the archive)."""
    shown = ", ".join(clipped(name) for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _repo_tags(entry: dict[str, Any]) -> list[str]:
    """RepoTags of a manifest.json entry (null for untagged images in docker save)."""
    tags = entry.get("RepoTags")
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def _expected_digest(member_name: str) -> str | None:
    """The digest a member's name carries (`<hex>.json`, `blobs/sha256/<hex>`, `<hex>.tar`), if any."""
    match = _DIGEST_IN_NAME.search(member_name)
    if not match:
        return None
    algorithm = match.group(1) or ("sha256" if len(match.group(2)) == 64 else "sha512")
    return f"{algorithm}:{match.group(2)}"


def _resolve_oci_inside(archive: TarArchive, repo_tags: list[str], config_digest: str,
                        options: SourceOptions) -> ResolvedImage | None:
    """The newer docker save format: resolve through its OCI layout when it names the same config."""
    index = read_archive_index(archive, options.limits.max_metadata_bytes)
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        return None
    descriptors = [Descriptor.parse(entry, f"{archive.where} (index.json)") for entry in entries]
    if len(descriptors) > 1:
        descriptors = [d for d in descriptors if d.annotations.get(CONTAINERD_NAME_ANNOTATION) in repo_tags]
    if len(descriptors) != 1:
        return None
    resolved = resolve_image(archive_fetcher(archive, options.limits.max_metadata_bytes), descriptors[0],
                             options, archive.where)
    return resolved if resolved.config_digest == config_digest else None


def _legacy_layer(archive: TarArchive, member: tarfile.TarInfo, diff_id: str) -> LayerBlob:
    blob = archive.blob(member, diff_id, DOCKER_LAYER_TAR, diff_id)
    head = blob.head(4)
    if not is_compressed(head):
        return blob
    # A compressed layer member: the manifest has no digest for it, so hash the stored bytes once.
    hasher = new_hasher(diff_id)
    with blob.open() as stream:
        while chunk := stream.read(1024 * 1024):
            hasher.update(chunk)
    blob.digest = f"{diff_id.split(':')[0]}:{hasher.hexdigest()}"
    blob.media_type = DOCKER_LAYER_GZIP if head.startswith(b"\x1f\x8b") else DOCKER_LAYER_ZSTD
    return blob
