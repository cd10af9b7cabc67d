"""A lean, strict, streaming tar reader for layer blobs.

Python's `tarfile` spends ~50 µs per header in stream mode; an image with 100,000 files would pay
seconds for bookkeeping alone. Layers need far less: ustar/GNU/PAX headers read in order, names
and links as written, data read once or skipped. This reader parses a header with one `struct`
call, verifies its checksum (so a non-tar or corrupt blob is caught at the first bad block), and
skips unwanted data by seeking when the stream allows it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

BLOCK = 512
PATH_MAX = 4096
"""Linux's PATH_MAX: no name or link target in a layer may be longer (in bytes, as stored)."""
MAX_RECORD_BYTES = 1024 * 1024
"""One PAX or GNU long-name record: far above any real one (a 4 KiB path, a few xattrs)."""
MAX_MEMBER_SIZE = 1 << 53
"""8 PiB: beyond any disk. GNU base-256 sizes reach 2**95, which no seek or read could even take."""
DEFAULT_METADATA_BUDGET = 128 * 1024 * 1024
"""Bytes of names, link targets and PAX/GNU records over a whole image (see `MetadataBudget`)."""
_HEADER = struct.Struct("100s8s8s8s12s12x8sc100s6s2x32x32x8x8x155s12x")
"""name, mode, uid, gid, size, (mtime), chksum, typeflag, linkname, magic, (version, uname, gname,
devmajor, devminor), prefix: the fields not read are skipped, so no bytes object is made for them."""
_ZERO_BLOCK = bytes(BLOCK)
_SKIP_CHUNK = 1024 * 1024


class TarFormatError(ValueError):
    """The stream is not a valid tar archive (or is truncated)."""


class TarMetadataLimitError(TarFormatError):
    """The image's tar headers (names, links, PAX records) exceed the image-wide metadata budget."""


class MetadataBudget:
    """Header bytes left for one image, shared by the readers of all its layers.

    Every name and link target kept costs memory for as long as the image is analysed, and a layer
    of empty files with long names compresses to almost nothing: 1 MB of gzip can carry gigabytes
    of names. Spending them against one budget turns that into one clear error."""

    def __init__(self, limit: int = DEFAULT_METADATA_BUDGET) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, amount: int, offset: int) -> None:
        self.used += amount
        if self.used > self.limit:
            raise TarMetadataLimitError(
                f"the image's file names, link targets and PAX records exceed {self.limit:,} bytes "
                f"(at offset {offset}); a hostile image? Raise CI_GATE_MAX_TAR_METADATA_BYTES if it is genuine")


@dataclass(slots=True)
class TarMember:
    name: str
    mode: int
    uid: int
    gid: int
    size: int
    type: bytes
    """The typeflag: b"0" file, b"1" hard link, b"2" symlink, b"3" char, b"4" block, b"5" dir, b"6" fifo."""
    linkname: str
    offset_data: int
    """Offset of the data in the uncompressed stream."""


def _text(raw: bytes) -> str:
    # Bytes that are not UTF-8 become U+FFFD, as syft shows them: a lone surrogate from
    # "surrogateescape" would make every JSON writer downstream fail on one hostile file name.
    end = raw.find(b"\0")
    return (raw if end < 0 else raw[:end]).decode("utf-8", "replace")


def _number(raw: bytes, field: str, offset: int) -> int:
    if raw and raw[0] & 0x80:
        # GNU base-256: big-endian two's complement in the remaining bits.
        value = int.from_bytes(raw, "big") & ~(0x80 << (8 * (len(raw) - 1)))
        if raw[0] & 0x40:
            value -= 1 << (8 * len(raw) - 1)
        return value
    end = raw.find(b"\0")
    text = raw if end < 0 else raw[:end]
    try:
        return int(text, 8)  # int() itself skips the spaces around the digits
    except ValueError:
        if not text.strip(b" "):
            return 0
        raise TarFormatError(f"invalid {field} field in the tar header at offset {offset}") from None


def _byte_sum(block: bytes) -> int:
    """The sum of a 512-byte block's bytes, in C: Adler-32's low half is 1 + the byte sum modulo 65521,
    exact for 256 bytes (at most 65,280). Python's sum() over the bytes costs ten times as much, and
    it ran for every header of every layer."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _parse_pax(data: bytes, offset: int) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0:
            break
        try:
            length = int(data[position:space])
        except ValueError:
            raise TarFormatError(f"invalid PAX header at offset {offset}") from None
        if length <= space - position or position + length > len(data):
            raise TarFormatError(f"invalid PAX record length at offset {offset}")
        record = data[space + 1 : position + length - 1]
        key, _, value = record.partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        position += length
    return records


class TarReader:
    """Iterate over the members of a tar stream; call `read(n)` on the current member before moving on."""

    def __init__(self, stream: IO[bytes], budget: MetadataBudget | None = None) -> None:
        self._stream = stream
        self._budget = budget if budget is not None else MetadataBudget()
        self._position = 0
        self._remaining = 0
        """Data (with padding) of the current member not consumed yet."""
        self._data_left = 0
        try:
            self._seekable = bool(stream.seekable())
        except (AttributeError, OSError):
            self._seekable = False

    def _read_exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise TarFormatError(f"unexpected end of the tar stream at offset {self._position + len(data)}")
        self._position += size
        return data

    def _skip(self, size: int) -> None:
        if size <= 0:
            return
        if self._seekable:
            # A file seeks past its end without error (the next header read finds nothing); a layer
            # stream stops at its end, and where it stopped says the data was cut short.
            reached = self._stream.seek(size, 1)
            if reached < self._position + size:
                raise TarFormatError(f"unexpected end of the tar stream at offset {max(reached, self._position)}")
            self._position += size
            return
        left = size
        while left:
            chunk = self._stream.read(min(left, _SKIP_CHUNK))
            if not chunk:
                raise TarFormatError(f"unexpected end of the tar stream at offset {self._position}")
            left -= len(chunk)
            self._position += len(chunk)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of the current member's data (from where the last read stopped)."""
        size = min(size, self._data_left)
        if size <= 0:
            return b""
        data = self._read_exact(size)
        self._data_left -= size
        self._remaining -= size
        return data

    def __iter__(self) -> Iterator[TarMember]:
        # Run once per member of every layer (100,000 on a large image): the common header (ustar or
        # GNU, octal numbers, no PAX record, no link name) takes the short paths below.
        pax_global: dict[str, str] = {}
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        read = self._stream.read
        unpack = _HEADER.unpack
        budget = self._budget
        while True:
            if self._remaining:
                self._skip(self._remaining)
            self._remaining = self._data_left = 0
            header_offset = self._position
            block = read(BLOCK)
            self._position += len(block)
            if len(block) != BLOCK:
                if not block:
                    if header_offset == 0:
                        return  # an empty stream: an empty layer
                    raise TarFormatError(f"the tar stream ends without its end-of-archive blocks at offset "
                                         f"{header_offset}")
                raise TarFormatError(f"unexpected end of the tar stream at offset {header_offset}")
            if block == _ZERO_BLOCK:
                return  # end-of-archive marker; whatever follows is padding
            raw_name, raw_mode, raw_uid, raw_gid, raw_size, raw_sum, typeflag, raw_link, magic, raw_prefix = (
                unpack(block))
            stored = _octal(raw_sum, "checksum", header_offset)
            # The checksum counts its own 8 bytes as spaces: the byte sum with those 8 bytes' sum taken out.
            computed = _byte_sum(block) - (zlib.adler32(raw_sum) & 0xFFFF) + 1 + 8 * 32
            if stored != computed:
                raise TarFormatError(f"bad tar header checksum at offset {header_offset} (not a tar archive, "
                                     "or a corrupt one)")
            size = _octal(raw_size, "size", header_offset)
            if size < 0:
                raise TarFormatError(f"negative size in the tar header at offset {header_offset}")
            if size > MAX_MEMBER_SIZE:
                raise TarFormatError(f"implausible member size in the tar header at offset {header_offset}")
            padded = (size + BLOCK - 1) // BLOCK * BLOCK
            if typeflag in (b"x", b"g", b"L", b"K"):
                if size > MAX_RECORD_BYTES:
                    raise TarFormatError(f"oversized tar metadata record ({size:,} bytes, at most "
                                         f"{MAX_RECORD_BYTES:,}) at offset {header_offset}")
                budget.spend(size, header_offset)
                data = self._read_exact(padded)[:size]
                if typeflag == b"x":
                    pax.update(_parse_pax(data, header_offset))
                elif typeflag == b"g":
                    pax_global.update(_parse_pax(data, header_offset))
                elif typeflag == b"L":
                    long_name = _text(data)
                else:
                    long_link = _text(data)
                continue
            name = _text(raw_name)
            if raw_prefix[0] and magic.startswith(b"ustar"):
                prefix = _text(raw_prefix)
                if prefix:
                    name = f"{prefix}/{name}"
            linkname = _text(raw_link) if raw_link[0] else ""
            mode = _octal(raw_mode, "mode", header_offset)
            uid = _octal(raw_uid, "uid", header_offset)
            gid = _octal(raw_gid, "gid", header_offset)
            if pax or pax_global:
                merged = {**pax_global, **pax}
                name = merged.get("path", name)
                linkname = merged.get("linkpath", linkname)
                if "size" in merged:
                    try:
                        size = int(merged["size"])
                    except ValueError:
                        raise TarFormatError(f"invalid PAX size at offset {header_offset}") from None
                    if size < 0:
                        raise TarFormatError(f"negative PAX size at offset {header_offset}")
                    if size > MAX_MEMBER_SIZE:
                        raise TarFormatError(f"implausible PAX size at offset {header_offset}")
                    padded = (size + BLOCK - 1) // BLOCK * BLOCK
                uid = _pax_int(merged, "uid", uid)
                gid = _pax_int(merged, "gid", gid)
                pax = {}
            if long_name is not None:
                name, long_name = long_name, None
            if long_link is not None:
                linkname, long_link = long_link, None
            if len(name) > PATH_MAX // 4 or len(linkname) > PATH_MAX // 4:
                for text, field in ((name, "name"), (linkname, "link target")):
                    if len(text) > PATH_MAX // 4 and len(text.encode("utf-8")) > PATH_MAX:
                        raise TarFormatError(f"a {field} of {len(text):,} characters (longer than PATH_MAX, "
                                             f"{PATH_MAX}) at offset {header_offset}; the layer is corrupt or "
                                             "hostile")
            budget.spend(len(name) + len(linkname), header_offset)
            if typeflag in _NO_DATA:
                # Links, devices, directories and fifos carry no data (their size field is ignored, as
                # Python's tarfile and GNU tar do).
                padded = size = 0
            elif typeflag == b"\0" and name.endswith("/"):
                typeflag = b"5"  # pre-POSIX archives mark directories by a trailing slash
            self._remaining = padded
            self._data_left = size
            yield TarMember(name, mode, uid, gid, size, typeflag, linkname, self._position)


_NO_DATA = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))


def _octal(raw: bytes, field: str, offset: int) -> int:
    """`_number` for the common case first: octal digits, then NULs or spaces."""
    try:
        return int(raw.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        # Base-256 (a first byte above 0x7f is no digit), or text after a NUL: the whole rules.
        return _number(raw, field, offset)


def _pax_int(records: dict[str, str], key: str, default: int) -> int:
    value = records.get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return default
    return number if number >= 0 else default
