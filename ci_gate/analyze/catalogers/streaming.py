"""The shared shape of a streaming cataloger: parse each evidence file as it passes, keep only packages.

Binaries and archives are large, so their bytes are looked at once, in `visit`, and dropped. What is
kept per path is the list of packages found in its latest version; `catalog` then reports those whose
file is still the one that produced them in the final filesystem.
"""

from __future__ import annotations

import abc
import json
import weakref
from collections.abc import Sequence
from typing import Any

from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
from ci_gate.model import Location, Package


class EvidenceError(ValueError):
    """The evidence file is damaged or hostile; the message says how, in one line."""


class StreamingCataloger(Cataloger):
    """A cataloger that parses each evidence file in `visit` and remembers only what it found."""

    streaming = True

    def __init__(self) -> None:
        self._found: dict[str, tuple[int, list[Package]]] = {}
        self._context: weakref.ref[CatalogContext] | None = None

    def _begin(self, context: CatalogContext) -> None:
        """Forget what an earlier analysis left (one that failed before `catalog`): the registry
        holds one instance per cataloger for the whole process."""
        if self._context is None or self._context() is not context:
            self._found = {}
            self._context = weakref.ref(context)

    @abc.abstractmethod
    def parse(self, evidence: Evidence, context: CatalogContext) -> list[Package]:
        """The packages in one evidence file; raise EvidenceError for a damaged file."""

    def visit(self, evidence: Evidence, context: CatalogContext) -> None:
        self._begin(context)
        try:
            packages = self.parse(evidence, context)
        except EvidenceError as error:
            context.warnings.append(f"{self.name}: {self._where(evidence)}: {error}")
            packages = []
        except Exception as error:  # hostile input must never stop the analysis: say so and go on
            # Only the type: an unexpected exception's text may quote the file's content (a secret).
            context.warnings.append(f"{self.name}: {self._where(evidence)}: could not be read "
                                    f"({type(error).__name__})")
            packages = []
        if packages:
            packages = self._cleaned(packages, evidence, context)
        # A later layer's version of the same path replaces what an earlier one held.
        if packages:
            self._found[evidence.path] = (evidence.layer_index, packages)
        else:
            self._found.pop(evidence.path, None)

    def _cleaned(self, packages: list[Package], evidence: Evidence, context: CatalogContext) -> list[Package]:
        from ci_gate.analyze.catalogers.attribution import clean_package

        try:
            return [clean_package(package) for package in packages]
        except Exception as error:  # a metadata value no report could write
            context.warnings.append(f"{self.name}: {self._where(evidence)}: could not be read "
                                    f"({type(error).__name__})")
            return []

    def json_document(self, evidence: Evidence) -> Any:
        """The JSON document an evidence file holds whole; EvidenceError when only its start was read
        or it is not JSON."""
        if evidence.truncated:
            raise EvidenceError(f"larger than {self.max_bytes:,} bytes; only the start was read")
        try:
            return json.loads(evidence.content)
        except (ValueError, UnicodeDecodeError) as error:
            raise EvidenceError(f"not valid JSON ({error})") from None

    @staticmethod
    def _where(evidence: Evidence) -> str:
        return f"{evidence.path} (layer {evidence.layer_index + 1})"

    def catalog(self, evidence: Sequence[Evidence], context: CatalogContext) -> list[Package]:
        self._begin(context)
        for item in evidence:  # only when run as a non-streaming cataloger
            self.visit(item, context)
        found, self._found, self._context = self._found, {}, None
        packages: list[Package] = []
        for path, (layer_index, path_packages) in sorted(found.items()):
            if not context.final.exists(path) or context.final.layer_of(path) != layer_index:
                continue
            packages.extend(path_packages)
        return packages


def location_of(evidence: Evidence, context: CatalogContext) -> Location:
    """Where the evidence is: its path, its layer and that layer's diff id when known."""
    diff_id = None
    if 0 <= evidence.layer_index < len(context.layers):
        diff_id = context.layers[evidence.layer_index].diff_id or None
    return Location(path=evidence.path, layer_index=evidence.layer_index, layer_diff_id=diff_id)


def is_executable(evidence: Evidence) -> bool:
    """Whether any execute bit is set: syft looks for binaries among executables only."""
    return bool(evidence.mode & 0o111)


class ExecutableCataloger(StreamingCataloger):
    """A cataloger of programs (Go, Rust): they are named anything, so every path matches, and
    `wants` keeps the walk from reading anything that is not an executable."""

    patterns = ("*",)
    max_bytes = 256 * 1024 * 1024
    """The image walk's default read limit per file; data of a bigger binary may lie beyond it."""

    def wants(self, path: str, mode: int, size: int) -> int:
        return self.max_bytes if mode & 0o111 and size >= 64 else 0
