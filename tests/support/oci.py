"""A deterministic OCI image-layout writer for tests and benchmarks (our own code, no daemon).

Layers are streamed: the tar is written through a hashing pipe into the compressor and straight
into a temporary blob file, so a multi-gigabyte layer never sits in memory. The same inputs always
give the same bytes (mtime 0, uid/gid 0 for directory trees, sorted walks, gzip mtime 0, sorted
JSON), hence the same digests.

Paths of `TarItem`s are written exactly as given so tests can build hostile layers ("../x",
"/abs", whiteouts). Moving images elsewhere (docker-archive, oci-archive, a registry) goes
through the real skopeo.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zstandard

__all__ = [
    "EPOCH",
    "FORMAT_VERSION",
    "MEDIA_TYPE_CONFIG",
    "MEDIA_TYPE_INDEX",
    "MEDIA_TYPE_MANIFEST",
    "LayerSource",
    "OciImage",
    "OciImageIndex",
    "SkopeoError",
    "TarItem",
    "build_image_index",
    "build_oci_layout",
    "canonical_json",
    "push",
    "run_skopeo",
    "sha256_digest",
    "to_docker_archive",
    "to_oci_archive",
    "write_layer",
]

FORMAT_VERSION = "1"
"""Bump whenever the bytes this writer produces change: cached images are keyed on it."""
EPOCH = "1970-01-01T00:00:00Z"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
COPY_CHUNK = 1024 * 1024
TAR_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


class SkopeoError(RuntimeError):
    """skopeo failed; the message holds its stderr (never the credentials we passed it)."""


@dataclass(frozen=True)
class TarItem:
    """One entry of a synthetic layer, written to the tar exactly as described."""

    path: str
    """Name in the tar, verbatim: may be absolute, contain '..' or be a whiteout ('.wh.x')."""
    data: bytes = b""
    """File content (kind 'file' only)."""
    kind: str = "file"
    """file, dir, symlink, hardlink, char, block or fifo."""
    mode: int = 0o644
    """Permission bits (setuid/setgid/sticky included)."""
    uid: int = 0
    """Numeric owner."""
    gid: int = 0
    """Numeric group."""
    link_target: str = ""
    """Target of a symlink, or the earlier path a hardlink points at."""
    device_major: int = 0
    """Major number of a char/block device."""
    device_minor: int = 0
    """Minor number of a char/block device."""
    mtime: int = 0
    """Modification time in seconds since the epoch (0 keeps layers reproducible)."""

    def tar_info(self) -> tarfile.TarInfo:
        """The tar header for this item; the name is not normalised on purpose."""
        if self.kind not in TAR_KINDS:
            raise ValueError(f"unknown TarItem kind {self.kind!r}; use one of {sorted(TAR_KINDS)}")
        info = tarfile.TarInfo(self.path)
        info.type = TAR_KINDS[self.kind]
        info.mode = self.mode
        info.uid, info.gid = self.uid, self.gid
        info.uname = info.gname = ""
        info.mtime = self.mtime
        info.linkname = self.link_target
        info.devmajor, info.devminor = self.device_major, self.device_minor
        info.size = len(self.data) if self.kind == "file" else 0
        return info


LayerSource = Iterable[TarItem] | Path
"""A layer: TarItems (a list, or a generator to stream a big layer in bounded memory), a directory
tree (Path to a dir) or a ready tar file (Path to a `.tar`)."""


@dataclass(frozen=True)
class OciImage:
    """One image (manifest) written into an OCI image layout."""

    path: Path
    """The layout directory (holds oci-layout, index.json, blobs/)."""
    tag: str
    """The `org.opencontainers.image.ref.name` of this image in index.json."""
    manifest_digest: str
    """sha256:… of the manifest blob; what `skopeo inspect` reports as Digest."""
    config_digest: str
    """sha256:… of the config blob (the image id)."""
    layer_digests: tuple[str, ...]
    """sha256:… of each (compressed) layer blob, bottom first."""
    diff_ids: tuple[str, ...]
    """sha256:… of each uncompressed layer tar, bottom first (config rootfs.diff_ids)."""
    layer_media_types: tuple[str, ...] = ()
    """Media type of each layer blob."""
    platform: str = "linux/amd64"
    """os/architecture[/variant] in the config."""

    @property
    def skopeo_ref(self) -> str:
        """The skopeo transport reference, `oci:DIR:TAG`."""
        return f"oci:{self.path}:{self.tag}"

    def blob_path(self, digest: str) -> Path:
        """Where a blob of this layout lives on disk."""
        algorithm, _, hex_digest = digest.partition(":")
        return self.path / "blobs" / algorithm / hex_digest

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest document."""
        return dict(json.loads(self.blob_path(self.manifest_digest).read_bytes()))

    def config(self) -> dict[str, Any]:
        """The parsed config document."""
        return dict(json.loads(self.blob_path(self.config_digest).read_bytes()))


@dataclass(frozen=True)
class OciImageIndex:
    """A multi-platform image index written into an OCI image layout."""

    path: Path
    """The layout directory."""
    tag: str
    """The ref name of the index in index.json."""
    index_digest: str
    """sha256:… of the image index blob."""
    images: Mapping[str, OciImage] = field(default_factory=dict)
    """Platform (os/arch[/variant]) → the image written for it (tag = `TAG-os-arch`, not in index.json)."""

    @property
    def skopeo_ref(self) -> str:
        """The skopeo transport reference, `oci:DIR:TAG`."""
        return f"oci:{self.path}:{self.tag}"


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the same document always gives the same bytes."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def sha256_digest(data: bytes) -> str:
    """sha256:… of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Sink(Protocol):
    """Anything bytes can be written to and that can be closed (a file, a compressor)."""

    def write(self, data: Any, /) -> int: ...

    def close(self) -> None: ...


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it into another file."""

    def __init__(self, target: _Sink) -> None:
        super().__init__()
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.target.write(view)
        self.size += len(view)
        return len(view)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class _LayerWriter:
    """Streams one uncompressed tar through a compressor into a temporary blob file.

    Pipe: tar bytes → hash (diff_id) → compressor → hash (blob digest) → temp file.
    """

    def __init__(self, blobs_dir: Path, compression: str) -> None:
        if compression not in LAYER_MEDIA_TYPES:
            raise ValueError(f"compression {compression!r} is not one of {sorted(LAYER_MEDIA_TYPES)}")
        self.compression = compression
        self.blobs_dir = blobs_dir
        handle, name = tempfile.mkstemp(dir=blobs_dir, prefix=".layer-")
        self.temp_path = Path(name)
        self.temp_file = os.fdopen(handle, "wb")
        self.compressed = _HashingWriter(self.temp_file)
        self.compressor: _Sink
        if compression == "gzip":
            # filename="" and mtime=0 keep the gzip header free of anything that varies.
            self.compressor = gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=self.compressed,
                                            mtime=0)
        elif compression == "zstd":
            self.compressor = zstandard.ZstdCompressor(level=3).stream_writer(self.compressed,  # type: ignore[arg-type]
                                                                              closefd=False)
        else:
            self.compressor = self.compressed
        self.uncompressed = _HashingWriter(self.compressor)

    def finish(self) -> dict[str, Any]:
        """Close the pipe, move the blob to its digest name; the descriptor plus the diff_id."""
        if self.compressor is not self.compressed:
            self.compressor.close()
        self.temp_file.close()
        digest = self.compressed.digest
        final = self.blobs_dir / digest.removeprefix("sha256:")
        os.chmod(self.temp_path, 0o644)
        os.replace(self.temp_path, final)
        return {
            "descriptor": {"mediaType": LAYER_MEDIA_TYPES[self.compression], "digest": digest,
                           "size": self.compressed.size},
            "diff_id": self.uncompressed.digest,
        }

    def abort(self) -> None:
        """Drop the temporary blob after a failure."""
        self.temp_file.close()
        self.temp_path.unlink(missing_ok=True)


def _write_items(tar: tarfile.TarFile, items: Iterable[TarItem]) -> None:
    for item in items:
        info = item.tar_info()
        tar.addfile(info, io.BytesIO(item.data) if item.kind == "file" else None)


def _write_tree(tar: tarfile.TarFile, root: Path) -> None:
    """A directory tree: sorted, uid/gid 0, mtime 0; hardlinks, symlinks and devices kept."""
    for current, directories, files in os.walk(root):
        directories.sort()
        for name in sorted(directories + files):
            full = os.path.join(current, name)
            info = tar.gettarinfo(full, arcname=os.path.relpath(full, root))
            if info is None:  # sockets cannot be stored in a tar
                continue
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                with open(full, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)


def _copy_tar_file(source: Path, target: _Sink) -> None:
    with open(source, "rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            target.write(chunk)


_tar_layer_memo: dict[tuple[str, int, int, str], tuple[Path, dict[str, Any]]] = {}
"""Ready tar files already compressed in this process → (blob file, result): a rootfs used by
several images is compressed once, then linked."""


def _reuse_tar_layer(blobs_dir: Path, layer: Path, compression: str) -> dict[str, Any] | None:
    status = layer.stat()
    key = (str(layer.resolve()), status.st_size, status.st_mtime_ns, compression)
    if key not in _tar_layer_memo:
        return None
    blob, result = _tar_layer_memo[key]
    target = blobs_dir / blob.name
    if not blob.exists():
        return None
    if not target.exists():
        temporary = target.with_name(f".link-{os.getpid()}-{blob.name}")
        temporary.unlink(missing_ok=True)
        try:
            os.link(blob, temporary)
        except OSError:  # another filesystem
            shutil.copyfile(blob, temporary)
        os.replace(temporary, target)
    return {"descriptor": dict(result["descriptor"]), "diff_id": result["diff_id"]}


def write_layer(blobs_dir: Path, layer: LayerSource, compression: str) -> dict[str, Any]:
    """Write one layer blob; returns {"descriptor": {...}, "diff_id": "sha256:..."}."""
    if isinstance(layer, Path) and layer.is_file():
        reused = _reuse_tar_layer(blobs_dir, layer, compression)
        if reused is not None:
            return reused
    writer = _LayerWriter(blobs_dir, compression)
    try:
        if isinstance(layer, Path) and layer.is_file():
            # A ready tar is used byte for byte (no re-tarring), so its digest is the diff_id.
            status = layer.stat()
            _copy_tar_file(layer, writer.uncompressed)
            result = writer.finish()
            blob = blobs_dir / result["descriptor"]["digest"].removeprefix("sha256:")
            memo_key = (str(layer.resolve()), status.st_size, status.st_mtime_ns, compression)
            _tar_layer_memo[memo_key] = (blob, result)
            return result
        with tarfile.open(fileobj=writer.uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if isinstance(layer, Path):
                if not layer.is_dir():
                    raise FileNotFoundError(f"layer source {layer} is neither a directory nor a tar file")
                _write_tree(tar, layer)
            else:
                _write_items(tar, layer)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def _put_blob(blobs_dir: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    target = blobs_dir / digest.removeprefix("sha256:")
    if not target.exists():
        temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        temporary.write_bytes(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    return digest


def _split_platform(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r} must be os/architecture[/variant], e.g. linux/amd64")
    described = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        described["variant"] = parts[2]
    return described


def _prepare_layout(out: Path) -> Path:
    blobs_dir = out / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return blobs_dir


def _add_to_index(out: Path, entry: dict[str, Any]) -> None:
    """Append to index.json, replacing an earlier entry with the same ref name (a re-tag)."""
    index_file = out / "index.json"
    if index_file.exists():
        index = json.loads(index_file.read_bytes())
    else:
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}
    name = entry["annotations"][REF_NAME_ANNOTATION]
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get(REF_NAME_ANNOTATION) != name] + [entry]
    temporary = index_file.with_name(f".index-{os.getpid()}.json")
    temporary.write_bytes(canonical_json(index))
    os.replace(temporary, index_file)


def _write_image_blobs(
    out: Path,
    layers: Sequence[LayerSource],
    *,
    tag: str,
    config: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    compression: str,
    platform: str,
    annotations: Mapping[str, str] | None,
) -> tuple[OciImage, dict[str, Any]]:
    """Layers, config and manifest blobs; returns the image and its index descriptor."""
    blobs_dir = _prepare_layout(out)
    written = [write_layer(blobs_dir, layer, compression) for layer in layers]
    diff_ids = [layer["diff_id"] for layer in written]
    if history is None:
        history = [{"created": EPOCH, "created_by": f"ci-gate tests: layer {number}"}
                   for number in range(1, len(layers) + 1)]
    image_config: dict[str, Any] = {
        **_split_platform(platform),
        "created": EPOCH,
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [dict(entry) for entry in history],
    }
    config_bytes = canonical_json(image_config)
    config_digest = _put_blob(blobs_dir, config_bytes)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [layer["descriptor"] for layer in written],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = canonical_json(manifest)
    manifest_digest = _put_blob(blobs_dir, manifest_bytes)
    image = OciImage(
        path=out,
        tag=tag,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digests=tuple(layer["descriptor"]["digest"] for layer in written),
        diff_ids=tuple(diff_ids),
        layer_media_types=tuple(layer["descriptor"]["mediaType"] for layer in written),
        platform=platform,
    )
    descriptor = {"mediaType": MEDIA_TYPE_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
    return image, descriptor


def build_oci_layout(
    out: Path,
    layers: Sequence[LayerSource],
    *,
    tag: str = "latest",
    config: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    compression: str = "gzip",
    platform: str = "linux/amd64",
    annotations: Mapping[str, str] | None = None,
) -> OciImage:
    """Write (or add a tag to) an OCI image layout at `out`; byte-for-byte deterministic.

    `layers` bottom first; each is a list of TarItems, a directory (walked sorted, uid/gid 0,
    mtime 0) or a `.tar` file used verbatim. `config` is the image's `config` object (Env, User,
    Cmd, ExposedPorts, Labels…). `history` defaults to one entry per layer. `annotations` go on
    the manifest. Writing another tag into the same `out` appends to index.json.
    """
    image, descriptor = _write_image_blobs(out, layers, tag=tag, config=config, history=history,
                                           compression=compression, platform=platform,
                                           annotations=annotations)
    descriptor["annotations"] = {REF_NAME_ANNOTATION: tag}
    _add_to_index(out, descriptor)
    return image


def build_image_index(
    out: Path,
    platforms: Mapping[str, Sequence[LayerSource]],
    *,
    tag: str = "latest",
    config: Mapping[str, Any] | None = None,
    compression: str = "gzip",
) -> OciImageIndex:
    """Write a multi-platform image index (e.g. linux/amd64 + linux/arm64) under one tag.

    Each platform gets its own manifest and config (architecture/os set from the key); the
    index.json entry for `tag` points at an image index blob listing them with their platform.
    """
    images: dict[str, OciImage] = {}
    entries: list[dict[str, Any]] = []
    for platform in sorted(platforms):
        image, descriptor = _write_image_blobs(
            out, platforms[platform], tag=f"{tag}-{platform.replace('/', '-')}", config=config,
            history=None, compression=compression, platform=platform, annotations=None)
        descriptor["platform"] = _split_platform(platform)
        images[platform] = image
        entries.append(descriptor)
    index_bytes = canonical_json({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": entries})
    index_digest = _put_blob(out / "blobs" / "sha256", index_bytes)
    _add_to_index(out, {"mediaType": MEDIA_TYPE_INDEX, "digest": index_digest, "size": len(index_bytes),
                        "annotations": {REF_NAME_ANNOTATION: tag}})
    return OciImageIndex(path=out, tag=tag, index_digest=index_digest, images=images)


def run_skopeo(arguments: Sequence[str], *, secret: str | None = None, timeout: float = 300) -> str:
    """Run skopeo; on failure raise SkopeoError with its stderr, never echoing `secret`."""
    from tests.support.tools import require_tool  # here: examples/build_images.py uses this module alone

    skopeo = require_tool("skopeo")
    result = subprocess.run([skopeo, *arguments], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        message = result.stderr.strip()
        if secret:
            message = message.replace(secret, "***")
        shown = [argument for argument in arguments if secret is None or secret not in argument]
        raise SkopeoError(f"skopeo {' '.join(shown)} failed (rc {result.returncode}): {message}")
    return result.stdout


def _copy_to_file(source: str, transport: str, out_file: Path, reference: str) -> Path:
    out_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_file.with_name(f".{out_file.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        run_skopeo(["copy", "-q", source, f"{transport}:{temporary}:{reference}"])
        os.replace(temporary, out_file)
    finally:
        temporary.unlink(missing_ok=True)
    return out_file


def to_docker_archive(oci: OciImage, out_file: Path, ref: str) -> Path:
    """`skopeo copy oci:DIR:TAG docker-archive:FILE:REF` (layers become uncompressed tars)."""
    return _copy_to_file(oci.skopeo_ref, "docker-archive", out_file, ref)


def to_oci_archive(oci: OciImage, out_file: Path, tag: str | None = None) -> Path:
    """`skopeo copy oci:DIR:TAG oci-archive:FILE:TAG` (a tar of an OCI layout)."""
    return _copy_to_file(oci.skopeo_ref, "oci-archive", out_file, tag or oci.tag)


def push(
    oci: OciImage | OciImageIndex,
    registry_host: str,
    repo_tag: str,
    creds: tuple[str, str] | None = None,
) -> str:
    """Push with skopeo over plain HTTP to `registry_host/repo_tag`; returns that reference.

    Digests are preserved (skopeo fails rather than rewrite the manifest). An index is pushed
    with all its platforms.
    """
    destination = f"{registry_host}/{repo_tag}"
    arguments = ["copy", "-q", "--dest-tls-verify=false", "--preserve-digests"]
    if isinstance(oci, OciImageIndex):
        arguments.append("--all")
    secret = None
    if creds is not None:
        secret = creds[1]
        arguments.append(f"--dest-creds={creds[0]}:{creds[1]}")
    run_skopeo([*arguments, oci.skopeo_ref, f"docker://{destination}"], secret=secret)
    return destination
