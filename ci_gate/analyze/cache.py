"""The analysis cache: an image digest analysed once is not analysed again.

Entries live in `$CI_GATE_CACHE_DIR` or `$XDG_CACHE_HOME/ci-gate/analysis` (default
~/.cache/ci-gate/analysis), one JSON file per (image, options) key, written atomically. The key
is the manifest or config digest — both were verified while reading — plus a fingerprint of the
tool version and of every option that changes the result. A `dir:` source has no trustworthy digest
of its content, so it is never cached. A corrupt entry is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import mmap
import operator
import os
import typing
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from ci_gate.errors import UsageError
from ci_gate.fileio import atomic_text_writer
from ci_gate.model import Analysis, FileRecord, from_dict, write_json
from ci_gate.private_files import make_private_dir, open_trusted, remove_untrusted
from ci_gate.sources.interface import RawImage


def cache_dir() -> Path:
    explicit = os.environ.get("CI_GATE_CACHE_DIR")
    if explicit:
        return Path(explicit) / "analysis"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ci-gate" / "analysis"


def key_for(raw: RawImage, fingerprint: str) -> str | None:
    if raw.scheme == "dir":
        return None
    digest = raw.manifest_digest or raw.config_digest
    if not digest:
        return None
    # Every digest the walk verifies is in the key, each with its algorithm: an entry is stored only
    # after all of them matched, so a wrong blob can never be cached under a right digest.
    layers = ",".join(f"{blob.digest}/{blob.diff_id or ''}" for blob in raw.layers)
    identity = f"{digest}\x00{raw.config_digest or ''}\x00{layers}\x00{fingerprint}"
    return hashlib.sha256(identity.encode()).hexdigest()


CACHE_FORMAT = 5
"""Bumped whenever the layout below changes, or an older entry may be wrong; another format is a miss.
3: entries written before every digest algorithm was verified (a sha512 layer was not) are dropped.
4: five lines (header, where things are, analysis, file rows, files as `-o json` writes them), so the
   file table loads only when something reads it and `-o json` copies the stored bytes through.
5: one file row per line inside the rows part, so a lookup by path finds its rows without loading the table."""

_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileRecord))
_ANALYSIS_FIELDS = tuple(f.name for f in dataclasses.fields(Analysis))
_COPY_CHUNK = 1024 * 1024


def _corrupt(error: Exception) -> UsageError:
    # The entry was written atomically: only an outside hand could have broken it.
    return UsageError(f"the analysis cache under {cache_dir()} has a corrupt entry ({error}); "
                      "delete that folder or run with --no-cache")


_encode_row = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""How the rows part encodes each row (and so each path in it)."""


class _StoredFiles:
    """The file table of a cache entry, left in the entry until somebody reads it.

    The entry stays open: it is replaced atomically, so this handle keeps the version we started from."""

    __slots__ = ("end", "handle", "loaded", "rendered_at", "rows_at")

    def __init__(self, handle: typing.BinaryIO | None, rows_at: int, rendered_at: int, end: int) -> None:
        self.handle = handle
        self.rows_at = rows_at
        """File rows in `_FILE_FIELDS` order: 100,000 of them load in a tenth of the time dicts would take."""
        self.rendered_at = rendered_at
        """The files exactly as `write_json` writes them, for the copy-through of `-o json`."""
        self.end = end
        self.loaded: tuple[FileRecord, ...] | None = None

    def records(self) -> tuple[FileRecord, ...]:
        if self.loaded is None:
            try:
                rows = json.loads(self._read(self.rows_at, self.rendered_at))
                self.loaded = tuple(FileRecord(*row) for row in rows)
            except (OSError, ValueError, TypeError) as error:
                raise _corrupt(error) from None
            self.close()
        return self.loaded

    def rows_ending_with(self, suffixes: Iterable[str]) -> tuple[FileRecord, ...]:
        """The records whose path ends with one of `suffixes`, in table order, found in the stored rows
        without parsing the others: a few milliseconds for a 100,000-file table that takes half a second
        to load. A row is one line, and a path ending with S is stored as text ending with S's JSON
        text and a quote, so searching for that finds every such row (and a few whose other fields
        match, which the caller's exact test drops)."""
        suffixes = tuple(suffixes)
        if self.loaded is not None or self.handle is None:
            return tuple(f for f in self.records() if f.path.endswith(suffixes))
        found: dict[int, FileRecord] = {}
        try:
            with mmap.mmap(self.handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                for needle in _needles(suffixes):
                    at = view.find(needle, self.rows_at, self.rendered_at)
                    while at >= 0:
                        start = view.rfind(b"\n", self.rows_at, at) + 1
                        end = view.find(b"\n", at, self.rendered_at)
                        if start not in found:
                            found[start] = FileRecord(*json.loads(view[start:end].rstrip(b",")))
                        at = view.find(needle, end, self.rendered_at)
        except (OSError, ValueError, TypeError) as error:
            raise _corrupt(error) from None
        return tuple(found[start] for start in sorted(found) if found[start].path.endswith(suffixes))

    def _read(self, start: int, end: int) -> bytes:
        assert self.handle is not None
        self.handle.seek(start)
        data = self.handle.read(end - start)
        if len(data) != end - start:
            raise ValueError("the entry is cut short")
        return data

    def copy_rendered(self, out: typing.BinaryIO) -> None:
        assert self.handle is not None
        self.handle.seek(self.rendered_at)
        left = self.end - self.rendered_at - 1  # without the newline that ends the line
        while left > 0:
            chunk = self.handle.read(min(left, _COPY_CHUNK))
            if not chunk:
                raise UsageError(f"the analysis cache under {cache_dir()} has an entry cut short; "
                                 "delete that folder or run with --no-cache")
            out.write(chunk)
            left -= len(chunk)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _needles(suffixes: tuple[str, ...]) -> list[bytes]:
    """The texts to search the rows for, one pass over the table each: a path ending with S ends with
    S's last part, stored as that part's JSON text and a quote (`sshd"`), and a needle that contains
    another is dropped (`tinysshd"` holds `sshd"`): the SSH rule's five paths take two passes, not five."""
    needles = {_encode_row(suffix.rsplit("/", 1)[-1] or suffix)[1:].encode() for suffix in suffixes}
    return sorted(n for n in needles if not any(other != n and other in n for other in needles))


class CachedAnalysis(Analysis):
    """An analysis served from the cache: equal to the one stored, but its file table (100,000 records
    on a large image) is parsed only when `files` is first read — `-o json` (see `write_cached_json`)
    and a policy without file rules never pay for it."""

    __slots__ = ("_analysis_line", "_files_offset", "_stored_files")
    _stored_files: _StoredFiles
    _analysis_line: bytes | None
    """The stored analysis line (its `files` empty), when it still holds this analysis's identity."""
    _files_offset: int

    @property
    def files(self) -> tuple[FileRecord, ...]:
        return self._stored_files.records()

    @files.setter
    def files(self, value: tuple[FileRecord, ...] | _StoredFiles) -> None:
        # The frozen dataclass __init__ sets every field through object.__setattr__, which lands here.
        if isinstance(value, _StoredFiles):
            stored = value
        else:
            stored = _StoredFiles(None, 0, 0, 0)
            stored.loaded = tuple(value)
        object.__setattr__(self, "_stored_files", stored)
        object.__setattr__(self, "_analysis_line", None)
        object.__setattr__(self, "_files_offset", -1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Analysis):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _ANALYSIS_FIELDS)

    __hash__ = Analysis.__hash__


def stored_files_ending_with(analysis: Analysis, suffixes: Iterable[str]) -> tuple[FileRecord, ...] | None:
    """For a cache hit whose file table was never loaded: the records whose path ends with one of
    `suffixes`, in table order, without loading the table. None for any other analysis (read `files`)."""
    if not copies_through(analysis):
        return None
    assert isinstance(analysis, CachedAnalysis)
    return analysis._stored_files.rows_ending_with(suffixes)


def copies_through(analysis: Analysis) -> bool:
    """Whether `write_cached_json` can write `analysis` (a cache hit whose files were never loaded)."""
    return isinstance(analysis, CachedAnalysis) and analysis._stored_files.handle is not None


def write_cached_json(analysis: Analysis, out: typing.BinaryIO) -> bool:
    """Write `analysis` as `write_json` would, copying the stored file table instead of decoding and
    encoding it; False (nothing written) unless it is a cache hit whose files were never loaded."""
    if not copies_through(analysis):
        return False
    assert isinstance(analysis, CachedAnalysis)
    stored = analysis._stored_files
    line, offset = analysis._analysis_line, analysis._files_offset
    if line is not None and offset >= 0:
        # Same identity as stored: every byte around the files is the stored line.
        out.write(line[:offset])
        stored.copy_rendered(out)
        out.write(line[offset + 2:])  # past the empty list `[]` the line holds
        return True
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        text.write("{")
        for position, name in enumerate(_ANALYSIS_FIELDS):
            text.write(("," if position else "") + json.dumps(name) + ":")
            if name == "files":
                text.flush()
                stored.copy_rendered(out)
            else:
                write_json(getattr(analysis, name), text)
        text.write("}")
        text.flush()
    finally:
        text.detach()
    return True


def _header() -> bytes:
    return json.dumps({"format": CACHE_FORMAT, "file_fields": _FILE_FIELDS,
                       "analysis_fields": _ANALYSIS_FIELDS}, separators=(",", ":")).encode()


def load(key: str, raw: RawImage | None = None) -> Analysis | None:
    path = cache_dir() / f"{key}.json"
    try:
        # Kept open by the lazy file table. Trusted only if this user wrote it: keys are predictable, and
        # an analysis planted in a shared cache folder would otherwise pass a leaky image.
        handle = open_trusted(path)
    except OSError:
        return None
    try:
        if handle.readline().rstrip(b"\n") != _header():
            handle.close()
            return None  # another format, or a different model: a miss
        where = json.loads(handle.readline())
        analysis_line = handle.readline()
        rows_at = handle.tell()
        rendered_at = rows_at + int(where["rows"])
        end = rendered_at + int(where["rendered"])
        files_offset = int(where["files_offset"])
        if handle.seek(0, io.SEEK_END) != end or not rows_at < rendered_at < end:
            handle.close()
            return None  # cut short, or grown
        analysis = from_dict(Analysis, json.loads(analysis_line))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        handle.close()
        return None
    identity = analysis.identity
    if raw is not None:
        identity = replace(identity, reference=raw.reference, scheme=raw.scheme)
    values = {name: getattr(analysis, name) for name in _ANALYSIS_FIELDS}
    values.update(identity=identity, files=_StoredFiles(handle, rows_at, rendered_at, end))
    cached = CachedAnalysis(**values)
    if identity == analysis.identity and analysis_line[files_offset - 8:files_offset + 2] == b'"files":[]':
        object.__setattr__(cached, "_analysis_line", analysis_line.rstrip(b"\n"))
        object.__setattr__(cached, "_files_offset", files_offset)
    return cached


def store(key: str, analysis: Analysis) -> None:
    """Best effort: a cache that cannot be written only costs time next run."""
    directory = cache_dir()
    with contextlib.suppress(Exception):
        if not make_private_dir(directory):
            return  # what is written where others may write would never be trusted when read
        remove_untrusted(directory / f"{key}.json")
        # JSON escapes every newline inside a string: each part is exactly one line.
        text = io.StringIO()
        write_json(replace(analysis, files=()), text)
        analysis_line = text.getvalue().encode()
        files_offset = analysis_line.index(b'"files":[]') + len(b'"files":')
        if analysis_line.count(b'"files":[]') != 1:
            files_offset = -1  # a nested empty "files" too: `-o json` takes the field-by-field path
        row = operator.attrgetter(*_FILE_FIELDS)
        rows = ("[\n" + ",\n".join(_encode_row(row(record)) for record in analysis.files) + "\n]\n").encode()
        rendered = io.StringIO()
        write_json(tuple(analysis.files), rendered)
        rendered_bytes = (rendered.getvalue() + "\n").encode()
        where = json.dumps({"rows": len(rows), "rendered": len(rendered_bytes), "files_offset": files_offset})
        with atomic_text_writer(directory / f"{key}.json", 0o600) as out:
            out.write(_header().decode() + "\n" + where + "\n")
            out.write(analysis_line.decode() + "\n")
            out.write(rows.decode())
            out.write(rendered_bytes.decode())
