"""Run the catalogers over a real image without the full analyzer: one walk, the squashed view.

Used by the cataloger tests so they exercise the real streaming walk (`walk_image`) and the real
evidence routing, and by `fixture_context` for trees laid out as inside an image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ci_gate.analyze.catalogers import ALL_CATALOGERS
from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
from ci_gate.model import Distro, Layer, Package
from ci_gate.sources import open_image
from ci_gate.sources.filesystem import Entry, walk_image


@dataclass
class TreeView:
    """A FinalView over fixture layers: a path is in the final filesystem where the last layer
    that holds it put it (fixtures do not delete)."""

    layer_by_path: dict[str, int] = field(default_factory=dict)

    def exists(self, path: str) -> bool:
        return path in self.layer_by_path

    def layer_of(self, path: str) -> int | None:
        return self.layer_by_path.get(path)


def layers_of(count: int, base: Iterable[int] = ()) -> list[Layer]:
    base_set = set(base)
    return [
        Layer(index, f"sha256:{index:064x}", f"sha256:{index + 100:064x}", "application/vnd.oci.image.layer.v1.tar",
              0, base=(index in base_set) if base_set else None)
        for index in range(count)
    ]


def evidence_from_trees(roots: Sequence[Path], cataloger: Cataloger) -> tuple[list[Evidence], TreeView]:
    """Every file of each fixture tree (one tree per layer, bottom first) the cataloger asks for."""
    evidence: list[Evidence] = []
    view = TreeView()
    for layer_index, root in enumerate(roots):
        for folder, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                host = Path(folder) / name
                path = "/" + host.relative_to(root).as_posix()
                view.layer_by_path[path] = layer_index
                if cataloger.matches(path):
                    content = host.read_bytes()
                    evidence.append(Evidence(path, layer_index, content[: cataloger.max_bytes], len(content)))
    return evidence, view


def catalog_trees(cataloger: Cataloger, roots: Sequence[Path], distro: Distro | None = None,
                  base: Iterable[int] = ()) -> tuple[list[Package], list[str]]:
    evidence, view = evidence_from_trees(roots, cataloger)
    context = CatalogContext(final=view, layers=layers_of(len(roots), base), distro=distro)
    return cataloger.catalog(evidence, context), context.warnings


class _Collector:
    def __init__(self, catalogers: Sequence[Cataloger]) -> None:
        self.catalogers = catalogers
        self.evidence: dict[int, list[Evidence]] = {id(c): [] for c in catalogers}

    def wants(self, entry: Entry) -> int:
        return max((c.max_bytes for c in self.catalogers if c.matches(entry.path)), default=0)

    def visit(self, entry: Entry, content: bytes) -> None:
        for cataloger in self.catalogers:
            if cataloger.matches(entry.path):
                self.evidence[id(cataloger)].append(
                    Evidence(entry.path, entry.layer_index, content[: cataloger.max_bytes], entry.size, entry.mode))


def catalog_image(reference: str, distro: Distro | None,
                  catalogers: Sequence[Cataloger] = ALL_CATALOGERS) -> tuple[list[Package], list[str]]:
    """All packages the given catalogers find in a real image, via the real single-pass walk."""
    raw = open_image(reference)
    try:
        collector = _Collector([c for c in catalogers if not c.streaming])
        filesystem = walk_image(raw, [collector])
        layers = [Layer(i, blob.digest, blob.diff_id or "", blob.media_type, blob.size)
                  for i, blob in enumerate(raw.layers)]
        context = CatalogContext(final=filesystem, layers=layers, distro=distro)
        packages: list[Package] = []
        for cataloger in collector.catalogers:
            packages.extend(cataloger.catalog(collector.evidence[id(cataloger)], context))
        return packages, context.warnings
    finally:
        raw.close()
