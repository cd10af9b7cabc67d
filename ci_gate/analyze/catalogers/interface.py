"""The cataloger family: one module per ecosystem, each finding packages from evidence files.

A cataloger never opens files itself. It names the evidence it needs by glob (`patterns`); the single
streaming pass over the layers (`ci_gate.sources.filesystem.walk_image`) hands it every version of
every matching file, layer by layer, so it can tell which layer introduced a package. Large binary
evidence (jars, Go binaries) is handled in `visit` as it streams by, so it is never all held in
memory at once.
"""

from __future__ import annotations

import abc
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.ecosystems import purl_type_of
from ci_gate.model import Distro, Layer, Location, Package


@dataclass(frozen=True, slots=True)
class Evidence:
    """One version of an evidence file: its path, the layer that wrote it and its content."""

    path: str
    """Absolute path inside the image, e.g. /var/lib/dpkg/status."""
    layer_index: int
    content: bytes
    """The file's bytes, up to the cataloger's `max_bytes` (see `truncated`)."""
    size: int
    """The full size of the file."""
    mode: int = 0o644

    @property
    def truncated(self) -> bool:
        return len(self.content) < self.size


class PackedEvidence(Evidence):
    """Evidence held compressed until a cataloger reads it: `content` inflates on each access.

    Non-streaming catalogers see every version of every matching file only after the walk, so the
    walk holds them all; compressed, a package database costs a fifth of its size, and 250 MB of a
    hostile file's repeated bytes cost a quarter of a megabyte. Each version is inflated only while
    its cataloger looks at it."""

    __slots__ = ("_length", "_packed")
    _length: int
    _packed: bytes

    def __init__(self, path: str, layer_index: int, packed: bytes, length: int, size: int, mode: int) -> None:
        # Not the dataclass __init__: it would assign `content`, which is this class's property.
        for name, value in (("path", path), ("layer_index", layer_index), ("size", size), ("mode", mode),
                            ("_packed", packed)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_length", length)

    @property
    def content(self) -> bytes:
        return _inflate(self._packed, self._length)

    @property
    def packed_bytes(self) -> int:
        return len(self._packed)

    @property
    def truncated(self) -> bool:
        return self._length < self.size


def _inflate(packed: bytes, length: int) -> bytes:
    from ci_gate.analyze.catalogers import packing

    return packing.inflate(packed, length)


class FinalView(Protocol):
    """What a cataloger may ask of the squashed filesystem after the pass."""

    def exists(self, path: str) -> bool:
        """Whether `path` is in the final filesystem (symlinks followed inside the image)."""
        ...

    def layer_of(self, path: str) -> int | None:
        """The layer that last wrote `path`, or None when it is not in the final filesystem."""
        ...


DEFAULT_INFLATION_BYTES = 4 * 1024**3
"""Bytes the catalogers may inflate from archives (jars in jars) over one whole image."""


@dataclass
class InflationBudget:
    """Bytes left to inflate from archives for the whole image: ten jars that each inflate to a
    gigabyte cost one budget, not ten."""

    remaining: int = DEFAULT_INFLATION_BYTES
    limit: int = DEFAULT_INFLATION_BYTES


@dataclass
class CatalogContext:
    """What every cataloger may know besides its evidence."""

    final: FinalView
    layers: Sequence[Layer]
    distro: Distro | None = None
    warnings: list[str] = field(default_factory=list)
    """Append one line per problem (a corrupt database, a truncated binary); never raise for bad evidence."""
    inflation: InflationBudget = field(default_factory=InflationBudget)


class Cataloger(abc.ABC):
    """One ecosystem. Subclasses set `name`, `patterns` and implement `catalog` (and `visit` if streaming)."""

    name: str
    """syft's cataloger name where there is one, e.g. dpkg-db-cataloger."""
    patterns: tuple[str, ...]
    """Globs on absolute paths (`*` crosses `/`), e.g. `*/var/lib/dpkg/status`, `*.jar`."""
    max_bytes: int = 64 * 1024 * 1024
    """Bytes of each matching file to read."""
    streaming: bool = False
    """True: each evidence file goes to `visit` during the pass and is not kept; False: kept for `catalog`."""

    def matches(self, path: str) -> bool:
        return bool(self._pattern().match(path))

    def _pattern(self) -> re.Pattern[str]:
        compiled = getattr(type(self), "_compiled", None)
        if compiled is None:
            compiled = re.compile("|".join(fnmatch.translate(p) for p in self.patterns))
            type(self)._compiled = compiled  # type: ignore[attr-defined]
        return compiled

    def wants(self, path: str, mode: int, size: int) -> int:
        """Bytes of a file matching `patterns` to read for it (0: skip it). Catalogers of binaries,
        whose pattern is `*`, say no cheaply here to everything that is not an executable."""
        return self.max_bytes

    def visit(self, evidence: Evidence, context: CatalogContext) -> None:  # noqa: B027 - optional hook
        """Streaming catalogers: look at one file as it passes; keep only what you found."""

    def package(self, name: str, version: str, package_type: str, location: Location,
                metadata: Mapping[str, Any], licenses: tuple[str, ...] = ()) -> Package:
        """A package of a language ecosystem this cataloger found at `location`; its purl is
        `pkg:TYPE/NAME@VERSION`, TYPE the purl type of `package_type` (ci_gate.ecosystems)."""
        return Package(
            name=name,
            version=version,
            type=package_type,
            purl=package_url(purl_type_of(package_type), "", name, version),
            licenses=licenses,
            locations=(location,),
            found_by=self.name,
            metadata=metadata,
        )

    @abc.abstractmethod
    def catalog(self, evidence: Sequence[Evidence], context: CatalogContext) -> list[Package]:
        """The packages found. `evidence` holds every version of every matching file, in layer order
        (empty for streaming catalogers, which return what `visit` kept). Packages whose evidence is
        not in the final filesystem (`context.final`) must not be reported."""
