"""What the one pass over an image's layers feeds: the visitors the analyzer hands the walk.

`CatalogerVisitor` routes evidence files to the catalogers that asked for them, `SecretVisitor`
gives regular files to the secret scanner, `ContentSearchVisitor` runs Anchore's content_search
regexes; `FinalView` answers the catalogers' questions about the squashed filesystem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ci_gate.errors import AnalysisError, CiGateError, LimitExceededError, quoted
from ci_gate.model import ContentMatch, SecretFinding
from ci_gate.sources.interface import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    # The catalogers package imports every cataloger: a cached analysis must not pay for that.
    from ci_gate.analyze.catalogers.interface import CatalogContext, Cataloger, Evidence
    from ci_gate.secrets.scanner import SecretScanner
    from ci_gate.sources.filesystem import Entry, ImageFilesystem


class SecretVisitor:
    def __init__(self, scanner: SecretScanner) -> None:
        self.scanner = scanner
        self.findings: list[SecretFinding] = []

    def wants(self, entry: Entry) -> int:
        return entry.size if self.scanner.wants(entry.path, entry.size) else 0

    def visit(self, entry: Entry, content: bytes) -> None:
        self.findings.extend(self.scanner.scan_file(entry.path, entry.layer_index, content))


class ContentSearchVisitor:
    """Anchore's content_search: named regexes over file contents, line by line."""

    def __init__(self, searches: Mapping[str, str], max_bytes: int) -> None:
        try:
            self.searches = [(name, re.compile(regex.encode())) for name, regex in searches.items()]
        except re.error as error:
            raise AnalysisError(f"content search regex is invalid: {error}") from None
        self.max_bytes = max_bytes
        self.matches: list[ContentMatch] = []

    def wants(self, entry: Entry) -> int:
        return entry.size if entry.size <= self.max_bytes else 0

    def visit(self, entry: Entry, content: bytes) -> None:
        for name, pattern in self.searches:
            if not pattern.search(content):
                continue
            for number, line in enumerate(content.splitlines(), start=1):
                if pattern.search(line):
                    self.matches.append(ContentMatch(name, entry.path, number, entry.layer_index))


_PACK_FROM_BYTES = 4096
"""Evidence at least this large is held compressed; smaller files cost more to pack than they save."""


class CatalogerVisitor:
    """Routes evidence files to the catalogers that asked for them, with one prefilter for all.

    What non-streaming catalogers are given is held until the walk ends (they need every version of a
    package database to tell which layer introduced each package), so it is held compressed and
    counted against one image-wide budget, `Limits.max_evidence_bytes`: an image of many huge
    evidence files stops with a clear error instead of exhausting memory."""

    def __init__(self, catalogers: Sequence[Cataloger], context: CatalogContext,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.catalogers = list(catalogers)
        self.context = context
        self.evidence: dict[int, list[Evidence]] = {id(c): [] for c in self.catalogers}
        self.evidence_limit = limits.max_evidence_bytes
        self.evidence_bytes = 0
        """Bytes held for all catalogers (compressed size for packed evidence)."""
        # Catalogers of binaries match every path (`*`); they would defeat the prefilter, so they are
        # asked apart, through their cheap `wants(path, mode, size)` alone.
        self._every_path = [c for c in self.catalogers if "*" in c.patterns]
        self._by_pattern = [c for c in self.catalogers if "*" not in c.patterns]
        self._any = _path_prefilter([p for c in self._by_pattern for p in c.patterns])
        self._last_entry: Entry | None = None
        self._last_interested: list[Cataloger] = []

    def _interested(self, entry: Entry) -> list[Cataloger]:
        # `wants` and then `visit` ask about the same entry: answer the second time from memory.
        if self._last_entry is entry:
            return self._last_interested
        path, mode, size = entry.path, entry.mode, entry.size
        found = [c for c in self._every_path if c.wants(path, mode, size) > 0]
        if self._any is not None and self._any(path):
            found.extend(c for c in self._by_pattern if c.matches(path) and c.wants(path, mode, size) > 0)
        self._last_entry, self._last_interested = entry, found
        return found

    def wants(self, entry: Entry) -> int:
        interested = self._interested(entry)
        return max([c.max_bytes for c in interested]) if interested else 0

    def visit(self, entry: Entry, content: bytes) -> None:
        from ci_gate.analyze.catalogers.interface import Evidence

        packed: tuple[int, bytes] | None = None
        for cataloger in self._interested(entry):
            kept = content[: cataloger.max_bytes]
            try:
                if cataloger.streaming:
                    cataloger.visit(Evidence(entry.path, entry.layer_index, kept, entry.size, entry.mode),
                                    self.context)
                else:
                    if packed is None or packed[0] != len(kept):
                        packed = (len(kept), self._pack(kept))
                    self.evidence[id(cataloger)].append(self._held(entry, kept, packed[1]))
            except CiGateError:
                raise
            except Exception as error:  # a cataloger bug must not lose the rest of the inventory
                self.context.warnings.append(f"{cataloger.name}: failed on {entry.path}: "
                                             f"{type(error).__name__}")

    @staticmethod
    def _pack(content: bytes) -> bytes:
        from ci_gate.analyze.catalogers import packing

        return packing.deflate(content) if len(content) >= _PACK_FROM_BYTES else b""

    def _held(self, entry: Entry, content: bytes, packed: bytes) -> Evidence:
        """The evidence to keep until the walk ends, counted against the image-wide budget."""
        from ci_gate.analyze.catalogers.interface import Evidence, PackedEvidence

        held: Evidence
        if packed:
            held = PackedEvidence(entry.path, entry.layer_index, packed, len(content), entry.size, entry.mode)
            self.evidence_bytes += len(packed)
        else:
            held = Evidence(entry.path, entry.layer_index, content, entry.size, entry.mode)
            self.evidence_bytes += len(content)
        if self.evidence_bytes > self.evidence_limit:
            raise LimitExceededError(
                f"the image's package databases and manifests need more than {self.evidence_limit:,} bytes "
                f"held in memory (at {quoted(entry.path)}, layer "
                f"{entry.layer_index + 1}); a hostile image? Raise CI_GATE_MAX_EVIDENCE_BYTES if it is genuine")
        return held


def _path_prefilter(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    """One test for "may any pattern match this path", asked of every file of every layer. A yes is
    confirmed by each cataloger's own `matches`, so the test may say yes too often, never too rarely.

    A path that matches a glob ends with the literal text after the glob's last wildcard
    (`*/lib/dpkg/status`, `*.jar`, `*/specifications/*.gemspec`): one `str.endswith` over a tuple
    tests all of those, at a fraction of the cost of a regex with a leading `.*`. A glob that ends in a
    wildcard needs its longest literal piece somewhere in the path (`/lib/dpkg/status.d/`); only a
    glob with a character class, or without any literal text, is left to a regex."""
    import fnmatch

    suffixes: list[str] = []
    pieces: list[str] = []
    rest: list[str] = []
    for pattern in patterns:
        literals = re.split(r"[*?]", pattern)
        if "[" in pattern:
            rest.append(pattern)
        elif literals[-1]:
            suffixes.append(literals[-1])
        elif max(literals, key=len):
            pieces.append(max(literals, key=len))
        else:
            rest.append(pattern)
    ending = tuple(dict.fromkeys(suffixes))
    inside = tuple(dict.fromkeys(pieces))
    regex = re.compile("|".join(fnmatch.translate(p) for p in rest)).match if rest else None
    if not ending and not inside and regex is None:
        return None

    def matches(path: str) -> bool:
        if path.endswith(ending):
            return True
        for piece in inside:
            if piece in path:
                return True
        return regex is not None and regex(path) is not None

    return matches


class FinalView:
    """The squashed view for catalogers, bound once the walk has built it."""

    def __init__(self) -> None:
        self.filesystem: ImageFilesystem | None = None

    def exists(self, path: str) -> bool:
        return self.filesystem is not None and self.filesystem.exists(path)

    def layer_of(self, path: str) -> int | None:
        return None if self.filesystem is None else self.filesystem.layer_of(path)

    def resolve(self, path: str) -> str | None:
        """Where `path` leads through symlinks inside the image (the dpkg cataloger follows a
        symlinked /usr/share/doc/NAME to its copyright file, as syft does)."""
        return None if self.filesystem is None else self.filesystem.resolve(path)
