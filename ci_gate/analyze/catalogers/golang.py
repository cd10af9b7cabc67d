"""Go modules compiled into binaries, from the build info the Go linker embeds (`go version -m`).

The build info starts with the 16-byte-aligned magic `\\xff Go buildinf:`, in the `.go.buildinfo`
section or else the first writable segment. Byte 14 is the pointer size and byte 15 the flags. Since
Go 1.18 (flag bit 2) the Go version and the module text follow the 32-byte header inline, each as a
uvarint length and the bytes; before, the header holds two pointers to Go string headers (data
address, length) in the binary's address space, read through the ELF program headers. The module
text is framed by 16-byte sentinels and holds tab-separated lines: `path`, `mod`, `dep`, `=>` (a
replacement of the line above) and `build KEY=VALUE`.

The packages follow syft's go-module-binary-cataloger: one per dependency (a replacement reported
under the replacing module), the main module (its version `(devel)` unless `-ldflags -X ...version=`,
a version string in the binary, or the VCS stamp tell better) and a `stdlib` package for the
toolchain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ci_gate.analyze.catalogers.executable import ElfFile, ElfProgramCataloger
from ci_gate.analyze.catalogers.interface import CatalogContext, Evidence
from ci_gate.analyze.catalogers.package_url import package_url
from ci_gate.analyze.catalogers.streaming import EvidenceError, location_of
from ci_gate.model import Package

BUILD_INFO_MAGIC = b"\xff Go buildinf:"
_GO_BUILD_ID_NOTE = re.compile(rb"\x04\x00\x00\x00.{4}\x04\x00\x00\x00Go\x00\x00", re.DOTALL)
"""The ELF note (name `Go`, type 4: the build ID) the Go linker puts right after the headers, so even a
prefix of a big Go binary shows it is one (little-endian layout)."""
_HEADER_SIZE = 32
_ALIGNMENT = 16
_SEARCH_BYTES = 64 * 1024
"""Go's reader looks for the magic in the first 64 KiB of the data it is pointed at."""
_MAX_STRING = 1024 * 1024
"""Go refuses build-info strings longer than 1 MiB; so do we (a hostile length cannot cost memory)."""
_FLAG_BIG_ENDIAN = 1
_FLAG_INLINE = 2
DEVEL = "(devel)"

_LDFLAGS_VERSION_PATTERNS = (
    r"\.[a-zA-Z0-9]*([rR]elease)?([gG]it)?([bB]uild)?[vV]er(sion)?=(\S+/)*(?P<version>v?\d+.\d+.\d+[-\w]*)",
    r"\.[a-zA-Z0-9]*([tT]ag)=(\S+/)*(?P<version>v?\d+.\d+.\d+[-\w]*)",
)
# syft's last-resort guess: a semver between NUL bytes (or after a non-UTF-8 byte) anywhere in the binary.
_CONTENT_VERSION = re.compile(rb"(?:\x00|[\x80-\xff])(?:[^\n]L)?(?P<version>v?\d+\.\d+\.\d+[-\w]*[+\w]*)\x00")
_CONTENT_VERSION_TAIL = re.compile(rb"\.\d+\.\d+[-\w]*[+\w]*\x00")
"""Every match of the pattern above ends like this; scanning for the tail (a literal `.` first) is ~50x
faster over a large binary, and the full pattern is then tried only just before each hit."""
_CONTENT_VERSION_REACH = 128
_STDLIB_VERSION = re.compile(r"\d+(\.\d+)?(\.\d+)?")


@dataclass
class Module:
    """One module line of the build info (`mod`, `dep` or `=>`)."""

    path: str
    """The module path, e.g. github.com/pkg/errors."""
    version: str = ""
    """Its version, `(devel)` for a main module built from a checkout."""
    sum: str = ""
    """The go.sum hash (`h1:...`), empty for the main module."""
    replaced_by: Module | None = None
    """The `=>` line after it: the module actually compiled in."""


@dataclass
class BuildInfo:
    """What `go version -m` prints for one binary."""

    go_version: str
    """The toolchain, e.g. `go1.21.5` (experiments follow a space: `go1.21.5 X:boringcrypto`)."""
    path: str = ""
    """The main package's import path (the `path` line)."""
    main: Module | None = None
    """The main module (`mod` line); None for GOPATH builds."""
    dependencies: list[Module] = field(default_factory=list)
    """The `dep` lines, in order."""
    settings: list[tuple[str, str]] = field(default_factory=list)
    """The `build` lines as (key, value): -ldflags, CGO_ENABLED, GOARCH, vcs.revision, ..."""

    def setting(self, key: str) -> str | None:
        return next((value for name, value in self.settings if name == key), None)


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    for position in range(offset, min(len(data), offset + 10)):
        byte = data[position]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position + 1
        shift += 7
    raise EvidenceError("Go build info: a string length is cut off or malformed")


def _inline_string(data: bytes, offset: int) -> tuple[str, int]:
    length, start = _uvarint(data, offset)
    if length > _MAX_STRING:
        raise EvidenceError(f"Go build info: a string claims {length:,} bytes (more than 1 MiB)")
    if start + length > len(data):
        raise EvidenceError("Go build info: a string runs past the end of the bytes read; "
                            "the binary is truncated")
    return data[start:start + length].decode("utf-8", errors="replace"), start + length


def _find_magic(data: bytes, start: int, end: int) -> int:
    position = start
    while True:
        found = data.find(BUILD_INFO_MAGIC, position, end)
        if found < 0:
            return -1
        if (found - start) % _ALIGNMENT == 0 and len(data) - found >= _HEADER_SIZE:
            return found
        position = found + 1


def read_raw_build_info(elf: ElfFile) -> tuple[str, str] | None:
    """The Go version and the module text, or None when this is not a Go binary."""
    data = elf.data
    start = -1
    section = elf.section(".go.buildinfo")
    if section is not None and section.kind != 8:
        start = _find_magic(data, section.offset, min(len(data), section.offset + _SEARCH_BYTES))
    if start < 0:
        writable = elf.writable_data()
        if writable is not None:
            offset, size = writable
            start = _find_magic(data, offset, min(len(data), offset + min(size, _SEARCH_BYTES)))
    if start < 0 and elf.sections_missing:
        # No section table to guide us (a truncated file): look for the magic anywhere in what we hold.
        found = data.find(BUILD_INFO_MAGIC)
        start = found if found >= 0 and len(data) - found >= _HEADER_SIZE else -1
    if start < 0:
        return None
    header = data[start:start + _HEADER_SIZE]
    pointer_size, flags = header[14], header[15]
    if flags & _FLAG_INLINE:
        version, after = _inline_string(data, start + _HEADER_SIZE)
        modules, _ = _inline_string(data, after)
    else:
        if pointer_size not in (4, 8):
            raise EvidenceError(f"Go build info: pointer size {pointer_size} is neither 4 nor 8")
        big_endian = bool(flags & _FLAG_BIG_ENDIAN)

        def pointer(raw: bytes) -> int:
            return int.from_bytes(raw[:pointer_size], "big" if big_endian else "little")

        version = _pointed_string(elf, pointer(header[16:]), pointer_size, pointer)
        modules = _pointed_string(elf, pointer(header[16 + pointer_size:]), pointer_size, pointer)
    if not version:
        return None
    modules = modules[16:-16] if len(modules) >= 33 and modules[-17] == "\n" else ""
    return version, modules


def _pointed_string(elf: ElfFile, address: int, pointer_size: int,
                    read_pointer: Callable[[bytes], int]) -> str:
    string_header = elf.read_address(address, pointer_size * 2, "Go build info string header")
    if len(string_header) < pointer_size * 2:
        raise EvidenceError("Go build info: a string header is cut off")
    data_address = read_pointer(string_header)
    length = read_pointer(string_header[pointer_size:])
    if length > _MAX_STRING:
        return ""
    raw = elf.read_address(data_address, length, "Go build info string")
    if len(raw) < length:
        raise EvidenceError("Go build info: a string runs past its segment; the binary is damaged")
    return bytes(raw).decode("utf-8", errors="replace")


def _unquote(text: str) -> str:
    """A Go-quoted string's value (build settings quote values holding spaces, tabs or quotes)."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        body = text[1:-1]
        try:
            return body.encode("latin-1", errors="backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            return body
    return text


def _split_setting(text: str) -> tuple[str, str] | None:
    if text.startswith('"'):
        match = re.match(r'"(?:[^"\\]|\\.)*"', text)
        if not match:
            return None
        key, rest = _unquote(match.group(0)), text[match.end():]
        if not rest.startswith("="):
            return None
        return key, _unquote(rest[1:])
    key, separator, value = text.partition("=")
    if not separator or not key:
        return None
    return key, _unquote(value)


def parse_module_text(go_version: str, text: str) -> BuildInfo:
    """Parse the module lines (Go's runtime/debug.ParseBuildInfo), leniently: bad lines are skipped."""
    info = BuildInfo(go_version=go_version)
    last: Module | None = None
    for line in text.split("\n"):
        word, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if word == "path":
            info.path = rest
        elif word == "mod" and fields and fields[0]:
            info.main = last = Module(*_module_fields(fields))
        elif word == "dep" and fields and fields[0]:
            last = Module(*_module_fields(fields))
            info.dependencies.append(last)
        elif word == "=>" and last is not None and fields and fields[0]:
            last.replaced_by = Module(*_module_fields(fields))
            last = None
        elif word == "build":
            setting = _split_setting(rest)
            if setting:
                info.settings.append(setting)
    return info


def _module_fields(fields: list[str]) -> tuple[str, str, str]:
    path = fields[0]
    version = fields[1] if len(fields) > 1 else ""
    checksum = fields[2] if len(fields) > 2 else ""
    return path, version, checksum


def go_package_url(module_path: str, version: str) -> str:
    """syft's split: the first two path elements are the namespace, the third the name, the rest a subpath."""
    fields = module_path.split("/")
    if len(fields) == 1:
        return package_url("golang", "", fields[0], version)
    if len(fields) == 2:
        return package_url("golang", fields[0], fields[1], version)
    return package_url("golang", "/".join(fields[:2]), fields[2], version, subpath="/".join(fields[3:]))


def _version_from_ldflags(ldflags: str, main_path: str) -> str:
    for pattern in _LDFLAGS_VERSION_PATTERNS:
        prefix = rf"(main|{re.escape(main_path)}/[^\s]*)"
        match = re.search(prefix + pattern, ldflags)
        if match and match.group("version"):
            version = match.group("version")
            return version if version.startswith("v") else "v" + version
    return ""


def _pseudo_version(revision: str, stamp: str) -> str:
    """Go's pseudo-version for an untagged commit: v0.0.0-YYYYMMDDHHMMSS-REVISION12."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc)
        when = moment.strftime("%Y%m%d%H%M%S")
    except ValueError:
        when = "00010101000000"
    return f"v0.0.0-{when}-{revision[:12]}"


def _version_in_contents(data: bytes) -> str:
    """The first NUL-delimited semver in the binary, as syft's content guess finds it."""
    for tail in _CONTENT_VERSION_TAIL.finditer(data):
        match = _CONTENT_VERSION.search(data, max(0, tail.start() - _CONTENT_VERSION_REACH), tail.end())
        if match:
            return match.group("version").decode("ascii")
    return ""


def main_module_version(info: BuildInfo, main: Module, data: bytes) -> str:
    """The main module's version; for `(devel)` the better guesses syft makes, in its order."""
    if main.version != DEVEL:
        return main.version
    ldflags = info.setting("-ldflags") or ""
    if ldflags and (found := _version_from_ldflags(ldflags, main.path)):
        return found
    found = _version_in_contents(data)
    if found:
        return found if found.startswith("v") else "v" + found
    revision, stamp = info.setting("vcs.revision"), info.setting("vcs.time")
    if revision and stamp:
        return _pseudo_version(revision, stamp)
    return DEVEL


class GoModuleBinaryCataloger(ElfProgramCataloger):
    name = "go-module-binary-cataloger"
    marker = BUILD_INFO_MAGIC

    def check_unmarked(self, evidence: Evidence) -> None:
        if evidence.truncated and _GO_BUILD_ID_NOTE.search(evidence.content, 0, 64 * 1024):
            raise EvidenceError(f"a Go binary of {evidence.size:,} bytes whose build info lies beyond the "
                                f"{len(evidence.content):,} bytes read; raise CI_GATE_MAX_FILE_READ_BYTES")

    def parse_program(self, elf: ElfFile, evidence: Evidence, context: CatalogContext) -> list[Package]:
        raw = read_raw_build_info(elf)
        if raw is None:
            return []
        go_version, module_text = raw
        info = parse_module_text(go_version, module_text)
        packages = self._packages(info, elf, evidence, context)
        if elf.sections_missing and not evidence.truncated:
            context.warnings.append(f"{self.name}: {evidence.path} (layer {evidence.layer_index + 1}): the "
                                    "ELF section headers lie past the end of the file (truncated binary); "
                                    "build info read from what remains")
        return packages

    def _packages(self, info: BuildInfo, elf: ElfFile, evidence: Evidence,
                  context: CatalogContext) -> list[Package]:
        go_version, _, extra = info.go_version.partition(" ")
        experiments = [item for chunk in extra.split(" ") if chunk.startswith("X:")
                       for item in chunk[2:].split(",") if item]
        architecture = info.setting("GOARCH") or elf.architecture
        main = info.main
        if (main is None and info.path) or (main is not None and main.path == "command-line-arguments"):
            candidates = [index for index, dep in enumerate(info.dependencies) if dep.version == DEVEL]
            main = (info.dependencies.pop(candidates[0]) if len(candidates) == 1
                    else Module(path=info.path, version=DEVEL))
        location = location_of(evidence, context)
        main_path = main.path if main else ""

        def make(module: Module, settings: list[tuple[str, str]] | None,
                 version: str | None = None) -> Package:
            chosen = module.replaced_by or module
            module_version = chosen.version if version is None else version
            metadata: dict[str, object] = {
                "go_compiled_version": go_version,
                "architecture": architecture,
                "main_module": main_path,
                "h1_digest": chosen.sum,
            }
            if experiments:
                metadata["go_experiments"] = experiments
            if settings is not None:
                metadata["go_build_settings"] = [{"key": key, "value": value} for key, value in settings]
            if module.replaced_by is not None:
                metadata["replaces"] = f"{module.path}@{module.version}" if module.version else module.path
            return Package(
                name=chosen.path,
                version=module_version,
                type="go-module",
                purl=go_package_url(chosen.path, module_version),
                locations=(location,),
                found_by=self.name,
                metadata=metadata,
            )

        packages: list[Package] = []
        if main is not None and main.path:
            version = main_module_version(info, main, evidence.content)
            packages.append(make(main, info.settings, version))
        packages.extend(make(dependency, None) for dependency in info.dependencies
                        if (dependency.replaced_by or dependency).path)
        stdlib = _STDLIB_VERSION.search(go_version.removeprefix("go"))
        if stdlib:
            packages.append(Package(
                name="stdlib",
                version=go_version,
                type="go-module",
                purl=package_url("golang", "", "stdlib", go_version.removeprefix("go")),
                licenses=("BSD-3-Clause",),
                locations=(location,),
                found_by=self.name,
                metadata={"go_compiled_version": go_version},
            ))
        return packages
