#!/usr/bin/env python3
"""Build a large synthetic image (~1 GB uncompressed, ~100,000 files, 4 layers) for benchmarks.

The mix is meant to look like a real application image: an OS layer (a dpkg status with a few
hundred packages, their file lists, copyrights, shared libraries, zoneinfo), a Python layer
(site-packages with dist-info dirs and many modules), a Node layer (node_modules with
package.json files and many small scripts) and an application layer (many small assets, some
random incompressible blobs and a few large files).

Deterministic: everything comes from one seeded random generator per layer, so the same seed and
scale always give the same digests. Memory stays bounded: files are generated one at a time and
streamed through tar and gzip into the blob (peak ≈ the largest single file, 100 MB times scale).

The result is cached: a second run with the same parameters returns at once.

    python bench/make_synthetic.py [--out DIR] [--scale 1.0] [--seed 20240601] [--compression gzip]

prints `key: value` lines (path, tag, manifest digest, files, uncompressed bytes…).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cache import cache_dir, cached, key_of
from tests.support.oci import FORMAT_VERSION, OciImage, TarItem, build_oci_layout

GENERATOR_VERSION = "2"
"""Bump when the content recipe changes, so cached images are rebuilt."""
DEFAULT_SEED = 20240601
TEXT_POOL_BYTES = 8 * 1024 * 1024
SMALL_TEXT_POOL_BYTES = 1024 * 1024
SYNTHETIC_CONFIG = {
    "User": "10001:10001",
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_ENV=production"],
    "Cmd": ["/usr/local/bin/start-app"],
    "WorkingDir": "/srv/app",
    "ExposedPorts": {"8443/tcp": {}},
    "Labels": {"org.opencontainers.image.title": "ci-gate-synthetic-benchmark"},
}
LAYER_HISTORY = [
    "ADD rootfs.tar /  # synthetic Debian-like OS",
    "RUN pip install -r requirements.txt  # synthetic site-packages",
    "RUN npm ci  # synthetic node_modules",
    "COPY app /srv/app  # synthetic application assets and data",
]


@dataclass(frozen=True)
class SyntheticImage:
    """What was built, with the figures a benchmark reports."""

    image: OciImage
    """The OCI layout and its digests."""
    files: int
    """Regular files over all layers (hardlinks, dirs and symlinks not counted)."""
    uncompressed_bytes: int
    """Sum of regular file sizes over all layers."""
    packages: dict[str, int]
    """Packages planted per ecosystem (deb, python, npm)."""


class _Layer:
    """Builds one layer's TarItems lazily, emitting each parent directory once, before its children."""

    def __init__(self, seed: int, text_pool: bytes) -> None:
        self.random = random.Random(seed)
        self.text_pool = text_pool
        self.directories: set[str] = set()
        self.files = 0
        self.bytes = 0

    def parents(self, path: str) -> Iterator[TarItem]:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in self.directories:
                self.directories.add(directory)
                yield TarItem(directory, kind="dir", mode=0o755)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> Iterator[TarItem]:
        yield from self.parents(path)
        self.files += 1
        self.bytes += len(data)
        yield TarItem(path, data, mode=mode)

    def text(self, size: int) -> bytes:
        """Compressible text: a window of the shared pool at a random offset."""
        size = max(size, 1)
        start = self.random.randrange(0, len(self.text_pool) - size) if size < len(self.text_pool) else 0
        pieces = [self.text_pool[start : start + size]]
        missing = size - len(pieces[0])
        while missing > 0:  # only for files larger than the pool
            pieces.append(self.text_pool[:missing])
            missing -= len(pieces[-1])
        return b"".join(pieces)

    def binary(self, size: int, random_share: float) -> bytes:
        """Binary-looking data: an ELF-like header, a random (incompressible) part and a text part."""
        random_part = int(size * random_share)
        header = b"\x7fELF\x02\x01\x01" + bytes(57)
        body = self.random.randbytes(random_part) + self.text(max(size - random_part - len(header), 0))
        return (header + body)[:size]

    def size(self, low: int, high: int) -> int:
        """A size between low and high, skewed to the small end like real file trees."""
        return int(low + (high - low) * self.random.random() ** 3)


def _text_pool(seed: int, size: int) -> bytes:
    """`size` bytes of word-like text lines: 1 MB generated, then reshuffled line blocks."""
    generator = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(generator.choices(letters, k=generator.randint(2, 11))) for _ in range(3000)]
    words += ["def", "return", "import", "const", "function", "self", "the", "license", "=", "{", "}"]
    lines = []
    total = 0
    while total < min(size, 1024 * 1024):
        line = " ".join(generator.choices(words, k=generator.randint(3, 16)))
        lines.append(line)
        total += len(line) + 1
    blocks = []
    produced = 0
    while produced < size:
        generator.shuffle(lines)
        block = ("\n".join(lines) + "\n").encode()
        blocks.append(block)
        produced += len(block)
    return b"".join(blocks)[:size]


def _count(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _deb_name(generator: random.Random, number: int) -> str:
    stems = ["lib", "python3-", "fonts-", "gir1.2-", "perl-", "", "node-", "golang-"]
    suffixes = ["", "1", "6", "-common", "-bin", "-data"]
    return f"{generator.choice(stems)}pkg{number:03d}{generator.choice(suffixes)}"


def os_layer(layer: _Layer, scale: float, package_count: dict[str, int]) -> Iterator[TarItem]:
    generator = layer.random
    yield from layer.file(
        "etc/os-release",
        b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        b'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
    )
    yield from layer.file("etc/debian_version", b"12.15\n")
    yield from layer.file(
        "etc/passwd", b"root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/srv/app:/bin/sh\n"
    )
    for number in range(_count(300, scale)):
        yield from layer.file(f"etc/conf.d/service{number:03d}.conf", layer.text(layer.size(200, 4000)))
    packages = [
        (
            _deb_name(generator, number),
            f"{generator.randint(0, 9)}.{generator.randint(0, 40)}."
            f"{generator.randint(0, 20)}-{generator.randint(1, 5)}",
        )
        for number in range(_count(300, scale))
    ]
    package_count["deb"] = len(packages)
    stanzas = []
    for name, version in packages:
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
            f"Installed-Size: {generator.randint(10, 20000)}\n"
            "Maintainer: Synthetic <synthetic@example.invalid>\n"
            f"Architecture: amd64\nVersion: {version}\nDescription: synthetic package {name}\n"
        )
    yield from layer.file("var/lib/dpkg/status", "\n".join(stanzas).encode())
    for name, _version in packages:
        listing = "\n".join(f"/usr/share/{name}/file{index}" for index in range(generator.randint(5, 80)))
        yield from layer.file(f"var/lib/dpkg/info/{name}.list", listing.encode() + b"\n")
        sums = "\n".join(
            hashlib.md5(f"{name}{index}".encode()).hexdigest() + f"  usr/share/{name}/file{index}"
            for index in range(generator.randint(5, 40))
        )
        yield from layer.file(f"var/lib/dpkg/info/{name}.md5sums", sums.encode() + b"\n")
        yield from layer.file(f"usr/share/doc/{name}/copyright", layer.text(layer.size(800, 12000)))
        yield from layer.file(
            f"usr/share/doc/{name}/changelog.Debian.gz", generator.randbytes(layer.size(300, 6000))
        )
    for number in range(_count(400, scale)):
        yield from layer.file(
            f"usr/lib/x86_64-linux-gnu/libsynthetic{number:03d}.so.1",
            layer.binary(layer.size(20_000, 1_800_000), 0.45),
            mode=0o755,
        )
    for number in range(_count(300, scale)):
        yield from layer.file(
            f"usr/bin/tool{number:03d}", layer.binary(layer.size(5_000, 300_000), 0.5), mode=0o755
        )
    for number in range(_count(9000, scale)):
        yield from layer.file(
            f"usr/share/zoneinfo/Region{number // 300:02d}/City{number:04d}",
            generator.randbytes(layer.size(100, 3000)),
        )
    for number in range(_count(21_000, scale)):
        locale = ("de", "fr", "es", "it", "ja", "pt", "ru", "zh")[number % 8]
        yield from layer.file(
            f"usr/share/locale/{locale}/LC_MESSAGES/domain{number:05d}.mo", layer.text(layer.size(200, 9000))
        )


def python_layer(layer: _Layer, scale: float, package_count: dict[str, int]) -> Iterator[TarItem]:
    generator = layer.random
    site = "usr/local/lib/python3.11/site-packages"
    distributions = _count(150, scale)
    package_count["python"] = distributions
    for number in range(distributions):
        name, version = (
            f"synthetic_dist_{number:03d}",
            f"{generator.randint(0, 5)}.{generator.randint(0, 30)}.0",
        )
        info = f"{site}/{name}-{version}.dist-info"
        modules = [f"{name}/module{index:03d}.py" for index in range(150)]
        yield from layer.file(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: synthetic distribution\nLicense: MIT\n".encode(),
        )
        yield from layer.file(
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: synthetic\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        yield from layer.file(f"{info}/INSTALLER", b"pip\n")
        yield from layer.file(f"{info}/top_level.txt", f"{name}\n".encode())
        yield from layer.file(
            f"{info}/RECORD", "\n".join(f"{module},," for module in modules).encode() + b"\n"
        )
        for module in modules:
            yield from layer.file(f"{site}/{module}", layer.text(layer.size(300, 30_000)))
    for number in range(_count(20, scale)):
        yield from layer.file(
            f"{site}/synthetic_native_{number:02d}.cpython-311-x86_64-linux-gnu.so",
            layer.binary(int(2_000_000 * min(scale, 1.0)), 0.9),
            mode=0o755,
        )


def node_layer(layer: _Layer, scale: float, package_count: dict[str, int]) -> Iterator[TarItem]:
    generator = layer.random
    root = "srv/app/node_modules"
    packages = _count(800, scale)
    package_count["npm"] = packages
    for number in range(packages):
        name = f"synthetic-module-{number:03d}"
        version = f"{generator.randint(0, 9)}.{generator.randint(0, 20)}.{generator.randint(0, 30)}"
        manifest = {
            "name": name,
            "version": version,
            "license": "MIT",
            "main": "index.js",
            "description": "synthetic npm package",
        }
        yield from layer.file(f"{root}/{name}/package.json", json.dumps(manifest, indent=2).encode() + b"\n")
        yield from layer.file(f"{root}/{name}/README.md", layer.text(layer.size(300, 8000)))
        yield from layer.file(f"{root}/{name}/LICENSE", layer.text(1070))
        for index in range(40):
            yield from layer.file(
                f"{root}/{name}/lib/part{index:02d}.js", layer.text(layer.size(200, 20_000))
            )


def app_layer(layer: _Layer, scale: float, package_count: dict[str, int]) -> Iterator[TarItem]:
    generator = layer.random
    yield from layer.file("usr/local/bin/start-app", b"#!/bin/sh\nexec node /srv/app/server.js\n", mode=0o755)
    for number in range(_count(10_000, scale)):
        suffix = ("json", "html", "css", "svg", "txt")[number % 5]
        yield from layer.file(
            f"srv/app/static/section{number // 500:02d}/asset{number:05d}.{suffix}",
            layer.text(layer.size(200, 6000)),
        )
    for number in range(_count(100, scale)):
        yield from layer.file(f"srv/app/static/images/photo{number:03d}.jpg", generator.randbytes(200_000))
    big = max(1, int(1_000_000 * scale))
    yield from layer.file("srv/app/data/model.bin", generator.randbytes(100 * big))
    yield from layer.file("srv/app/data/access.log", layer.text(80 * big))
    yield from layer.file("srv/app/data/cache.db", layer.binary(60 * big, 0.3))


LAYERS = (os_layer, python_layer, node_layer, app_layer)


def build_synthetic(
    out: Path | None = None, *, scale: float = 1.0, seed: int = DEFAULT_SEED, compression: str = "gzip"
) -> SyntheticImage:
    """Build (or reuse) the synthetic image; `out` is the cache folder (default: the test cache)."""
    name = f"synthetic-{key_of(GENERATOR_VERSION, scale, seed, compression, FORMAT_VERSION)}"
    root = out or cache_dir()

    def build(target: Path) -> None:
        pool = _text_pool(seed, TEXT_POOL_BYTES if scale >= 0.25 else SMALL_TEXT_POOL_BYTES)
        packages: dict[str, int] = {}
        layers = [_Layer(seed + number, pool) for number in range(len(LAYERS))]
        sources = [recipe(layer, scale, packages) for recipe, layer in zip(LAYERS, layers, strict=True)]
        history = [{"created": "1970-01-01T00:00:00Z", "created_by": text} for text in LAYER_HISTORY]
        image = build_oci_layout(
            target / "oci",
            sources,
            tag="synthetic",
            config=SYNTHETIC_CONFIG,
            history=history,
            compression=compression,
        )
        facts = {
            "manifest_digest": image.manifest_digest,
            "config_digest": image.config_digest,
            "layer_digests": image.layer_digests,
            "diff_ids": image.diff_ids,
            "layer_media_types": image.layer_media_types,
            "files": sum(layer.files for layer in layers),
            "uncompressed_bytes": sum(layer.bytes for layer in layers),
            "packages": packages,
        }
        (target / "synthetic.json").write_text(json.dumps(facts, indent=2, sort_keys=True))

    folder = cached(name, build, root=root, stale_prefix=None)
    facts = json.loads((folder / "synthetic.json").read_text())
    image = OciImage(
        path=folder / "oci",
        tag="synthetic",
        manifest_digest=facts["manifest_digest"],
        config_digest=facts["config_digest"],
        layer_digests=tuple(facts["layer_digests"]),
        diff_ids=tuple(facts["diff_ids"]),
        layer_media_types=tuple(facts["layer_media_types"]),
    )
    return SyntheticImage(
        image=image,
        files=facts["files"],
        uncompressed_bytes=facts["uncompressed_bytes"],
        packages=facts["packages"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="cache folder (default: $CI_GATE_TEST_CACHE)")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 ≈ 1 GB and 100,000 files")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip")
    arguments = parser.parse_args(argv)
    result = build_synthetic(
        arguments.out, scale=arguments.scale, seed=arguments.seed, compression=arguments.compression
    )
    print(f"path: {result.image.path}")
    print(f"tag: {result.image.tag}")
    print(f"reference: oci-dir:{result.image.path}")
    print(f"manifest_digest: {result.image.manifest_digest}")
    print(f"layers: {len(result.image.layer_digests)}")
    print(f"files: {result.files}")
    print(f"uncompressed_bytes: {result.uncompressed_bytes}")
    blobs = sum(path.stat().st_size for path in (result.image.path / "blobs" / "sha256").iterdir())
    print(f"blob_bytes: {blobs}")
    for ecosystem, count in sorted(result.packages.items()):
        print(f"packages_{ecosystem}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
