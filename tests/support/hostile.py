"""Hostile image inputs, generated on demand and small on disk: the red-team corpus of ci-gate.

Each input is an OCI image layout (or a docker-archive) written by streaming: tar bytes are made
chunk by chunk and go straight through gzip into the blob file, so a layer holding a 250 MB file of
repeated bytes costs 250 KB on disk and no memory. Digests may be sha256 or sha512 (the OCI spec
allows both; ci-gate must verify both). Tar members are written by hand where Python's `tarfile`
would refuse to write what an attacker writes (a negative PAX size, a 16 MiB name).

`CORPUS` names every input the hardening tests and `bench/hostile_rss.py` run; each entry builds its
input into a folder and says what `ci-gate analyze` must answer.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 512
CHUNK = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

Layer = Iterable[bytes]
"""A layer as the chunks of its uncompressed tar stream."""


# --- tar members -----------------------------------------------------------------------------------


def header(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644,
           link: str = "", pax: dict[str, str] | None = None) -> bytes:
    """One member's header blocks (a PAX extended header first when `pax` is given or a name is
    longer than ustar holds), as written."""
    records = dict(pax or {})
    if len(name.encode("utf-8", "surrogateescape")) >= 100:
        records.setdefault("path", name)
    if len(link.encode("utf-8", "surrogateescape")) >= 100:
        records.setdefault("linkpath", link)
    info = tarfile.TarInfo("long-name" if "path" in records else name)
    info.size = size
    info.type = kind
    info.mode = mode
    info.linkname = "" if "linkpath" in records else link
    info.mtime = 0
    blocks = pax_header(records) if records else b""
    # ustar's octal size field stops below 8 GiB; GNU's base-256 form carries more.
    kind_of_header = tarfile.USTAR_FORMAT if size < 8**11 else tarfile.GNU_FORMAT
    return blocks + info.tobuf(format=kind_of_header, encoding="utf-8", errors="surrogateescape")


def pax_header(records: dict[str, str]) -> bytes:
    """A PAX extended header ('x') with the records verbatim, even ones tarfile would never write."""
    payload = b"".join(_pax_record(key, value) for key, value in records.items())
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(payload)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + payload + padding(len(payload))


def _pax_record(key: str, value: str) -> bytes:
    """`LENGTH key=value\n`, where LENGTH counts the whole record, its own digits included."""
    body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
    length = len(body) + len(str(len(body)))
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def gnu_long_name(name: str) -> bytes:
    """A GNU 'L' record carrying a long name for the next member."""
    data = name.encode("utf-8", "surrogateescape") + b"\0"
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = len(data)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + padding(len(data))


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def file_member(name: str, size: int, fill: bytes = b"\0", *, mode: int = 0o644,
                pax: dict[str, str] | None = None) -> Iterator[bytes]:
    """A regular file of `size` bytes of `fill` repeated (compresses to almost nothing)."""
    yield header(name, size, mode=mode, pax=pax)
    piece = (fill * (CHUNK // len(fill) + 1))[:CHUNK]
    left = size
    while left:
        step = min(left, CHUNK)
        yield piece[:step]
        left -= step
    yield padding(size)


def data_member(name: str, data: bytes, *, mode: int = 0o644, pax: dict[str, str] | None = None) -> Iterator[bytes]:
    yield header(name, len(data), mode=mode, pax=pax)
    yield data
    yield padding(len(data))


def directory_member(name: str, *, pax: dict[str, str] | None = None) -> Iterator[bytes]:
    yield header(name, 0, tarfile.DIRTYPE, mode=0o755, pax=pax)


def end_of_archive() -> Iterator[bytes]:
    yield b"\0" * (2 * BLOCK)


def layer(*members: Iterable[bytes]) -> Iterator[bytes]:
    """A whole layer: the members, then the end-of-archive blocks."""
    for member in members:
        yield from member
    yield from end_of_archive()


# --- layouts ---------------------------------------------------------------------------------------


@dataclass
class HostileImage:
    """One written OCI layout."""

    path: Path
    algorithm: str
    layer_digests: list[str]
    diff_ids: list[str]
    manifest_digest: str
    config_digest: str

    @property
    def reference(self) -> str:
        return f"oci-dir:{self.path}"

    def blob(self, digest: str) -> Path:
        algorithm, _, hexadecimal = digest.partition(":")
        return self.path / "blobs" / algorithm / hexadecimal


def _digest(algorithm: str, data: bytes) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def write_blob(blobs: Path, algorithm: str, data: bytes) -> str:
    digest = _digest(algorithm, data)
    target = blobs / algorithm / digest.partition(":")[2]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return digest


def write_layer(blobs: Path, algorithm: str, chunks: Layer) -> tuple[str, str, int]:
    """(blob digest, diff id, size) of one gzip layer streamed from `chunks`.

    The tar stream is cut into 1 MiB pieces, each compressed as its own gzip member (a valid
    multi-member gzip, as `cat a.gz b.gz` makes); identical pieces reuse their compressed bytes, so a
    layer of gigabytes of repeated bytes is written in the time it takes to hash it."""
    (blobs / algorithm).mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=blobs, prefix=".layer-")
    uncompressed = hashlib.new(algorithm)
    stored = hashlib.new(algorithm)
    memo: dict[bytes, bytes] = {}
    buffer = bytearray()

    def emit(piece: bytes, raw: Any) -> None:
        packed = memo.get(piece) if len(piece) == CHUNK else None
        if packed is None:
            packed = gzip.compress(piece, compresslevel=9, mtime=0)
            if len(piece) == CHUNK and len(memo) < 64:
                memo[piece] = packed
        stored.update(packed)
        raw.write(packed)

    with os.fdopen(handle, "wb") as raw:
        for chunk in chunks:
            uncompressed.update(chunk)
            buffer += chunk
            while len(buffer) >= CHUNK:
                emit(bytes(buffer[:CHUNK]), raw)
                del buffer[:CHUNK]
        if buffer:
            emit(bytes(buffer), raw)
    digest = f"{algorithm}:{stored.hexdigest()}"
    target = blobs / algorithm / stored.hexdigest()
    os.replace(name, target)
    return digest, f"{algorithm}:{uncompressed.hexdigest()}", target.stat().st_size


def write_image(out: Path, layers: Iterable[Layer], *, algorithm: str = "sha256",
                config: dict[str, Any] | None = None, manifest_edit: Callable[[dict[str, Any]], None] | None = None,
                index_edit: Callable[[dict[str, Any]], None] | None = None,
                raw_manifest: bytes | None = None) -> HostileImage:
    """An OCI layout at `out`, every digest with `algorithm`; the edit hooks make hostile documents."""
    blobs = out / "blobs"
    written = [write_layer(blobs, algorithm, chunks) for chunks in layers]
    image_config = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id, _ in written]},
        "history": [{"created_by": f"hostile layer {number}"} for number in range(1, len(written) + 1)],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_digest = write_blob(blobs, algorithm, config_bytes)
    manifest: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": size} for digest, _, size in written],
    }
    if manifest_edit is not None:
        manifest_edit(manifest)
    manifest_bytes = raw_manifest if raw_manifest is not None else json.dumps(manifest).encode()
    manifest_digest = write_blob(blobs, algorithm, manifest_bytes)
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    if index_edit is not None:
        index_edit(index)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (out / "index.json").write_text(json.dumps(index))
    return HostileImage(out, algorithm, [digest for digest, _, _ in written], [d for _, d, _ in written],
                        manifest_digest, config_digest)


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def write_gzipped_docker_archive(out_file: Path, member_size: int) -> Path:
    """A `docker save | gzip` whose single member inflates to `member_size` bytes of zeros: the outer
    archive bomb (it must be spooled to disk before it can be read). Multi-member gzip, as above."""
    zeros = gzip.compress(b"\0" * CHUNK, compresslevel=9, mtime=0)
    with open(out_file, "wb") as out:
        out.write(gzip.compress(header("0" * 64 + "/layer.tar", member_size), mtime=0))
        for _ in range(member_size // CHUNK):
            out.write(zeros)
        out.write(gzip.compress(b"\0" * (member_size % CHUNK) + padding(member_size) + b"\0" * 2 * BLOCK, mtime=0))
    return out_file


# --- the corpus -------------------------------------------------------------------------------------

MiB = 1024 * 1024

PACKAGE_JSON = '{{"name": "{name}", "version": "{version}", "license": "MIT"}}'


def _npm_package(name: str, version: str) -> Iterator[bytes]:
    return data_member(f"app/node_modules/{name}/package.json",
                       PACKAGE_JSON.format(name=name, version=version).encode())


@dataclass
class Case:
    """One hostile input and what `ci-gate analyze -o json` must do with it."""

    name: str
    build: Callable[[Path], str]
    """Writes the input under the folder given; returns the image reference to analyse."""
    exit_code: int
    """0: analysed (with warnings); 2: refused with one clear line."""
    stderr_has: str = ""
    """A fragment of the one error line (exit 2)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment for every run of the input."""
    test_env: dict[str, str] = field(default_factory=dict)
    """Added for the test suite only: a lower limit that shows the same mechanism in less time."""


def _rpmdb_layers(folder: Path) -> str:
    # Six versions of a 250 MB rpm database: every one is evidence, the last one is what ships.
    layers = [layer(file_member("var/lib/rpm/Packages", 250 * MiB, bytes([index + 1]) * 4096))
              for index in range(6)]
    return write_image(folder / "oci", layers).reference


def _many_package_json(folder: Path) -> str:
    # 300 package.json files of 4 MiB each (the npm cataloger's read limit), plus two real packages.
    members: list[Iterable[bytes]] = [_npm_package("lodash", "4.17.21"), _npm_package("express", "4.18.2")]
    for number in range(300):
        padding_text = "x" * (4 * MiB - 100)
        document = f'{{"name": "pad{number}", "version": "1.0.0", "description": "{padding_text}"}}'
        members.append(data_member(f"app/node_modules/pad{number}/package.json", document.encode()[:4 * MiB]))
    return write_image(folder / "oci", [layer(*members)]).reference


def _long_names(folder: Path) -> str:
    # 40,000 entries whose names are 4,000 characters each: 160 MB of names from a tiny layer.
    members = (directory_member(f"d{number:05d}/" + "n" * 3990) for number in range(40_000))
    return write_image(folder / "oci", [layer(*members)]).reference


def _huge_pax_path(folder: Path) -> str:
    return write_image(folder / "oci", [layer(data_member("x", b"", pax={"path": "a" * (16 * MiB - 64)}))]).reference


def _negative_pax_size(folder: Path) -> str:
    return write_image(folder / "oci", [layer(data_member("etc/x", b"", pax={"size": "-5"}))]).reference


def _deep_directories(depth: int) -> Callable[[Path], str]:
    def build(folder: Path) -> str:
        members = (directory_member("d/" * level) for level in range(1, depth + 1))
        return write_image(folder / "oci", [layer(*members, data_member("d/" * depth + "f", b"deep\n"))]).reference
    return build


def _deep_manifest(folder: Path) -> str:
    image = write_image(folder / "oci", [layer(data_member("etc/x", b"x"))],
                        raw_manifest=nested_json(100_000).encode())
    return image.reference


def _deep_index(folder: Path) -> str:
    image = write_image(folder / "oci", [layer(data_member("etc/x", b"x"))])
    nested = nested_json(100_000).encode()
    digest = write_blob(image.path / "blobs", "sha256", nested)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": digest, "size": len(nested)}]}
    (image.path / "index.json").write_text(json.dumps(index))
    return image.reference


def _huge_media_type(folder: Path) -> str:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["mediaType"] = "application/" + "z" * (10 * MiB)
    return write_image(folder / "oci", [layer(data_member("etc/x", b"x"))], manifest_edit=edit).reference


def _jar_bombs(folder: Path) -> str:
    import io
    import zipfile

    # A nested jar stored uncompressed inside is 100 MiB of zeros; deflated in the outer jar it is a
    # fraction of a megabyte. Ten of them per jar inflate to 1 GiB, ten jars to 10 GiB.
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as nested:
        nested.writestr("zeros.bin", b"\0" * (100 * MiB))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Title: bomb\n")
        for index in range(10):
            archive.writestr(f"lib/inner{index}.jar", inner.getvalue())
    jar = buffer.getvalue()
    members = [data_member(f"app/bomb{number}.jar", jar) for number in range(10)]
    return write_image(folder / "oci", [layer(*members)]).reference


def _lone_surrogate(folder: Path) -> str:
    evil = b'{"name": "evil\\ud800", "version": "1.0.0", "author": "\\udc00"}'
    return write_image(folder / "oci", [layer(_npm_package("lodash", "4.17.21"), _npm_package("express", "4.18.2"),
                                              data_member("app/node_modules/evil/package.json", evil))]).reference


def _outer_gzip_bomb(folder: Path) -> str:
    return f"docker-archive:{write_gzipped_docker_archive(folder / 'bomb.tar.gz', 512 * MiB)}"


def _unknown_algorithm(folder: Path) -> str:
    def edit(index: dict[str, Any]) -> None:
        index["manifests"][0]["digest"] = "sha384:" + "0" * 96
    return write_image(folder / "oci", [layer(data_member("etc/x", b"x"))], index_edit=edit).reference


def _non_utf8_name(folder: Path) -> str:
    return write_image(folder / "oci", [layer(data_member("etc/caf\udce9", b"x"))]).reference


CORPUS: list[Case] = [
    Case("rpmdb-6x250MB", _rpmdb_layers, 0),
    Case("package-json-300x4MiB", _many_package_json, 0),
    Case("names-40000x4000", _long_names, 2, "names, link targets and PAX records exceed"),
    Case("pax-path-16MiB", _huge_pax_path, 2, "oversized tar metadata record"),
    Case("pax-size-negative", _negative_pax_size, 2, "negative PAX size"),
    Case("directories-2000-deep", _deep_directories(2000), 0),
    Case("directories-10000-deep", _deep_directories(10_000), 2, "longer than PATH_MAX"),
    Case("manifest-nested-100000", _deep_manifest, 2, "nested too deeply"),
    Case("index-nested-100000", _deep_index, 2, "nested too deeply"),
    Case("media-type-10MB", _huge_media_type, 2, "which is not a filesystem layer"),
    Case("jar-bombs-10x1GiB", _jar_bombs, 0, test_env={"CI_GATE_MAX_ARCHIVE_INFLATION_BYTES": "300M"}),
    Case("npm-lone-surrogate", _lone_surrogate, 0),
    Case("docker-archive-gzip-512MiB", _outer_gzip_bomb, 2, "larger than the image size limit",
         {"CI_GATE_MAX_IMAGE_BYTES": "64M"}),
    Case("digest-sha384", _unknown_algorithm, 2, "not a valid sha256/sha512 digest"),
    Case("file-name-not-utf8", _non_utf8_name, 0),
]
"""Every hostile input; `bench/hostile_rss.py` measures the peak memory of each."""
