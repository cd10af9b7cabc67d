"""The one cataloger harness: run catalogers over layers the way the image walk does, and compare
their findings with syft's (tests/support/syft.py runs syft).

A layer here is a mapping of absolute in-image paths to `File` (bytes and mode) or `DELETED` (a
whiteout); `tree_layer` makes one from a fixture folder. Each layer's matching files are shown to
the cataloger in order (`visit` for streaming catalogers), truncated to its `max_bytes`, and the
final view answers `exists`/`layer_of` from the squashed layers, as `ci_gate.sources.filesystem`
does for a real image. Origins (`base`/`app`) are set afterwards, as the analyzer sets them.
"""

from __future__ import annotations

import collections
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_gate.analyze.catalogers.attribution import with_origin
from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
from ci_gate.model import Distro, Layer, Package
from tests.support.cache import cached, key_of
from tests.support.syft import run_syft_dir


@dataclass(frozen=True)
class File:
    content: bytes
    mode: int = 0o644


DELETED = None
LayerFiles = Mapping[str, "File | None"]


class SquashedView:
    """The final filesystem of the layers: which path exists and which layer last wrote it."""

    def __init__(self, layers: Sequence[LayerFiles] = (), last_writer: Mapping[str, int] | None = None) -> None:
        self.last_writer: dict[str, int] = dict(last_writer or {})
        for index, layer in enumerate(layers):
            for path, item in layer.items():
                if item is DELETED:
                    self.last_writer.pop(path, None)
                else:
                    self.last_writer[path] = index

    def exists(self, path: str) -> bool:
        return path in self.last_writer

    def layer_of(self, path: str) -> int | None:
        return self.last_writer.get(path)


@dataclass
class Result:
    packages: list[Package]
    warnings: list[str]

    def triples(self, package_type: str | None = None) -> collections.Counter[tuple[str, str, str]]:
        return collections.Counter((item.type, item.name, item.version) for item in self.packages
                                   if package_type is None or item.type == package_type)


def layers_of(count: int) -> list[Layer]:
    """`count` model layers with made-up digests, for a `CatalogContext`."""
    return [Layer(index=index, digest=f"sha256:{index:064x}", diff_id=f"sha256:{index + 100:064x}",
                  media_type="application/vnd.oci.image.layer.v1.tar", size=0)
            for index in range(count)]


def run(cataloger: type[Cataloger] | Cataloger, layers: Sequence[LayerFiles], base_layers: int | None = None,
        distro: Distro | None = None) -> Result:
    """Catalog the layers (a fresh cataloger when given its type); `base_layers` marks the first N
    as the base image, which decides each package's origin as the analyzer does."""
    if isinstance(cataloger, type):
        cataloger = cataloger()
    context = CatalogContext(final=SquashedView(layers), layers=layers_of(len(layers)), distro=distro)
    kept: list[Evidence] = []
    for index, layer in enumerate(layers):
        for path, item in sorted(layer.items()):
            if item is DELETED or not cataloger.matches(path):
                continue
            wants = getattr(cataloger, "wants", None)
            if wants is not None and not wants(path, item.mode, len(item.content)):
                continue
            evidence = Evidence(path, index, item.content[:cataloger.max_bytes], len(item.content), item.mode)
            if cataloger.streaming:
                cataloger.visit(evidence, context)
            else:
                kept.append(evidence)
    packages = cataloger.catalog(kept, context)
    if base_layers is not None:
        packages = [with_origin(package, range(base_layers)) for package in packages]
    return Result(packages, context.warnings)


def catalog_trees(cataloger: Cataloger, roots: Sequence[Path], distro: Distro | None = None,
                  base: int | None = None) -> tuple[list[Package], list[str]]:
    """`run` over fixture folders, one per layer (bottom first); the first `base` are the base image."""
    result = run(cataloger, [tree_layer(root) for root in roots], base_layers=base, distro=distro)
    return result.packages, result.warnings


def tree_layer(root: Path, prefix: str = "") -> dict[str, File | None]:
    """A layer holding every regular file under `root` (symlinks skipped), at `prefix` + its relative path."""
    layer: dict[str, File | None] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            full = Path(folder) / name
            if full.is_symlink() or not full.is_file():
                continue
            relative = full.relative_to(root).as_posix()
            layer[f"{prefix}/{relative}"] = File(full.read_bytes(), full.stat().st_mode & 0o7777)
    return layer


def write_tree(root: Path, layer: LayerFiles) -> Path:
    """Lay a layer out on disk (for syft's `dir:` scan)."""
    for path, item in layer.items():
        if item is DELETED:
            continue
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.content)
        target.chmod(item.mode)
    return root


def syft_artifacts(root: Path, package_types: Iterable[str], catalogers: str = "image") -> list[dict[str, Any]]:
    """syft's packages of the given types in the directory tree `root` (by default its image catalogers)."""
    wanted = set(package_types)
    return [artifact for artifact in run_syft_dir(root, catalogers) if artifact["type"] in wanted]


def syft_triples(artifacts: Iterable[dict[str, Any]]) -> collections.Counter[tuple[str, str, str]]:
    """(type, name, version); syft stubs a missing version as UNKNOWN (its compliance setting), we keep ""."""
    return collections.Counter((item["type"], item["name"], "" if item["version"] == "UNKNOWN" else item["version"])
                               for item in artifacts)


def syft_identities(artifacts: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(name, version, purl) of each syft artifact; syft writes a missing version as UNKNOWN."""
    return {(a["name"], "" if a["version"] == "UNKNOWN" else a["version"], a["purl"]) for a in artifacts}


def debian_package_tree(packages: Sequence[str]) -> Path:
    """The files of real Debian packages (`apt-get download` + `dpkg-deb -x`), cached across sessions."""

    def build(target: Path) -> None:
        downloads = target.with_name(target.name + ".debs")
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["apt-get", "download", *packages], cwd=downloads, check=True, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=300)
            target.mkdir()
            for deb in sorted(downloads.glob("*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=120)
        finally:
            for deb in downloads.glob("*.deb"):
                deb.unlink()
            downloads.rmdir()

    return cached(f"debs-{key_of(*packages)}", build)
